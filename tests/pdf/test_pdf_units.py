"""PDF options without LibreOffice: the service's `pdf` object, the converter's Gotenberg
fields, the contract between the two, and the finishing steps on a PDF made here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pikepdf
import pytest
from fpdf import FPDF
from gendoc_converter.errors import BadForm
from gendoc_converter.finishing import Encryption, Finishing, Metadata, Watermark, finish
from gendoc_converter.options import FormFields, parse_finishing, parse_options, refuse_unread
from gendoc_converter.settings import ConverterSettings
from gendoc_service.pdfoptions import PdfOptions, needs_per_document_conversion
from pdf.pdf_support import page_texts, squeezed, xmp_and_info
from pydantic import ValidationError

FONT = ConverterSettings().watermark_font


# -- the service's `pdf` object ----------------------------------------------------------

def test_every_option_becomes_gotenbergs_field() -> None:
    pdf = PdfOptions.model_validate({
        "standard": "PDF/A-3b", "ua": True,
        "watermark": {"text": "DRAFT", "opacity": 0.5},
        "metadata": {"title": "T", "author": "A", "subject": "S", "keywords": ["k1", "k2"]},
    })
    assert pdf.form_fields() == {
        "pdfa": "PDF/A-3b", "pdfua": "true",
        "watermarkSource": "text", "watermarkExpression": "DRAFT",
        "watermarkOptions": '{"opacity": "0.5"}',
        "metadata": json.dumps({"Title": "T", "Author": "A", "Subject": "S",
                                "Keywords": ["k1", "k2"]}),
    }
    secret = PdfOptions.model_validate({"password": {"user": "u", "permissions": ["print"]}})
    assert secret.form_fields() == {
        "userPassword": "u", "allowPrinting": "true", "allowCopying": "false",
        "allowModifying": "false", "allowAnnotating": "false", "allowFillingForms": "false",
        "allowAssembling": "false"}
    assert PdfOptions().form_fields() == {}


@pytest.mark.parametrize(("value", "says"), [
    ({"standard": "PDF/A-2b", "password": {"user": "u"}}, "PDF/A cannot be encrypted"),
    ({"password": {"permissions": ["print"]}}, "'user' or an 'owner' password"),
    ({"password": {"user": "u", "permissions": ["fly"]}}, "permissions"),
    ({"standard": "PDF/A-1b"}, "standard"),
    ({"watermark": {"text": ""}}, "watermark.text"),
    ({"watermark": {"text": "x", "opacity": 1.5}}, "watermark.opacity"),
    ({"metadata": {"creator": "me"}}, "metadata.creator"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_pdf_options_name_the_problem(value: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        PdfOptions.model_validate(value)
    text = str(raised.value) + " ".join(".".join(map(str, e["loc"]))
                                        for e in raised.value.errors())
    assert says in text, text


def test_which_options_need_each_document_converted_alone() -> None:
    assert needs_per_document_conversion(None) == []
    assert needs_per_document_conversion(
        PdfOptions.model_validate({"watermark": {"text": "x"}})) == []
    assert needs_per_document_conversion(PdfOptions.model_validate({
        "standard": "PDF/A-2b", "ua": True, "metadata": {"title": "t"}})) == [
        "standard", "ua", "metadata"]
    assert needs_per_document_conversion(
        PdfOptions.model_validate({"password": {"owner": "o"}})) == ["password"]


# -- the converter's Gotenberg fields ----------------------------------------------------

def _parse(form: dict[str, str]) -> Finishing:
    fields = FormFields(form)
    options, _ = parse_options(fields)
    finishing = parse_finishing(fields, options)
    refuse_unread(fields)
    return finishing


def test_what_the_service_sends_the_converter_reads_back() -> None:
    """The contract between pdfoptions.form_fields and the converter's parser."""
    pdf = PdfOptions.model_validate({
        "ua": True, "password": {"user": "u", "owner": "o", "permissions": ["print", "copy"]},
        "watermark": {"text": "COPY", "opacity": 0.25},
        "metadata": {"title": "T", "author": "A", "subject": "S", "keywords": ["x"]}})
    assert _parse(pdf.form_fields()) == Finishing(
        metadata=Metadata(title="T", author="A", subject="S", keywords=("x",)),
        watermark=Watermark("COPY", 0.25),
        encryption=Encryption("u", "o", frozenset({"printing", "copying"})),
        pdfua=True)
    standard = PdfOptions.model_validate({"standard": "PDF/A-2b", "metadata": {"title": "T"}})
    assert _parse(standard.form_fields()) == Finishing(metadata=Metadata(title="T"), pdfa=True)


