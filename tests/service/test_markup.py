"""$html and $markdown: the safe subset as real Word structure, everything else gone.

Each test reads the rendered package itself: paragraph styles, run properties,
numbering definitions, hyperlink relationships and table cells.
"""

from __future__ import annotations

import io
import uuid
import zipfile

import httpx
import pytest
from docx import Document
from docx.opc.constants import RELATIONSHIP_TYPE
from docx_helpers import make_docx
from gendoc_service.errors import InvalidRequest
from gendoc_service.markup import list_start, sanitize
from gendoc_service.rendering import Renderer
from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"

HOSTILE = (
    '<p onclick="steal()" style="color:red">Safe <b onmouseover="x()">text</b></p>'
    "<script>alert('script')</script><style>p { display:none }</style>"
    '<iframe src="https://evil.example/frame">iframe text</iframe>'
    '<img src="https://evil.example/pixel.png" onerror="alert(1)">'
    '<object data="https://evil.example/o"></object><svg><script>alert(2)</script></svg>'
    '<a href="javascript:alert(3)">js link</a> <a href="https://ok.example/">ok link</a>'
    '<form action="https://evil.example/post"><input value="in"></form><!-- comment -->'
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(8 << 20)


def _part(docx: bytes, name: str) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        return etree.fromstring(z.read(name))


def _package_text(docx: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist()
                       if n.endswith((".xml", ".rels")))


def _body(docx: bytes) -> list[etree._Element]:
    """The body's block elements (paragraphs and tables), without the section properties."""
    return [e for e in _part(docx, "word/document.xml").find(f"{W}body")
            if e.tag != f"{W}sectPr"]


def _text(element: etree._Element) -> str:
    return "".join(t.text or "" for t in element.iter(f"{W}t"))


def _style(paragraph: etree._Element) -> str | None:
    style = paragraph.find(f"{W}pPr/{W}pStyle")
    return None if style is None else style.get(f"{W}val")


def _runs(paragraph: etree._Element) -> list[tuple[str, set[str]]]:
    """(text, run property names) of each run with text."""
    found = []
    for run in paragraph.iter(f"{W}r"):
        props = run.find(f"{W}rPr")
        names = {p.tag.removeprefix(W) for p in props} if props is not None else set()
        if text := _text(run):
            found.append((text, names))
    return found


def _list_format(docx: bytes, paragraph: etree._Element) -> tuple[int, str, str | None]:
    """(level, the level's number format, its start override) of a list paragraph."""
    num_pr = paragraph.find(f"{W}pPr/{W}numPr")
    level = int(num_pr.find(f"{W}ilvl").get(f"{W}val"))
    num_id = num_pr.find(f"{W}numId").get(f"{W}val")
    numbering = _part(docx, "word/numbering.xml")
    num = numbering.find(f"{W}num[@{W}numId='{num_id}']")
    abstract_id = num.find(f"{W}abstractNumId").get(f"{W}val")
    abstract = numbering.find(f"{W}abstractNum[@{W}abstractNumId='{abstract_id}']")
    fmt = abstract.find(f"{W}lvl[@{W}ilvl='{level}']/{W}numFmt").get(f"{W}val")
    start = num.find(f"{W}lvlOverride[@{W}ilvl='{level}']/{W}startOverride")
    return level, fmt, None if start is None else start.get(f"{W}val")


def test_sanitize_keeps_the_subset_only() -> None:
    clean = sanitize(HOSTILE)
    for gone in ("script", "alert", "style", "iframe", "evil", "onclick", "onmouseover",
                 "onerror", "img", "object", "svg", "javascript", "form", "input", "comment"):
        assert gone not in clean, gone
    assert "<b>text</b>" in clean and 'href="https://ok.example/"' in clean


def test_hostile_html_leaves_nothing_in_the_document(renderer: Renderer) -> None:
    out = renderer.render(make_docx("{{p body }}"), {"body": {"$html": HOSTILE}})
    package = _package_text(out)
    for gone in ("alert", "steal", "evil.example", "iframe text", "display:none", "javascript"):
        assert gone not in package, gone
    doc = Document(io.BytesIO(out))
    rels = doc.part.rels.values()
    links = [r.target_ref for r in rels if r.reltype == RELATIONSHIP_TYPE.HYPERLINK]
    assert links == ["https://ok.example/"]
    assert not any(r.reltype == RELATIONSHIP_TYPE.IMAGE for r in doc.part.rels.values())
    texts = [_text(b) for b in _body(out)]
    assert texts[0] == "Safe text" and "js link ok link" in texts[1]


def test_html_becomes_paragraphs_runs_lists_links_and_tables(client: httpx.Client) -> None:
    name = f"html-{uuid.uuid4().hex[:8]}"
    assert client.put(f"/v1/templates/{name}", content=make_docx("Before", "{{p notes }}",
                                                                 "After")).status_code == 201
    html = (
        "<h1>Terms</h1><h2>Payment</h2>"
        "<p>Pay <b>now</b>, <i>please</i>, <u>really</u> <s>later</s>"
        ' <a href="https://pay.example/42">here</a><br>second line</p>'
        "<ul><li>first<ul><li>nested <strong>deep</strong></li></ul></li><li>second</li></ul>"
        '<ol start="3"><li>third</li><li>fourth</li></ol>'
        "<table><thead><tr><th>Item</th><th>Price</th></tr></thead>"
        "<tbody><tr><td>Tea</td><td>3 &amp; 4</td></tr><tr><td>Only</td></tr></tbody></table>"
    )
    r = client.post("/v1/render", json={"template": name, "format": "docx",
                                        "data": {"notes": {"$html": html}}})
    assert r.status_code == 200, r.text
    blocks = _body(r.content)
    assert [_text(b) for b in blocks[:3]] == ["Before", "Terms", "Payment"]
    assert [_style(b) for b in blocks[1:3]] == ["Heading1", "Heading2"]

    para = blocks[3]
    assert _runs(para)[:8] == [("Pay ", set()), ("now", {"b"}), (", ", set()), ("please", {"i"}),
                               (", ", set()), ("really", {"u"}), (" ", set()),
                               ("later", {"strike"})]
    [link] = para.findall(f"{W}hyperlink")
    assert _text(link) == "here"
    rel = Document(io.BytesIO(r.content)).part.rels[link.get(R_ID)]
    assert rel.is_external and rel.target_ref == "https://pay.example/42"
    assert para.find(f".//{W}br") is not None and _text(para).endswith("second line")

    items = blocks[4:8]
    assert [_text(p) for p in items] == ["first", "nested deep", "second", "third"]
    assert [_list_format(r.content, p)[:2] for p in items] == [
        (0, "bullet"), (1, "bullet"), (0, "bullet"), (0, "decimal")]
    assert _list_format(r.content, items[3])[2] == "3"  # <ol start="3">
    assert ("deep", {"b"}) in _runs(items[1])

    table = blocks[9]
    assert table.tag == f"{W}tbl" and len(table.findall(f"{W}tblGrid/{W}gridCol")) == 2
    rows = [[_text(c) for c in tr.findall(f"{W}tc")] for tr in table.findall(f"{W}tr")]
    assert rows == [["Item", "Price"], ["Tea", "3 & 4"], ["Only"]]
    assert table.findall(f"{W}tr/{W}trPr/{W}gridAfter")[0].get(f"{W}val") == "1"
    assert _runs(table.find(f"{W}tr/{W}tc/{W}p")) == [("Item", {"b"})]
    # After a table the value ends with an empty paragraph (a table cell needs one).
    assert [_text(b) for b in blocks[10:]] == ["", "After"]


def test_markdown_takes_the_same_path(client: httpx.Client) -> None:
    name = f"md-{uuid.uuid4().hex[:8]}"
    assert client.put(f"/v1/templates/{name}",
                      content=make_docx("{{p text }}")).status_code == 201
    text = ("# Notice\n\nSome *em*, **strong** and ~~old~~ text, [a link](https://md.example/).\n\n"
            "1. one\n   - inner\n2. two\n\n| k | v |\n|---|---|\n| a | 1 |\n\n"
            "<script>alert(1)</script>\n\n![pixel](https://evil.example/p.png)\n")
    r = client.post("/v1/render", json={"template": name, "format": "docx",
                                        "data": {"text": {"$markdown": text}}})
    assert r.status_code == 200, r.text
    blocks = _body(r.content)
    assert _style(blocks[0]) == "Heading1" and _text(blocks[0]) == "Notice"
    runs = dict(_runs(blocks[1]))
    assert runs["em"] == {"i"} and runs["strong"] == {"b"} and runs["old"] == {"strike"}
    [link] = blocks[1].findall(f"{W}hyperlink")
    assert Document(io.BytesIO(r.content)).part.rels[link.get(R_ID)].target_ref \
        == "https://md.example/"
    assert [(_text(p), *_list_format(r.content, p)[:2]) for p in blocks[2:5]] == [
        ("one", 0, "decimal"), ("inner", 1, "bullet"), ("two", 0, "decimal")]
    assert blocks[5].tag == f"{W}tbl"
    # Raw HTML in Markdown is text, never markup; an image is never fetched or placed.
    assert "<script>alert(1)</script>" in [_text(b) for b in blocks]
    package = _package_text(r.content)
    assert "evil.example" not in package and "word/media" not in package


def test_a_document_without_numbering_gets_its_own(renderer: Renderer) -> None:
    doc = Document(io.BytesIO(make_docx("{{p x }}")))
    for rid, rel in list(doc.part.rels.items()):
        if rel.reltype == RELATIONSHIP_TYPE.NUMBERING:
            del doc.part.rels[rid]
    buffer = io.BytesIO()
    doc.save(buffer)
    with zipfile.ZipFile(buffer) as z:
        assert "word/numbering.xml" not in z.namelist()
    out = renderer.render(buffer.getvalue(), {"x": {"$html": "<ol><li>a</li><li>b</li></ol>"}})
    assert [_list_format(out, p)[1] for p in _body(out)] == ["decimal", "decimal"]


def test_bad_values_are_422_naming_the_path(renderer: Renderer) -> None:
    for value in ({"$html": ["<p>"]}, {"$markdown": 3}):
        with pytest.raises(InvalidRequest) as caught:
            renderer.render(make_docx("{{p v.x }}"), {"v": {"x": value}})
        assert caught.value.extensions["errors"][0]["field"] == "data.v.x"


def test_empty_and_plain_text_values(renderer: Renderer) -> None:
    out = renderer.render(make_docx("A", "{{p x }}", "B"),
                          {"x": {"$html": "just  text &lt;b&gt; no tags"}})
    assert [_text(b) for b in _body(out)] == ["A", "just text <b> no tags", "B"]
    out = renderer.render(make_docx("A", "{{p x }}", "B"), {"x": {"$markdown": ""}})
    assert [_text(b) for b in _body(out)] == ["A", "", "B"]


def test_nested_tables_and_lists_are_walked_once(renderer: Renderer) -> None:
    # Each table reads its own rows only: reading the nested ones too made 40 levels
    # take 2^40 steps.
    html = "<table><tr><td>" * 40 + "deep" + "</td></tr></table>" * 40
    out = renderer.render(make_docx("{{p x }}"), {"x": {"$html": html}})
    table, after = _body(out)
    assert _text(table) == "deep" and after.tag == f"{W}p"
    assert not table.findall(f".//{W}tbl")  # the inner tables give their paragraphs
    html = "<ul><li>" * 12 + "twelve" + "</li></ul>" * 12
    out = renderer.render(make_docx("{{p x }}"), {"x": {"$html": html}})
    [item] = _body(out)
    assert _text(item) == "twelve" and _list_format(out, item)[0] == 8  # Word's deepest level


def test_a_value_ending_in_a_table_ends_with_a_paragraph(renderer: Renderer) -> None:
    """A table cell must end with a paragraph, and {{p value }} may stand in one."""
    from docx import Document as New

    doc = New()
    doc.add_table(rows=1, cols=1).rows[0].cells[0].text = "{{p x }}"
    buffer = io.BytesIO()
    doc.save(buffer)
    html = "<table><tr><td>in</td></tr></table>"
    out = renderer.render(buffer.getvalue(), {"x": {"$html": html}})
    [outer] = [b for b in _body(out) if b.tag == f"{W}tbl"]
    [cell] = outer.findall(f"{W}tr/{W}tc")
    assert [c.tag for c in cell if c.tag != f"{W}tcPr"] == [f"{W}tbl", f"{W}p"]
    assert _text(cell) == "in"


def test_list_start_takes_ascii_digits_up_to_words_highest(renderer: Renderer) -> None:
    assert [list_start(v) for v in ("", "3", "007", "x", "-2", "²", "9" * 5000)] == [
        1, 3, 7, 1, 1, 1, 32767]
    # "²" passes str.isdigit() and int() refuses it: that was a 500.
    out = renderer.render(make_docx("{{p x }}"), {"x": {"$html": '<ol start="²"><li>a</li></ol>'}})
    assert [_text(b) for b in _body(out)] == ["a"]


def test_list_ids_are_remembered_until_another_list_lands_after_them() -> None:
    from docxtpl import DocxTemplate
    from gendoc_service.markup import _numbering_part, _Writer

    tpl = DocxTemplate(io.BytesIO(make_docx("x")))
    tpl.init_docx()
    writer = _Writer(tpl)
    first = [int(writer.numbering(True, 1, 0)) for _ in range(3)]
    assert first == [first[0], first[0] + 1, first[0] + 2]
    # An included sub-template's lists are appended by docxcompose: the next id is past them.
    numbering = _numbering_part(tpl.get_docx().part).element
    foreign = etree.SubElement(numbering, f"{W}num")
    foreign.set(f"{W}numId", "90")
    assert writer.numbering(False, 1, 0) == "91"
    assert _Writer(tpl).numbering(True, 1, 0) == "92"  # another value of the same document


def test_short_rows_end_early_instead_of_being_padded(renderer: Renderer) -> None:
    """One wide row and many short ones: as many cells as the HTML has (padding made it
    rows x columns, 160 000 cells from 8 KB of HTML), the rest of each row left empty."""
    html = "<table><tr>" + "<td>w</td>" * 200 + "</tr>" + "<tr><td>s</td></tr>" * 200 \
        + "<tr></tr></table>"
    out = renderer.render(make_docx("{{p x }}"), {"x": {"$html": html}})
    table = _body(out)[0]
    assert len(table.findall(f"{W}tblGrid/{W}gridCol")) == 200
    assert len(table.findall(f".//{W}tc")) == 400
    rows = table.findall(f"{W}tr")
    assert len(rows) == 201  # the row without cells is left out
    assert {r.find(f"{W}trPr/{W}gridAfter").get(f"{W}val") for r in rows[1:]} == {"199"}


def test_characters_xml_cannot_hold_are_dropped(renderer: Renderer) -> None:
    """Control characters and lone surrogates (JSON's "\\ud800") made lxml refuse: a 500."""
    for value, text in (({"$html": "<p>a\x0bb</p><pre>c\x08d</pre>"}, ["ab", "cd"]),
                        ({"$markdown": "e\x01f\ud800"}, ["ef"]),
                        ({"$html": "<a href='https://x.example/\x01'>l</a>"}, ["l"])):
        out = renderer.render(make_docx("{{p x }}"), {"x": value})
        assert [_text(b) for b in _body(out)] == text


def test_a_table_in_a_document_without_section_properties(renderer: Renderer) -> None:
    """A body without w:sectPr is valid (default page); the table width read it: a 500."""
    doc = Document(io.BytesIO(make_docx("{{p x }}")))
    for section in doc.element.body.findall(f"{W}sectPr"):
        doc.element.body.remove(section)
    buffer = io.BytesIO()
    doc.save(buffer)
    out = renderer.render(buffer.getvalue(),
                          {"x": {"$html": "<table><tr><td>a</td><td>b</td></tr></table>"}})
    table = _body(out)[0]
    assert [c.get(f"{W}w") for c in table.findall(f"{W}tblGrid/{W}gridCol")] == ["4500", "4500"]


def test_links_share_a_relationship_per_url_and_never_clash(renderer: Renderer) -> None:
    """Link ids are handed out here, not by python-docx (quadratic in the links): each
    URL gets one relationship, also across values and beside a $richtext link."""
    html = "".join(f'<a href="https://l.example/{i % 3}">{i}</a> ' for i in range(6))
    out = renderer.render(make_docx("{{p a }}", "{{r b }}", "{{p c }}"), {
        "a": {"$html": html},
        "b": {"$richtext": [{"text": "rich", "url": "https://rich.example/"}]},
        "c": {"$html": '<a href="https://l.example/1">again</a> <a href="mailto:x@y.z">m</a>'}})
    rels = Document(io.BytesIO(out)).part.rels
    links = [(_text(h), rels[h.get(R_ID)].target_ref)
             for h in _part(out, "word/document.xml").iter(f"{W}hyperlink")]
    assert links == [(str(i), f"https://l.example/{i % 3}") for i in range(6)] + [
        ("rich", "https://rich.example/"), ("again", "https://l.example/1"),
        ("m", "mailto:x@y.z")]
    targets = [r.target_ref for r in rels.values() if r.reltype == RELATIONSHIP_TYPE.HYPERLINK]
    assert sorted(targets) == sorted(set(targets))  # one relationship per URL
