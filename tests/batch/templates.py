"""Templates made here for the merged-batch tests: what merging must keep apart per item.

Headers and footers that use data (and a first-page header of their own), a logo in the
header, a PAGE field, numbered and bulleted lists, a table whose rows spill over pages,
a per-item picture ($image) and link ($richtext with a url), and one with a NUMPAGES field
(which counts the whole merged document, so such a template is converted item by item).
"""

from __future__ import annotations

import base64
import io
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.oxml import parse_xml
from docx.shared import Mm
from PIL import Image

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def png(color: tuple[int, int, int], size: tuple[int, int] = (60, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def _field(paragraph: Any, instruction: str) -> None:
    """A complex field (begin, instruction, separate, cached result, end) at the end."""
    for xml in (f'<w:r {_W}><w:fldChar w:fldCharType="begin"/></w:r>',
                f'<w:r {_W}><w:instrText xml:space="preserve"> {instruction} </w:instrText></w:r>',
                f'<w:r {_W}><w:fldChar w:fldCharType="separate"/></w:r>',
                f'<w:r {_W}><w:t>1</w:t></w:r>',
                f'<w:r {_W}><w:fldChar w:fldCharType="end"/></w:r>'):
        paragraph._p.append(parse_xml(xml))


def _save(doc: Any) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def report(count_field: str = "PAGE") -> bytes:
    """A report with data in its headers and footers, lists, a long table, a picture."""
    doc = Document()
    section = doc.sections[0]
    section.different_first_page_header_footer = True
    first = section.first_page_header.paragraphs[0]
    first.text = "{{ company }}: report {{ ref }} (first page)"
    header = section.header.paragraphs[0]
    header.add_run().add_picture(io.BytesIO(png((20, 90, 160))), width=Mm(12))
    header.add_run(" {{ company }}, report {{ ref }}")
    for footer in (section.footer, section.first_page_footer):
        paragraph = footer.paragraphs[0]
        paragraph.text = "{{ ref }}, page "
        _field(paragraph, count_field)
    doc.add_heading("Report {{ ref }} for {{ customer }}", level=1)
    doc.add_paragraph("Prepared by {{ company }}. {{r link }}")
    doc.add_paragraph("{{ photo }}")
    doc.add_paragraph("{%p for point in points %}")
    doc.add_paragraph("{{ point }}", style="List Number")
    doc.add_paragraph("{%p endfor %}")
    doc.add_paragraph("{%p for note in notes %}")
    doc.add_paragraph("{{ note }}", style="List Bullet")
    doc.add_paragraph("{%p endfor %}")
    table = doc.add_table(rows=4, cols=3)
    table.style = "Table Grid"
    for i, name in enumerate(("No.", "Item", "Amount")):
        table.cell(0, i).text = name
    table.cell(1, 0).text = "{%tr for row in rows %}"
    for i, key in enumerate(("n", "item", "amount")):
        table.cell(2, i).text = f"{{{{ row.{key} }}}}"
    table.cell(3, 0).text = "{%tr endfor %}"
    doc.add_paragraph("End of report {{ ref }}.")
    return _save(doc)


def report_data(i: int, rows: int, points: int) -> dict[str, Any]:
    color = (40 * i % 256, 200 - 30 * i % 200, 90)
    return {
        "company": f"Company {i}", "ref": f"R-{i:03d}", "customer": f"Customer {i}",
        "link": {"$richtext": [{"text": f"Site {i}", "url": f"https://example.org/{i}"}]},
        "photo": {"$image": {"data": base64.b64encode(png(color, (80 + i, 50))).decode(),
                             "width_mm": 30}},
        "points": [f"Point {p + 1} of item {i}" for p in range(points)],
        "notes": [f"Note {n} of item {i}" for n in range(2)],
        "rows": [{"n": r + 1, "item": f"Line {r + 1} of item {i}", "amount": f"{r * 3}.00"}
                 for r in range(rows)],
    }


# Items of one page, of several pages (a table over page breaks), and in between.
REPORT_ITEMS = [report_data(0, 3, 2), report_data(1, 90, 4), report_data(2, 0, 0),
                report_data(3, 40, 12), report_data(4, 5, 1)]


def even_odd() -> bytes:
    """Different headers on odd and even pages (a document-wide setting in Word)."""
    doc = Document()
    doc.settings.odd_and_even_pages_header_footer = True
    section = doc.sections[0]
    section.header.paragraphs[0].text = "Odd page of {{ ref }}"
    section.even_page_header.paragraphs[0].text = "Even page of {{ ref }}"
    doc.add_paragraph("Item {{ ref }}")
    doc.add_paragraph("{%p for line in lines %}")
    doc.add_paragraph("{{ line }}")
    doc.add_paragraph("{%p endfor %}")
    return _save(doc)


def with_annex() -> bytes:
    """Two sections: a portrait letter and a landscape annex, one numbered list through
    both, one footer with the page number."""
    doc = Document()
    first = doc.sections[0]
    first.header.paragraphs[0].text = "Letter {{ ref }}"
    footer = first.footer.paragraphs[0]
    footer.text = "page "
    _field(footer, "PAGE")
    doc.add_paragraph("Letter {{ ref }}")
    doc.add_paragraph("{%p for line in lines %}")
    doc.add_paragraph("{{ line }}", style="List Number")
    doc.add_paragraph("{%p endfor %}")
    annex = doc.add_section(WD_SECTION.NEW_PAGE)
    annex.orientation = WD_ORIENT.LANDSCAPE
    annex.page_width, annex.page_height = first.page_height, first.page_width
    doc.add_paragraph("Annex to {{ ref }}")
    doc.add_paragraph("{%p for line in lines %}")
    doc.add_paragraph("annex {{ line }}", style="List Number")
    doc.add_paragraph("{%p endfor %}")
    return _save(doc)


def lines_data(lengths: list[int]) -> list[dict[str, Any]]:
    return [{"ref": f"L-{i}", "lines": [f"line {j} of {i}" for j in range(n)]}
            for i, n in enumerate(lengths)]


def cross_reference() -> bytes:
    """A bookmark around data and a REF field showing the bookmarked text: with the
    bookmark names of two items meeting, an item's field would show its neighbour's."""
    doc = Document()
    paragraph = doc.add_paragraph("Item ")
    for xml in (f'<w:bookmarkStart {_W} w:id="7" w:name="subject"/>',
                f'<w:r {_W}><w:t>{{{{ ref }}}}</w:t></w:r>',
                f'<w:bookmarkEnd {_W} w:id="7"/>'):
        paragraph._p.append(parse_xml(xml))
    doc.add_paragraph("{%p for line in lines %}")
    doc.add_paragraph("{{ line }}")
    doc.add_paragraph("{%p endfor %}")
    _field(doc.add_paragraph("This was item "), "REF subject \\h")
    return _save(doc)