@pytest.mark.parametrize(("form", "says"), [
    ({"nativeWatermarkText": "x"}, "Gotenberg form field(s) not implemented by this converter: "
                                   "'nativeWatermarkText'"),
    ({"splitMode": "pages", "pdfA": "PDF/A-2b"}, "'splitMode'; unknown form field(s): 'pdfA'"),
    ({"allowCopying": "false"}, "permission restrictions require a 'userPassword'"),
    ({"pdfa": "PDF/A-2b", "ownerPassword": "o"}, "PDF/A format is incompatible with encryption"),
    ({"metadata": '{"Copyright": "me"}'}, "metadata key 'Copyright' is not implemented"),
    ({"metadata": "[1]"}, "expected a JSON object"),
    ({"metadata": '{"Keywords": 3}'}, "'Keywords'"),
    ({"watermarkSource": "image"}, "watermarkSource 'image' is not implemented"),
    ({"watermarkSource": "text"}, "needs the text in watermarkExpression"),
    ({"watermarkExpression": "x"}, "need watermarkSource=text"),
    ({"watermarkSource": "text", "watermarkExpression": "x",
      "watermarkOptions": '{"rotation": "30", "opacity": "0.2"}'}, "'rotation'"),
    ({"watermarkSource": "text", "watermarkExpression": "x",
      "watermarkOptions": '{"opacity": "2"}'}, "opacity '2'"),
])
def test_gotenberg_fields_not_implemented_or_invalid_are_refused(form: dict[str, str],
                                                                 says: str) -> None:
    with pytest.raises(BadForm) as raised:
        _parse(form)
    assert says in raised.value.detail, raised.value.detail


def test_empty_fields_are_gotenbergs_defaults_not_refusals() -> None:
    assert _parse({"nativeWatermarkText": "", "userPassword": "", "metadata": ""}) == Finishing()
    assert _parse({"watermarkSource": "text", "watermarkExpression": "x"}).watermark == (
        Watermark("x", 1.0))  # pdfcpu's own default: opaque


# -- finishing a PDF ---------------------------------------------------------------------

def _pages(n: int) -> bytes:
    sheet = FPDF()
    sheet.set_font("helvetica", size=14)
    for i in range(n):
        sheet.add_page(orientation="L" if i == 1 else "P")
        sheet.text(20, 20, f"Body of page {i + 1}")
    return bytes(sheet.output())


def test_watermark_is_on_every_page_of_every_size() -> None:
    out = finish(_pages(3), Finishing(watermark=Watermark("VERTRAULICH", 0.4)), FONT)
    texts = page_texts(out)
    assert len(texts) == 3
    for i, text in enumerate(texts):
        assert f"Bodyofpage{i + 1}" in squeezed(text) and "VERTRAULICH" in squeezed(text), text
    with pikepdf.open(io.BytesIO(out)) as doc:
        for page in doc.pages:
            content = page.Contents if isinstance(page.Contents, pikepdf.Array) else [page.Contents]
            last = content[-1].read_bytes()
            assert last.startswith(b"Q\n/Artifact"), last  # marked as an artifact (PDF/UA)
            # The text is in the embedded font subset, drawn translucent.
            form = next(iter(page.Resources.XObject.values()))
            fonts = list(form.Resources.Font.values())
            assert fonts and "/FontFile2" in fonts[0].DescendantFonts[0].FontDescriptor
            assert any(float(g.get("/ca", 1)) == pytest.approx(0.4)
                       for g in form.Resources.ExtGState.values())


