"""comparison.py: variables added and removed, and the text diff, as pure functions."""

from __future__ import annotations

from docx_helpers import make_docx
from gendoc_service.comparison import compare, document_text, variable_paths


def test_variable_paths_spell_every_level() -> None:
    tree = {"invoice": {"items": [{"price": None}], "no": None}, "grid": [[None]], "x": None}
    assert variable_paths(tree) == [
        "invoice", "invoice.items", "invoice.items[]", "invoice.items[].price", "invoice.no",
        "grid", "grid[]", "grid[][]", "x",
    ]
    assert variable_paths(None) == variable_paths({}) == []


def test_compare_lists_added_and_removed_paths_and_diffs_the_text() -> None:
    old = {"customer": {"name": None}, "total": None}
    new = {"customer": {"name": None, "email": None}}
    result = compare(old, new, ["Hello {{ customer.name }}", "Total {{ total }}"],
                     ["Hello {{ customer.name }}", "Thanks"], old_label="a", new_label="b")
    assert result.added == ["customer.email"]
    assert result.removed == ["total"]
    assert result.diff[:2] == ["--- a", "+++ b"]
    assert "-Total {{ total }}" in result.diff and "+Thanks" in result.diff
    assert " Hello {{ customer.name }}" in result.diff
    assert compare(old, old, ["x"], ["x"]).public() == {
        "variables": {"added": [], "removed": []}, "diff": []}


def test_document_text_reads_body_header_and_footer_with_tags_as_written() -> None:
    docx = make_docx("Dear {{ name }},", "", "Bye", header="Head {{ h }}", footer="Foot")
    lines = document_text(docx)
    assert {"Dear {{ name }},", "Bye", "Head {{ h }}", "Foot"} <= set(lines)
    assert "" not in lines  # empty paragraphs say nothing about a change
    assert lines.index("Dear {{ name }},") < lines.index("Bye")

