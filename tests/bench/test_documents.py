"""The bench's documents are made by code it ships, and have the promised shape."""

from __future__ import annotations

import io
import re
import zipfile

from gendoc.bench import documents


def _body(docx: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        return z.read("word/document.xml").decode()


def test_the_report_has_a_1000_row_table() -> None:
    body = _body(documents.report().rendered())
    assert len(re.findall(r"<w:tr[ >]", body)) == 1 + 1000  # the header and the rows
    assert ">1000<" in body
    assert "{%" not in body and "{{" not in body


def test_the_contract_is_rendered_from_its_clauses() -> None:
    doc = documents.contract()
    body = _body(doc.rendered())
    assert doc.data["clauses"][-1]["paragraphs"][-1][:40] in body
    assert "{%" not in body and "{{" not in body


def test_the_documents_are_the_same_every_time() -> None:
    assert documents.contract().data == documents.contract().data
    assert documents.report().data == documents.report().data
