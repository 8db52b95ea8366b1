"""Builds the bundled example template src/gendoc/examples/invoice.docx with python-docx.

Kept as code so that the example is reviewable and reproducible; run it again
after changing it: .venv/bin/python scripts/make_example_template.py
"""

from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt

OUT = Path(__file__).resolve().parent.parent / "src" / "gendoc" / "examples" / "invoice.docx"

doc = Document()
doc.core_properties.title = "Invoice {{ invoice.number }}"
doc.sections[0].header.paragraphs[0].text = "{{ seller.name }} · {{ seller.address }}"
doc.sections[0].footer.paragraphs[0].text = (
    "Payable within {{ invoice.terms_days }} days. Thank you."
)

doc.add_heading("Invoice {{ invoice.number }}", level=1)
p = doc.add_paragraph("Date: {{ invoice.date }}")
p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
doc.add_paragraph("Bill to: {{ customer.name }}")
doc.add_paragraph("{{ customer.address.street }}, {{ customer.address.city }}")

table = doc.add_table(rows=4, cols=4)
table.style = "Table Grid"
for cell, text in zip(table.rows[0].cells, ["Item", "Qty", "Unit price", "Amount"], strict=True):
    cell.text = text
    cell.paragraphs[0].runs[0].bold = True
table.rows[1].cells[0].text = "{%tr for item in items %}"
cells = table.rows[2].cells
cells[0].text = "{{ item.description }}"
cells[1].text = "{{ item.quantity }}"
cells[2].text = "{{ item.unit_price }}"
cells[3].text = "{{ item.amount }}"
table.rows[3].cells[0].text = "{%tr endfor %}"

doc.add_paragraph()
total = doc.add_paragraph("Total due: {{ invoice.currency }} {{ invoice.total }}")
total.runs[0].bold = True
total.runs[0].font.size = Pt(13)
doc.add_paragraph("{% if invoice.note %}Note: {{ invoice.note }}{% endif %}")

OUT.parent.mkdir(parents=True, exist_ok=True)
doc.save(OUT)
print(OUT)