def test_encryption_needs_the_password_and_keeps_the_permissions() -> None:
    encryption = Encryption(user="open sesame", owner="owner", allowed=frozenset({"printing"}))
    out = finish(_pages(1), Finishing(encryption=encryption), FONT)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(out))
    with pikepdf.open(io.BytesIO(out), password="open sesame") as doc:
        assert doc.is_encrypted and doc.encryption.bits == 256
        assert doc.allow.print_highres and doc.allow.accessibility
        assert not doc.allow.extract and not doc.allow.modify_other
    assert "Bodyofpage1" in squeezed(page_texts(out, "open sesame")[0])


def test_owner_password_alone_opens_freely_with_restrictions() -> None:
    out = finish(_pages(1), Finishing(encryption=Encryption(owner="o", allowed=frozenset())),
                 FONT)
    with pikepdf.open(io.BytesIO(out)) as doc:  # no password to open it
        assert doc.is_encrypted and not doc.allow.print_highres and not doc.allow.extract


def test_metadata_goes_to_docinfo_and_xmp(tmp_path: Path) -> None:
    metadata = Metadata(title="Rechnung Nr. 7 \u2013 Ü", author="Acme GmbH", subject="Invoice",
                        keywords=("invoice", "2026"))
    out = finish(_pages(1), Finishing(metadata=metadata), FONT)
    xmp, info = xmp_and_info(out)
    assert info["/Title"] == "Rechnung Nr. 7 \u2013 Ü" and info["/Author"] == "Acme GmbH"
    assert info["/Subject"] == "Invoice" and info["/Keywords"] == "invoice, 2026"
    assert xmp["dc:title"] == "Rechnung Nr. 7 \u2013 Ü" and xmp["dc:creator"] == ["Acme GmbH"]
    assert xmp["dc:description"] == "Invoice" and xmp["pdf:Keywords"] == "invoice, 2026"


def test_pdfua_gets_a_title_when_the_document_has_none() -> None:
    out = finish(_pages(1), Finishing(pdfua=True, title_fallback="invoice-42"), FONT)
    xmp, info = xmp_and_info(out)
    assert xmp["dc:title"] == info["/Title"] == "invoice-42"
    with pikepdf.open(io.BytesIO(out)) as doc:
        assert doc.Root.ViewerPreferences.DisplayDocTitle is True
    titled = finish(_pages(1), Finishing(metadata=Metadata(title="Own"), pdfua=True,
                                         title_fallback="invoice-42"), FONT)
    assert xmp_and_info(titled)[1]["/Title"] == "Own"


def test_watermark_follows_a_media_box_away_from_the_origin() -> None:
    moved = io.BytesIO()
    with pikepdf.open(io.BytesIO(_pages(1))) as doc:
        x1, y1 = float(doc.pages[0].mediabox[2]), float(doc.pages[0].mediabox[3])
        doc.pages[0].MediaBox = pikepdf.Array([100, 200, x1 + 100, y1 + 200])
        doc.save(moved)
    out = finish(moved.getvalue(), Finishing(watermark=Watermark("MOVED")), FONT)
    with pikepdf.open(io.BytesIO(out)) as doc:
        page = doc.pages[0]
        assert b"1 0 0 1 100 200 cm /GdWm" in page.Contents[-1].read_bytes()
        form = next(iter(page.Resources.XObject.values()))
        assert [float(v) for v in form.BBox] == [0, 0, pytest.approx(x1), pytest.approx(y1)]
    assert "MOVED" in page_texts(out)[0]
