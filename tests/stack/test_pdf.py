"""PDF through the whole stack: the real service, the real converter, real LibreOffice
(sub-templates and $html included: what the DOCX tests check in the package reaches the pages)."""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, EXAMPLES, ServerProcess, corpus_cases, start_service
from converter.converter_support import pdf_text
from docx_helpers import make_docx, part_texts
from pypdf import PdfReader

pytestmark = pytest.mark.libreoffice
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture
def client(stack: tuple[ServerProcess, ServerProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack[0].url, timeout=60) as c:
        yield c


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_example_invoice_to_pdf(client: httpx.Client, tmp_path: Path) -> None:
    name = f"invoice-{uuid.uuid4().hex[:6]}"
    client.put(f"/v1/templates/{name}", content=(EXAMPLES / "invoice.docx").read_bytes(),
               headers={"content-type": DOCX})
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    r = client.post("/v1/render", json={"template": name, "data": data, "format": "pdf"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.pdf"'
    # -raw keeps the content stream's order, so a wrapped table cell stays whole.
    (tmp_path / "invoice.pdf").write_bytes(r.content)
    raw = subprocess.run(["pdftotext", "-raw", str(tmp_path / "invoice.pdf"), "-"],
                         capture_output=True, text=True, check=True).stdout
    text = re.sub(r"\s+", "", raw)
    for value in ("INV-2026-0042", "Globex & Partners <Ltd>", "742 Evergreen Terrace",
                  "Rendering service, monthly", "EUR 1,234.50", "Acme Documents GmbH"):
        assert re.sub(r"\s+", "", value) in text, value


PLAIN = [c for c in corpus_cases()
         if not {"needs", "expect_error"} & json.loads(c.read_text()).keys()]


@pytest.mark.parametrize("case_file", PLAIN, ids=[c.stem for c in PLAIN])
def test_corpus_case_to_pdf(client: httpx.Client, case_file: Path, tmp_path: Path) -> None:
    """Every plain-JSON corpus case as PDF: every paragraph the rendered DOCX shows (body,
    headers, footers, footnotes) is in the PDF's text, data values included."""
    case = json.loads(case_file.read_text())
    template = (CORPUS / case["template"]).read_bytes()
    fields = {"data": json.dumps(case["context"])}
    docx = client.post("/v1/render", files={"template": ("t.docx", template)},
                       data={**fields, "format": "docx"})
    pdf = client.post("/v1/render", files={"template": ("t.docx", template)},
                      data={**fields, "format": "pdf"})
    assert docx.status_code == 200 and pdf.status_code == 200, pdf.text
    paragraphs = [p for texts in part_texts(docx.content).values() for p in texts if p.strip()]
    assert paragraphs, "the rendered case shows no text"
    # pdftotext lays text out in columns: compare without any whitespace.
    text = _bare(pdf_text(pdf.content, tmp_path))
    missing = [p for p in paragraphs if _bare(p) not in text]
    assert not missing, (missing, text[:2000])
    shown = " ".join(paragraphs)
    for value in (str(v) for v in _scalars(case["context"])):
        if len(value) >= 3 and value in shown:
            assert _bare(value) in text, value


def _bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_document_properties_reach_the_pdf(client: httpx.Client) -> None:
    """doc_properties renders its variable into docProps/core.xml: the PDF's title has it."""
    case = json.loads((CORPUS / "cases" / "doc_properties.json").read_text())
    template = (CORPUS / case["template"]).read_bytes()
    pdf = client.post("/v1/render", files={"template": ("t.docx", template)},
                      data={"data": json.dumps(case["context"]), "format": "pdf"})
    assert pdf.status_code == 200, pdf.text
    metadata = PdfReader(io.BytesIO(pdf.content)).metadata
    assert metadata is not None and case["context"]["test"] in str(metadata.title), metadata


def _scalars(value: object) -> Iterator[object]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _scalars(v)
    elif isinstance(value, list):
        for v in value:
            yield from _scalars(v)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield value


def test_batch_of_pdfs_streams_a_zip_and_merges(client: httpx.Client, tmp_path: Path) -> None:
    name = f"letter-{uuid.uuid4().hex[:6]}"
    client.put(f"/v1/templates/{name}", content=make_docx("Dear {{ who }}"),
               headers={"content-type": DOCX})
    items = [{"who": f"Reader {i}"} for i in range(6)]
    r = client.post("/v1/render/batch", json={"template": name, "items": items, "format": "pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.namelist() == [f"{name}-{i + 1:04d}.pdf" for i in range(6)]
    for i, entry in enumerate(archive.namelist()):
        assert f"Dear Reader {i}" in words(pdf_text(archive.read(entry), tmp_path))
    merged = client.post("/v1/render/batch", json={"template": name, "items": items, "merge": True})
    assert merged.status_code == 200 and merged.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(merged.content))
    assert len(reader.pages) == 6
    assert "Dear Reader 5" in reader.pages[5].extract_text()


def test_readiness_and_errors_follow_the_converter(tmp_path: Path) -> None:
    """A service whose converter is gone: not ready, PDF 503 with Retry-After, DOCX still fine."""
    from gendoc.procs import free_port

    service = start_service(tmp_path, converter_url=f"http://127.0.0.1:{free_port()}")
    try:
        ready = httpx.get(f"{service.url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["converter"] == "unreachable"
        files = {"template": ("t.docx", make_docx("x"))}
        pdf = httpx.post(f"{service.url}/v1/render", files=files, data={"format": "pdf"})
        assert pdf.status_code == 503 and pdf.json()["type"].endswith("/converter-unavailable")
        assert int(pdf.headers["retry-after"]) >= 1
        docx = httpx.post(f"{service.url}/v1/render", files=files, data={"format": "docx"})
        assert docx.status_code == 200
    finally:
        service.stop()


def test_ready_when_the_converter_is(stack: tuple[ServerProcess, ServerProcess]) -> None:
    ready = httpx.get(f"{stack[0].url}/readyz").json()
    assert ready == {"status": "ok", "checks": {"store": "ok", "converter": "ok"}}


def test_the_example_letter_one_by_one_and_as_a_batch(client: httpx.Client,
                                                      tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    head, letter = f"letterhead-{tag}", f"letter-{tag}"
    template = (EXAMPLES / "letter.docx").read_bytes()
    with zipfile.ZipFile(io.BytesIO(template)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    # The example includes 'letterhead'; here it includes this test's own copy.
    parts["word/document.xml"] = parts["word/document.xml"].replace(
        b"include(&apos;letterhead&apos;)", f"include(&apos;{head}&apos;)".encode()).replace(
        b"include('letterhead')", f"include('{head}')".encode())
    assert head.encode() in parts["word/document.xml"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    for name, docx in ((head, (EXAMPLES / "letterhead.docx").read_bytes()),
                       (letter, out.getvalue())):
        r = client.put(f"/v1/templates/{name}", content=docx, headers={"content-type": DOCX})
        assert r.status_code == 201, r.text
    data = json.loads((EXAMPLES / "letter.json").read_text())
    one = client.post("/v1/render", json={"template": letter, "data": data, "format": "pdf",
                                          "locale": "de_DE", "timezone": "Europe/Berlin"})
    assert one.status_code == 200, one.text
    text = words(pdf_text(one.content, tmp_path))
    for shown in ("Acme Documents GmbH", "angebote@acme.example", "24. November 2026",
                  "12.480,00 €", "Leistungsumfang", "• Vorlagen: Rechnung, Mahnung, Gutschrift",
                  "◦ je eine Fassung auf Deutsch und Englisch", "Abnahme 70 %"):
        assert shown in text, (shown, text)
    assert "never shown" not in text

    items = []
    for i, customer in enumerate(("Alpha AG", "Beta GmbH", "Gamma KG")):
        item = copy.deepcopy(data)
        item["customer"]["name"] = customer
        item["terms"] = {"$markdown": f"## Punkt {i + 1}\n\n- nur für **{customer}**\n"}
        items.append(item)
    batch = client.post("/v1/render/batch", json={
        "template": letter, "items": items, "format": "pdf", "locale": "de_DE"})
    assert batch.status_code == 200, batch.text
    with zipfile.ZipFile(io.BytesIO(batch.content)) as archive:
        names = archive.namelist()
        assert len(names) == 3 and all(n.endswith(".pdf") for n in names), names
        for i, name in enumerate(names):
            text = words(pdf_text(archive.read(name), tmp_path))
            customer = items[i]["customer"]["name"]
            assert "Acme Documents GmbH" in text and customer in text, text
            assert f"Punkt {i + 1}" in text and f"nur für {customer}" in text, text
