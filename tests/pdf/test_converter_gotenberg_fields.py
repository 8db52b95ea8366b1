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
from pdf.pdf_support import page_texts, squeezed, verapdf, watermark_opacities, xmp_and_info

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
    assert watermark_opacities(r.content) == [[pytest.approx(0.3)]]


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


# Every form field Gotenberg 8.36's LibreOffice route reads (pkg/modules/libreoffice/routes.go
# and the pdfengines and api fields it uses), written out here from Gotenberg's source rather
# than taken from the converter's own list, less the ones this converter implements.
GOTENBERG_8_NOT_IMPLEMENTED = [
    "addOriginalDocumentAsStream", "allowDuplicateFieldNames", "centerWindow",
    "convertOooTargetToPdfTarget", "displayPDFDocumentTitle", "exportBookmarks",
    "exportFormFields", "exportHiddenSlides", "exportLinksRelativeFsys", "exportNotes",
    "exportNotesInMargin", "exportNotesPages", "exportOnlyNotesPages", "exportPlaceholders",
    "firstPageOnLeft", "hideViewerMenubar", "hideViewerToolbar", "hideViewerWindowControls",
    "initialPage", "initialView", "losslessImageCompression", "magnification",
    "maxImageResolution", "nativePdfFormats", "nativeTiledWatermarkText", "nativeWatermarkColor",
    "nativeWatermarkFontHeight", "nativeWatermarkFontName", "nativeWatermarkRotateAngle",
    "nativeWatermarkText", "openBookmarkLevels", "openInFullScreenMode", "pageLayout", "password",
    "quality", "reduceImageResolution", "resizeWindowToInitialPage", "singlePageSheets",
    "skipEmptyPages", "updateIndexes", "useTransitionEffects", "zoom", "flatten", "splitMode",
    "splitSpan", "splitUnify", "rotateAngle", "rotatePages", "embedsMetadata",
    "facturxConformanceLevel", "facturxDocumentType", "facturxVersion", "optimizeImages",
    "imageQuality", "watermarkPages", "stampSource", "stampExpression", "stampPages",
    "stampOptions", "downloadFrom",
]


def test_every_gotenberg_8_field_not_implemented_is_named(converter_http: httpx.Client) -> None:
    r = converter_http.post(CONVERT, files=_files("i.docx"),
                            data=dict.fromkeys(GOTENBERG_8_NOT_IMPLEMENTED, "1"))
    assert r.status_code == 400, r.text
    named, _, rest = r.text.partition("not implemented by this converter: ")
    assert named and "unknown" not in r.text, r.text
    assert sorted(rest.split(" (see")[0].replace("'", "").split(", ")) == sorted(
        GOTENBERG_8_NOT_IMPLEMENTED)
    # Each alone too: no field is refused only for the company it keeps.
    for field in GOTENBERG_8_NOT_IMPLEMENTED:
        one = converter_http.post(CONVERT, files=_files("j.docx"), data={field: "1"})
        assert one.status_code == 400 and f"'{field}'" in one.text, (field, one.text)


def test_a_repeated_field_is_400_not_the_last_one_kept(converter_http: httpx.Client) -> None:
    """Gotenberg 8.36 draws one watermark per repeated watermarkSource/Expression; this
    converter draws one, so a second is refused rather than dropped."""
    r = converter_http.post(CONVERT, files=[*_files("k.docx"),
                                            ("watermarkSource", (None, b"text")),
                                            ("watermarkExpression", (None, b"FIRST")),
                                            ("watermarkExpression", (None, b"SECOND"))])
    assert r.status_code == 400, r.text
    assert "'watermarkExpression' is given more than once" in r.text
