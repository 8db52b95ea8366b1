"""Builds the README's second example: src/gendoc/examples/letter.docx and letterhead.docx.

The letter shows what the template language adds to docxtpl: a sub-template
(`{{p include('letterhead') }}`, with a style of its own and a table),
locale filters (`format_date`, `format_currency`, driven by the request's
`locale`/`timezone`) and an `$html` value (`{{p terms }}`). Kept as code so the
example is reviewable and reproducible; run it again after changing it:
.venv/bin/python scripts/make_example_letter.py
"""

from pathlib import Path

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt, RGBColor

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "gendoc" / "examples"


def letterhead() -> Document:
    """The sub-template: a style of its own (the letter does not define it) and a table."""
    doc = Document()
    brand = doc.styles.add_style("Letterhead Brand", WD_STYLE_TYPE.PARAGRAPH)
    brand.font.size = Pt(20)
    brand.font.bold = True
    brand.font.color.rgb = RGBColor(0x1F, 0x4E, 0x79)
    doc.add_paragraph("{{ seller.name }}", style="Letterhead Brand")
    contact = doc.add_table(rows=1, cols=2)
    contact.rows[0].cells[0].text = "{{ seller.address }}"
    contact.rows[0].cells[1].text = "{{ seller.email }}"
    contact.rows[0].cells[1].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    return doc


def letter() -> Document:
    doc = Document()
    doc.core_properties.title = "Angebot {{ offer.number }}"
    doc.add_paragraph("{{p include('letterhead') }}")
    date = doc.add_paragraph("Berlin, {{ offer.sent|format_date('long') }}")
    date.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    doc.add_paragraph("{{ customer.name }}")
    doc.add_heading("Angebot {{ offer.number }}", level=1)
    doc.add_paragraph("Guten Tag {{ customer.contact }},")
    doc.add_paragraph(
        "für {{ offer.subject }} bieten wir Ihnen einen Festpreis von "
        "{{ offer.total|format_currency('EUR') }} an "
        "({{ offer.vat|format_percent }} MwSt. inbegriffen). "
        "Das Angebot gilt bis {{ offer.valid_until|format_date('full') }}; "
        "erstellt um {{ offer.sent|format_time('short') }} Uhr.")
    doc.add_paragraph("{{p terms }}")
    doc.add_paragraph("Mit freundlichen Grüßen")
    doc.add_paragraph("{{ seller.signatory }}")
    return doc


if __name__ == "__main__":
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    for name, build in (("letterhead", letterhead), ("letter", letter)):
        path = EXAMPLES / f"{name}.docx"
        build().save(path)
        print(path)
