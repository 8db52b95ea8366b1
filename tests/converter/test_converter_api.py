"""The HTTP API against a real `gendoc converter` with real LibreOffice instances."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from converter.converter_docs import make_docx, with_macros
from converter.converter_support import CONVERT, INVOICE, docx_file, metric, pdf_text
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

pytestmark = pytest.mark.libreoffice


def test_health_is_gotenbergs_json(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "up"
    assert body["details"]["libreoffice"]["status"] == "up"
    assert http.head("/health").status_code == 200


def test_version_and_metrics(http: httpx.Client) -> None:
    assert http.get("/version").text.strip()
    for path in ("/metrics", "/prometheus/metrics"):
        text = http.get(path).text
        assert metric(text, "gendoc_converter_instances", 'state="idle"') + metric(
            text, "gendoc_converter_instances", 'state="busy"') == 2
        assert metric(text, "gendoc_converter_queue_depth") == 0
        assert "gendoc_converter_conversion_duration_seconds_bucket" in text
        assert 'gendoc_converter_restarts_total{reason="crash"}' in text
        assert 'gendoc_converter_restarts_total{reason="environment"}' in text
        assert metric(text, "gendoc_converter_queue_limit") == 16
        assert metric(text, "gendoc_converter_failures_total", 'cause="instance"') == 0


def test_one_docx_gives_a_pdf_with_its_text(http: httpx.Client, tmp_path: Path) -> None:
    docx = make_docx("Quarterly statement", "Total due: 1,234.56 EUR")
    response = http.post(CONVERT, files=[docx_file("statement.docx", docx)],
                         headers={"Gotenberg-Output-Filename": "my-statement",
                                  "Gotenberg-Trace": "trace-123"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="my-statement.pdf"'
    assert response.headers["gotenberg-trace"] == "trace-123"
    text = pdf_text(response.content, tmp_path)
    assert "Quarterly statement" in text and "1,234.56 EUR" in text


def test_the_bundled_invoice_converts(http: httpx.Client, tmp_path: Path) -> None:
    response = http.post(CONVERT, files=[docx_file("invoice.docx", INVOICE.read_bytes())])
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"%PDF")
    uuid.UUID(response.headers["gotenberg-trace"])  # generated when the caller sends none
    name = response.headers["content-disposition"].split('"')[1]
    uuid.UUID(name.removesuffix(".pdf"))  # Gotenberg's default output name: a UUID


def test_several_files_give_a_zip(http: httpx.Client, tmp_path: Path) -> None:
    files = [docx_file("a.docx", make_docx("Alpha page")),
             docx_file("b.docx", make_docx("Bravo page"))]
    response = http.post(CONVERT, files=files, headers={"Gotenberg-Output-Filename": "both"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="both.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == ["a.pdf", "b.pdf"]
    assert "Bravo page" in pdf_text(archive.read("b.pdf"), tmp_path)


def test_merge_gives_one_pdf_in_file_name_order(http: httpx.Client, tmp_path: Path) -> None:
    files = [docx_file("2_second.docx", make_docx("Second document")),
             docx_file("1_first.docx", make_docx("First document"))]
    response = http.post(CONVERT, files=files, data={"merge": "true"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2
    assert "First document" in reader.pages[0].extract_text()
    assert "Second document" in reader.pages[1].extract_text()


def test_options_landscape_page_ranges_pdfa_pdfua(http: httpx.Client) -> None:
    docx = make_docx(*[f"Paragraph {i} " * 40 for i in range(60)])  # several pages
    whole = PdfReader(io.BytesIO(http.post(CONVERT, files=[docx_file("long.docx", docx)]).content))
    assert len(whole.pages) > 2
    response = http.post(CONVERT, files=[docx_file("long.docx", docx)],
                         data={"landscape": "true", "nativePageRanges": "1-2",
                               "pdfa": "PDF/A-2b", "pdfua": "true"})
    assert response.status_code == 200, response.text
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2
    box = reader.pages[0].mediabox
    assert box.width > box.height
    xmp = reader.xmp_metadata
    assert xmp is not None and xmp.pdfaid_part == "2"
    catalog = reader.trailer["/Root"].get_object()
    assert isinstance(catalog, DictionaryObject) and "/StructTreeRoot" in catalog  # PDF/UA


@pytest.mark.parametrize(("files", "data"), [
    ([docx_file("bad.docx", b"this is not a docx")], {}),
    ([docx_file("macro.docx", with_macros(make_docx("x")))], {}),
    ([("files", ("page.html", b"<p>hi</p>", "text/html"))], {}),  # no supported file
    ([docx_file("ok.docx", make_docx("x"))], {"nativePageRanges": "one-two"}),
    ([docx_file("ok.docx", make_docx("x"))], {"pdfa": "PDF/A-9"}),
])
def test_bad_requests_are_400(http: httpx.Client, files: list[object],
                              data: dict[str, str]) -> None:
    response = http.post(CONVERT, files=files, data=data)  # type: ignore[arg-type]
    assert response.status_code == 400, response.text
    assert response.text


def test_a_non_multipart_body_is_400(http: httpx.Client) -> None:
    assert http.post(CONVERT, content=b"{}",
                     headers={"Content-Type": "application/json"}).status_code == 400


@pytest.mark.parametrize("value", ["soon", "nan", "inf", ""])
def test_a_malformed_deadline_is_400(http: httpx.Client, value: str) -> None:
    response = http.post(CONVERT, files=[docx_file("x.docx", make_docx("x"))],
                         headers={"Gendoc-Timeout": value})
    assert response.status_code == 400
    assert "Gendoc-Timeout" in response.text


def test_no_time_left_is_503_with_retry_after(http: httpx.Client) -> None:
    response = http.post(CONVERT, files=[docx_file("x.docx", make_docx("x"))],
                         headers={"Gendoc-Timeout": "0"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1


def test_a_gotenberg_client_request_works(converter: object, tmp_path: Path) -> None:
    """The multipart a Gotenberg client sends, built by hand as curl sends it:
    `curl --request POST URL/forms/libreoffice/convert --form files=@doc.docx -o my.pdf`
    (curl: Content-Type application/octet-stream, Expect absent, no other field)."""
    boundary = "------------------------d74496d66958873e"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="doc.docx"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + make_docx("Sent like curl") + (
        f"\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="landscape"\r\n\r\nfalse\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    url = converter.url + CONVERT  # type: ignore[attr-defined]
    response = httpx.post(url, content=body, timeout=60, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Gotenberg-Output-Filename": "my", "User-Agent": "curl/7.88.1", "Accept": "*/*"})
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="my.pdf"'
    assert "Sent like curl" in pdf_text(response.content, tmp_path)


def test_the_service_client_speaks_to_it(converter: object) -> None:
    """gendoc_service's converter client (the other side of this API) gets a PDF."""
    import asyncio

    from gendoc_service.converter_client import ConverterClient

    from gendoc.deadline import Deadline

    async def convert() -> bytes:
        client = ConverterClient(converter.url)  # type: ignore[attr-defined]
        try:
            assert await client.healthy()
            return await client.to_pdf(make_docx("Through the client"),
                                         deadline=Deadline.after(30))
        finally:
            await client.aclose()

    assert asyncio.run(convert()).startswith(b"%PDF")


def test_health_json_is_stable(http: httpx.Client) -> None:
    body = http.get("/health").json()
    assert set(body) == {"status", "details"}
    assert json.dumps(body["details"]["libreoffice"]["status"]) == '"up"'
