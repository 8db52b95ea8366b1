"""The bench's three documents, made from code: a one-page invoice, a 12-page contract, a
60-page report with a 1,000-row table.

The invoice is the bundled example. The other two are docxtpl templates built here with
python-docx (tags in plain paragraphs and table rows) and filled with deterministic data, so
that every run measures the same bytes and nothing outside the repository is needed. The page
counts are not assumed: the bench counts the pages of the PDFs it gets back and records them.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docx import Document as new_document
from docx.shared import Pt

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Words for filler prose: plain ASCII, so that no font fallback changes the layout.
_WORDS = [
    "agreement", "party", "services", "term", "payment", "notice", "schedule", "obligation",
    "delivery", "period", "account", "invoice", "supplier", "customer", "confidential",
    "information", "liability", "warranty", "clause", "provision", "written", "consent",
    "reasonable", "effort", "material", "breach", "remedy", "applicable", "law", "jurisdiction",
    "amendment", "assignment", "termination", "effective", "date", "fees", "expenses",
    "records", "audit", "quality", "standard", "performance", "report", "review", "approval",
]


@dataclass(frozen=True)
class BenchDocument:
    """A template and its data; `rendered()` is the DOCX a converter receives."""

    name: str
    label: str
    template: bytes
    data: dict[str, Any]

    def rendered(self) -> bytes:
        from gendoc_service.rendering import Renderer

        return Renderer(16 << 20).render(self.template, self.data)


def _prose(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _save(doc: Any) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _base_document() -> Any:
    doc = new_document()
    # One explicit body font and size: the page counts then depend on this code only.
    normal = doc.styles["Normal"]
    normal.font.name = "Liberation Serif"
    normal.font.size = Pt(11)
    return doc


def invoice() -> BenchDocument:
    return BenchDocument(
        "invoice", "one-page invoice", (EXAMPLES / "invoice.docx").read_bytes(),
        json.loads((EXAMPLES / "invoice.json").read_text()),
    )


def short_contract() -> BenchDocument:
    """The contract with 4 clauses: three pages, for the batch mode."""
    return contract(4, name="contract3", label="3-page contract")


def contract(clauses: int = 16, paragraphs: int = 3, words: int = 95, name: str = "contract",
             label: str = "12-page contract") -> BenchDocument:
    """A services agreement: parties, numbered clauses of prose, a signature table."""
    doc = _base_document()
    doc.add_heading("{{ title }}", level=0)
    doc.add_paragraph("This agreement is made on {{ date }} between {{ supplier.name }}, "
                      "{{ supplier.address }} (the Supplier) and {{ customer.name }}, "
                      "{{ customer.address }} (the Customer).")
    doc.add_paragraph("{%p for clause in clauses %}")
    doc.add_heading("{{ loop.index }}. {{ clause.title }}", level=2)
    doc.add_paragraph("{%p for text in clause.paragraphs %}")
    doc.add_paragraph("{{ text }}")
    doc.add_paragraph("{%p endfor %}")
    doc.add_paragraph("{%p endfor %}")
    table = doc.add_table(rows=2, cols=2)
    table.style = "Table Grid"
    table.cell(0, 0).text, table.cell(0, 1).text = "For the Supplier", "For the Customer"
    table.cell(1, 0).text = "{{ supplier.signatory }}"
    table.cell(1, 1).text = "{{ customer.signatory }}"
    rng = random.Random(12)
    data = {
        "title": "Services Agreement",
        "date": "2026-11-28",
        "supplier": {"name": "Example Supplies Ltd", "address": "1 Quay Street, Bristol",
                     "signatory": "A. Supplier, Director"},
        "customer": {"name": "Example Customer GmbH", "address": "Hauptstrasse 2, Berlin",
                     "signatory": "B. Customer, Managing Director"},
        "clauses": [
            {"title": " ".join(rng.choice(_WORDS) for _ in range(3)).title(),
             "paragraphs": [_prose(rng, words) for _ in range(paragraphs)]}
            for _ in range(clauses)
        ],
    }
    return BenchDocument(name, label, _save(doc), data)


def report(rows: int = 1000, sections: int = 13, paragraphs: int = 4,
           words: int = 110) -> BenchDocument:
    """A report: sections of prose, then an appendix table of `rows` rows."""
    doc = _base_document()
    doc.add_heading("{{ title }}", level=0)
    doc.add_paragraph("Prepared for {{ customer }} on {{ date }}.")
    doc.add_paragraph("{%p for section in sections %}")
    doc.add_heading("{{ loop.index }} {{ section.title }}", level=1)
    doc.add_paragraph("{%p for text in section.paragraphs %}")
    doc.add_paragraph("{{ text }}")
    doc.add_paragraph("{%p endfor %}")
    doc.add_paragraph("{%p endfor %}")
    doc.add_heading("Appendix: transactions", level=1)
    columns = ("No.", "Date", "Description", "Quantity", "Amount")
    table = doc.add_table(rows=4, cols=len(columns))
    table.style = "Table Grid"
    for i, name in enumerate(columns):
        table.cell(0, i).text = name
    # docxtpl's row tags: the rows holding {%tr %} are removed, the middle one repeats.
    table.cell(1, 0).text = "{%tr for row in rows %}"
    for i, key in enumerate(("id", "date", "description", "quantity", "amount")):
        table.cell(2, i).text = f"{{{{ row.{key} }}}}"
    table.cell(3, 0).text = "{%tr endfor %}"
    rng = random.Random(60)
    data = {
        "title": "Annual Operations Report",
        "customer": "Example Customer GmbH",
        "date": "2026-11-28",
        "sections": [
            {"title": " ".join(rng.choice(_WORDS) for _ in range(2)).title(),
             "paragraphs": [_prose(rng, words) for _ in range(paragraphs)]}
            for _ in range(sections)
        ],
        "rows": [
            {"id": i + 1, "date": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}",
             "description": " ".join(rng.choice(_WORDS) for _ in range(3)),
             "quantity": 1 + i % 17, "amount": f"{(i * 37) % 1000 + 0.5:.2f}"}
            for i in range(rows)
        ],
    }
    return BenchDocument("report", "60-page report, 1,000-row table", _save(doc), data)


ALL: dict[str, Callable[[], BenchDocument]] = {
    "invoice": invoice, "contract": contract, "report": report, "contract3": short_contract,
}
