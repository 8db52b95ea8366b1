"""The converter alone, asked with Gotenberg 8's own field names, as a Gotenberg client would:
the PDF options it implements give a checked document; every Gotenberg field it does not
implement, and every unknown field, is a 400 that names it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pikepdf
import pytest
from docx_helpers import make_docx
from pdf.pdf_support import page_texts, squeezed, verapdf, xmp_and_info

pytestmark = pytest.mark.libreoffice
CONVERT = "/forms/libreoffice/convert"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _files(*names: str) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, make_docx(f"Text of {name}", title=f"Title {name}"), DOCX))
            for name in names]


def test_gotenberg_names_for_pdfa_metadata_watermark(converter_http: httpx.Client,
                                                     tmp_path: Path) -> None:
    r = converter_http.post(CONVERT, files=_files("a.docx"), data={
        "pdfa": "PDF/A-2b", "pdfua": "true",
        "metadata": json.dumps({"Title": "Gotenberg title", "Author": "Client",
                                "Keywords": ["k1", "k2"], "Creator": "My app"}),
        "watermarkSource": "text", "watermarkExpression": "CONFIDENTIAL",
        "watermarkOptions": json.dumps({"opacity": "0.3"}),
    })
    assert r.status_code == 200, r.text
    assert verapdf({"a": r.content}, "2b", tmp_path) == {"a": "PASS"}
    assert verapdf({"a": r.content}, "ua1", tmp_path) == {"a": "PASS"}
    xmp, info = xmp_and_info(r.content)
    assert info["/Title"] == xmp["dc:title"] == "Gotenberg title"
    assert info["/Author"] == "Client" and info["/Keywords"] == "k1, k2"
    assert info["/Creator"] == "My app"
    text = page_texts(r.content)[0]
    assert "CONFIDENTIAL" in text and "Textofa.docx" in squeezed(text)


def test_gotenberg_names_for_encryption(converter_http: httpx.Client) -> None:
    r = converter_http.post(CONVERT, files=_files("b.docx"), data={
        "userPassword": "u", "ownerPassword": "o", "allowCopying": "false",
        "allowModifying": "false"})
    assert r.status_code == 200, r.text
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(r.content))
    with pikepdf.open(io.BytesIO(r.content), password="u") as doc:
        assert doc.allow.print_highres and doc.allow.modify_annotation
        assert not doc.allow.extract and not doc.allow.modify_other
    # Several files: each PDF in the zip is finished alone; merged, the one PDF is.
    merged = converter_http.post(CONVERT, files=_files("c.docx", "d.docx"), data={
        "merge": "true", "userPassword": "u", "watermarkSource": "text",
        "watermarkExpression": "MERGED"})
    assert merged.status_code == 200, merged.text
    texts = page_texts(merged.content, "u")
    assert len(texts) == 2 and all("MERGED" in t for t in texts), texts


@pytest.mark.parametrize(("data", "says"), [
    ({"nativeWatermarkText": "x"}, "not implemented by this converter: 'nativeWatermarkText'"),
    ({"splitMode": "pages", "splitSpan": "1"}, "'splitMode', 'splitSpan'"),
    ({"flatten": "true"}, "'flatten'"),
    ({"downloadFrom": '[{"url": "http://example.invalid/x.docx"}]'}, "'downloadFrom'"),
    ({"pdfA": "PDF/A-2b"}, "unknown form field(s): 'pdfA'"),
    ({"watermarkSource": "image", "watermarkExpression": "x.png"}, "'image'"),
    ({"metadata": '{"Copyright": "c"}'}, "'Copyright'"),
    ({"pdfa": "PDF/A-2b", "userPassword": "u"}, "incompatible with encryption"),
    ({"allowPrinting": "false"}, "require a 'userPassword' or 'ownerPassword'"),
])
def test_fields_not_implemented_are_400_naming_them(converter_http: httpx.Client,
                                                    data: dict[str, str], says: str) -> None:
    r = converter_http.post(CONVERT, files=_files("e.docx"), data=data)
    assert r.status_code == 400, r.text
    assert says in r.text, r.text


def test_gotenberg_file_fields_not_implemented_are_400(converter_http: httpx.Client) -> None:
    files = [*_files("f.docx"), ("embeds", ("invoice.xml", b"<x/>", "application/xml"))]
    r = converter_http.post(CONVERT, files=files)
    assert r.status_code == 400 and "'embeds'" in r.text, r.text
    two = _files("g.docx", "h.docx")
    r = converter_http.post(CONVERT, files=two, data={"merge": "true", "pdfa": "PDF/A-3b"})
    assert r.status_code == 400 and "cannot keep PDF/A" in r.text, r.text
