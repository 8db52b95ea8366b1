"""$html and $markdown rich values: a safe subset of HTML as real Word paragraphs and runs.

The HTML first goes through nh3 (the Ammonia sanitiser) with a list of allowed
tags and attributes: everything else is dropped (scripts, styles, iframes and
the like with their content; other tags keeping their text), event handlers and
`style` attributes vanish, links keep only http(s) and mailto URLs. Markdown is
turned into HTML by markdown-it-py (CommonMark, with tables and strikethrough;
raw HTML inside it is shown as text) and then takes the same path. Nothing is
ever fetched: `img` is not in the subset.

What remains is written as WordprocessingML: paragraphs with the document's
own heading, list and quote styles where it has them (direct formatting where
it does not), runs with bold, italic, underline, strike, superscript,
subscript and code, hyperlinks as relationships of the document, lists on
numbering definitions added to the document (bullets and 1. a. i., nested to
Word's nine levels), and tables with a grid. The result is block-level XML:
place the value alone in its paragraph, `{{p body }}`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lxml.html
import nh3
from docx.opc.constants import CONTENT_TYPE, RELATIONSHIP_TYPE
from docx.opc.packuri import PackURI
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, nsmap, qn
from docx.parts.numbering import NumberingPart
from lxml import etree
from markdown_it import MarkdownIt

_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_INLINE = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "sub", "sup", "code",
           "a", "span", "br", "mark"}
_BLOCKS = {"p", "div", "ul", "ol", "li", "table", "thead", "tbody", "tfoot", "tr", "td", "th",
           "blockquote", "pre", "hr", *_HEADINGS}
# Dropped together with their content: what they hold is code or a resource, not text.
_DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template",
                         "svg", "math", "title", "head", "textarea", "select", "frameset",
                         "frame", "applet"}
_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
_URL_SCHEMES = {"http", "https", "mailto"}
_LINK = re.compile(r"(https?://|mailto:)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# Characters XML 1.0 cannot hold (control characters, lone surrogates from JSON's
# "\ud800" escapes): lxml refuses them (a 500), so they go, as docxtpl drops them
# from plain values.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

MAX_LIST_LEVEL = 8  # WordprocessingML numbering has levels 0-8
_INDENT = 360  # twips of indent a list level (a quarter inch)
# Headings where the document has no "Heading N" style: bold, in half-points.
_HEADING_SIZES = {1: 32, 2: 28, 3: 26, 4: 24, 5: 22, 6: 22}
_BULLETS = ("\u2022", "\u25e6", "\u25aa")  # bullet, white bullet, small square
_ORDERED = ("decimal", "lowerLetter", "lowerRoman")
_TABLE_WIDTH = 9000  # twips, about the text width of an A4 or Letter page, when not known
_EMU_PER_TWIP = 635
_MAX_LIST_START = 32767  # the highest start Word offers for a numbered list


def sanitize(html: str) -> str:
    """`html` reduced to the subset this module writes (nh3 / Ammonia)."""
    return str(nh3.clean(html, tags=_INLINE | _BLOCKS, clean_content_tags=_DROPPED_WITH_CONTENT,
                     attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES, link_rel=None,
                     strip_comments=True))


_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown_to_html(text: str) -> str:
    return str(_MARKDOWN.render(text))


@dataclass(frozen=True)
class _Format:
    """Character formatting of a run, from the inline elements around it."""

    bold: bool = False
    italic: bool = False
    underline: bool = False
    strike: bool = False
    vert: str = ""  # "superscript" / "subscript"
    code: bool = False
    size: int = 0  # half-points; 0: the style's
    link: str = ""  # relationship id of the hyperlink around the run


_TAG_FORMAT: dict[str, dict[str, Any]] = {
    "b": {"bold": True}, "strong": {"bold": True}, "th": {"bold": True},
    "i": {"italic": True}, "em": {"italic": True},
    "u": {"underline": True}, "ins": {"underline": True},
    "s": {"strike": True}, "strike": {"strike": True}, "del": {"strike": True},
    "sup": {"vert": "superscript"}, "sub": {"vert": "subscript"},
    "code": {"code": True}, "pre": {"code": True},
}


@dataclass(frozen=True)
class _Place:
    """Paragraph properties where block content lands (a list item, a quote, a heading)."""

    style: str = ""  # style id
    level: int = -1  # list level, -1 outside lists
    num_id: str = ""  # numbering instance of the list item's first paragraph
    indent: int = 0  # twips
    format: _Format = _Format()


class Markup:
    """Block-level WordprocessingML for docxtpl (`{{p value }}`), like its RichTextParagraph."""

    def __init__(self, xml: str) -> None:
        self.xml = xml

    def __str__(self) -> str:
        return self.xml

    def __html__(self) -> str:  # autoescape: already XML, its text escaped
        return self.xml


def from_html(tpl: Any, html: str) -> Markup:
    """The sanitised `html` as paragraphs and tables of `tpl`'s document."""
    clean = sanitize(_NOT_XML.sub("", html))
    root = lxml.html.fragment_fromstring(clean or "<p></p>", create_parent="div")
    blocks = list(_Writer(tpl).container(root, _Place()))
    if not blocks or blocks[-1].tag != qn("w:p"):
        # A table cell must end with a paragraph (Word refuses the file otherwise), and
        # `{{p value }}` may stand in one; in the body it is one empty line.
        blocks.append(_element("w:p"))
    return Markup("".join(etree.tostring(b, encoding="unicode") for b in blocks))


def from_markdown(tpl: Any, text: str) -> Markup:
    return from_html(tpl, markdown_to_html(text))


def _element(tag: str, **attributes: str) -> etree._Element:
    element = etree.Element(qn(tag), nsmap=_NSMAP)
    for key, value in attributes.items():
        element.set(qn(key.replace("_", ":", 1)), value)
    return element


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, qn(tag))
    for key, value in attributes.items():
        element.set(qn(key.replace("_", ":", 1)), value)
    return element


_NSMAP = {"w": nsmap["w"], "r": nsmap["r"]}


class _Writer:
    """Turns one sanitised HTML tree into WordprocessingML blocks of `tpl`'s document."""

    def __init__(self, tpl: Any) -> None:
        self.tpl = tpl
        self.docx = tpl.get_docx()
        self._styles: dict[tuple[str, str], str] | None = None

    # -- the document's styles and numbering ------------------------------------------------
    def style_id(self, name: str, kind: str = "paragraph") -> str:
        """The id of the document's style `name` ("paragraph", "character", "table"), or ''."""
        if self._styles is None:
            # Read from the XML: python-docx's style objects cost ~0.1 ms each to ask a
            # name, and a default template has ~160 (measured: 70 ms a value, mostly this).
            # Word stores built-in names in lower case ("heading 1"); Word shows them
            # capitalised, so names compare without case.
            self._styles = {}
            for style in self.docx.styles.element.findall(qn("w:style")):
                label = style.find(qn("w:name"))
                if label is not None:
                    key = (label.get(qn("w:val"), "").lower(), style.get(qn("w:type"), ""))
                    self._styles.setdefault(key, style.get(qn("w:styleId"), ""))
        return self._styles.get((name.lower(), kind), "")

    def numbering(self, ordered: bool, start: int, level: int) -> str:
        """A new numbering instance (restarting at `start` on `level`) of a list kind."""
        numbering = _numbering_part(self.docx.part).element
        kinds: dict[bool, str] = getattr(self.tpl, "_gendoc_list_kinds", {})
        if ordered not in kinds:
            kinds[ordered] = _add_abstract_list(numbering, ordered)
            self.tpl._gendoc_list_kinds = kinds  # one definition per kind per document
        num_id = self._next_num_id(numbering)
        num = _sub(numbering, "w:num", w_numId=str(num_id))
        _sub(num, "w:abstractNumId", w_val=kinds[ordered])
        override = _sub(num, "w:lvlOverride", w_ilvl=str(level))
        _sub(override, "w:startOverride", w_val=str(start))
        self.tpl._gendoc_next_num = (num, num_id + 1)
        return str(num_id)

    def _next_num_id(self, numbering: etree._Element) -> int:
        """The id for a new w:num: one past the highest, remembered per document.

        Every list is a numbering instance; finding the highest id anew for each made a
        value of many short lists quadratic (measured: 4000 lists, 22 s). The remembered
        id holds while our last w:num is still the part's last child (an included
        sub-template's lists are appended by docxcompose)."""
        known = getattr(self.tpl, "_gendoc_next_num", None)
        if known is not None and known[0].getparent() is numbering and known[0].getnext() is None:
            return int(known[1])
        return 1 + max((int(n) for n in numbering.xpath("w:num/@w:numId")),
                       default=0)

    def link_id(self, url: str) -> str:
        """The id of the document's hyperlink relationship to `url`, added when new.

        python-docx (docxtpl's build_url_id) looks through every relationship for a
        match and then for the lowest free id, for each link: a value of 8000 links
        to different URLs took 19 s. Here the ids are remembered per document and the
        next free one is looked for from the last one taken."""
        rels = self.docx.part.rels
        links: dict[str, str] = getattr(self.tpl, "_gendoc_links", {})
        rid = links.get(url)
        if rid is not None and rid in rels and rels[rid].target_ref == url:
            return rid
        number = int(getattr(self.tpl, "_gendoc_next_rid", 1))
        while f"rId{number}" in rels:
            number += 1
        rid = f"rId{number}"
        rels.add_relationship(RELATIONSHIP_TYPE.HYPERLINK, url, rid, is_external=True)
        links[url] = rid
        self.tpl._gendoc_links, self.tpl._gendoc_next_rid = links, number + 1
        return rid

    # -- blocks -------------------------------------------------------------------------------
    def container(self, element: etree._Element, place: _Place) -> Iterator[etree._Element]:
        """The blocks of an element holding both inline and block content."""
        loose: list[Any] = []  # inline content waiting for its paragraph
        if element.text:
            loose.append(element.text)
        for child in element:
            if child.tag in _BLOCKS:
                if (paragraph := self.paragraph(loose, place)) is not None:
                    yield paragraph
                    place = self.continued(place)
                loose = []
                for block in self.block(child, place):
                    yield block
                    place = self.continued(place)
            else:
                loose.append(child)
            if child.tail:
                loose.append(child.tail)
        if (paragraph := self.paragraph(loose, place)) is not None:
            yield paragraph

    @staticmethod
    def continued(place: _Place) -> _Place:
        """After a list item's first paragraph the rest is indented, not numbered again."""
        return dataclasses.replace(place, num_id="") if place.num_id else place

    def block(self, element: etree._Element, place: _Place) -> Iterator[etree._Element]:
        tag = element.tag
        if tag in _HEADINGS:
            style = self.style_id(f"Heading {_HEADINGS[tag]}")
            fmt = place.format if style else dataclasses.replace(
                place.format, bold=True, size=_HEADING_SIZES[_HEADINGS[tag]])
            yield from self.container(element, dataclasses.replace(place, style=style,
                                                                   format=fmt))
        elif tag in ("ul", "ol"):
            yield from self.list_items(element, place)
        elif tag == "table":
            yield self.table(element)
        elif tag == "blockquote":
            yield from self.container(element, dataclasses.replace(
                place, style=self.style_id("Quote") or place.style, indent=place.indent + 720))
        elif tag == "pre":
            yield from self.preformatted(element, place)
        elif tag == "hr":
            yield _element("w:p")
        else:  # p, div, and stray table or list parts: their content, in place
            yield from self.container(element, place)

    def list_items(self, element: etree._Element, place: _Place) -> Iterator[etree._Element]:
        level = min(place.level + 1, MAX_LIST_LEVEL)
        num_id = self.numbering(element.tag == "ol", list_start(element.get("start", "")), level)
        style = self.style_id("List Paragraph")
        for item in element:
            if item.tag != "li":  # text between items is not part of the list
                continue
            item_place = _Place(style=style, level=level, num_id=num_id,
                                indent=_INDENT * 2 * (level + 1), format=place.format)
            yield from self.container(item, item_place)

    def preformatted(self, element: etree._Element, place: _Place) -> Iterator[etree._Element]:
        """Each line of a `pre` is a paragraph of its own, spaces kept."""
        fmt = dataclasses.replace(place.format, code=True)
        for line in element.text_content().rstrip("\n").split("\n"):
            paragraph = self.paragraph_element(place)
            self.run(paragraph, line, fmt, keep_spaces=True)
            yield paragraph

    # -- paragraphs and runs ------------------------------------------------------------------
    def paragraph_element(self, place: _Place) -> etree._Element:
        paragraph = _element("w:p")
        props = _sub(paragraph, "w:pPr")
        if place.style:
            _sub(props, "w:pStyle", w_val=place.style)
        if place.num_id:
            num_pr = _sub(props, "w:numPr")
            _sub(num_pr, "w:ilvl", w_val=str(place.level))
            _sub(num_pr, "w:numId", w_val=place.num_id)
        if place.indent:
            _sub(props, "w:ind", w_left=str(place.indent),
                 **({"w_hanging": str(_INDENT)} if place.num_id else {}))
        if not len(props):
            paragraph.remove(props)
        return paragraph

    def paragraph(self, content: list[Any], place: _Place) -> etree._Element | None:
        """A paragraph of inline content; None when it holds nothing but white space."""
        paragraph = self.paragraph_element(place)
        self.inline(paragraph, content, place.format, [True])
        runs = paragraph.findall(f".//{qn('w:r')}")
        if not runs:
            return None
        _trim_trailing_space(runs[-1])
        return paragraph

    def inline(self, paragraph: etree._Element, content: list[Any], fmt: _Format,
               line_start: list[bool]) -> None:
        """Runs for text and inline elements; `line_start` says whether a space would lead."""
        for item in content:
            if isinstance(item, str):
                text = _SPACE.sub(" ", item)
                if line_start[0]:
                    text = text.lstrip()
                if text:
                    self.run(paragraph, text, fmt)
                    line_start[0] = text.endswith(" ")
                continue
            if item.tag == "br":
                self.run(paragraph, None, fmt)
                line_start[0] = True
            else:
                inner = self.formatted(item, fmt)
                children: list[Any] = [item.text] if item.text else []
                for child in item:
                    children.append(child)
                    if child.tail:
                        children.append(child.tail)
                self.inline(paragraph, children, inner, line_start)

    def formatted(self, element: etree._Element, fmt: _Format) -> _Format:
        if element.tag == "a":
            href = element.get("href", "")
            if _LINK.match(href):  # relative and other links: text only
                return dataclasses.replace(fmt, link=self.link_id(href))
            return fmt
        return dataclasses.replace(fmt, **_TAG_FORMAT.get(element.tag, {}))

    def run(self, paragraph: etree._Element, text: str | None, fmt: _Format,
            keep_spaces: bool = False) -> None:
        """One run (a line break when `text` is None), inside a hyperlink when it has one."""
        parent = paragraph
        link_style = self.style_id("Hyperlink", "character") if fmt.link else ""
        if fmt.link:
            parent = _sub(paragraph, "w:hyperlink", r_id=fmt.link)
        run = _sub(parent, "w:r")
        props = _sub(run, "w:rPr")
        if fmt.link:
            if link_style:
                _sub(props, "w:rStyle", w_val=link_style)
            else:
                _sub(props, "w:color", w_val="0563C1")
        if fmt.code:
            _sub(props, "w:rFonts", w_ascii="Courier New", w_hAnsi="Courier New",
                 w_cs="Courier New")
        for flag, tag in ((fmt.bold, "w:b"), (fmt.italic, "w:i"), (fmt.strike, "w:strike")):
            if flag:
                _sub(props, tag)
        if fmt.size:
            _sub(props, "w:sz", w_val=str(fmt.size))
        if fmt.underline or (fmt.link and not link_style):
            _sub(props, "w:u", w_val="single")
        if fmt.vert:
            _sub(props, "w:vertAlign", w_val=fmt.vert)
        if not len(props):
            run.remove(props)
        if text is None:
            _sub(run, "w:br")
            return
        t = _sub(run, "w:t")
        t.text = text
        if keep_spaces or text != text.strip():
            t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")

    # -- tables -------------------------------------------------------------------------------
    def text_width(self) -> int:
        """Twips between the margins of the document's last section (where tables fit)."""
        if not self.docx.sections:  # a body without w:sectPr (valid: the page is the default)
            return _TABLE_WIDTH
        section = self.docx.sections[-1]
        try:
            emu = section.page_width - section.left_margin - section.right_margin
        except TypeError:  # a section without page size or margins
            return _TABLE_WIDTH
        return int(emu // _EMU_PER_TWIP) if emu > 0 else _TABLE_WIDTH

    def table(self, element: etree._Element) -> etree._Element:
        # A row without cells shows nothing in a browser either (and Word wants a cell).
        rows = [cells for row in _rows(element) if (cells := _cells(row))]
        columns = max((len(cells) for cells in rows), default=1)
        table = _element("w:tbl")
        props = _sub(table, "w:tblPr")
        grid_style = self.style_id("Table Grid", "table")
        if grid_style:
            _sub(props, "w:tblStyle", w_val=grid_style)
        _sub(props, "w:tblW", w_w="0", w_type="auto")
        if not grid_style:
            borders = _sub(props, "w:tblBorders")
            for side in ("top", "left", "bottom", "right", "insideH", "insideV"):
                _sub(borders, f"w:{side}", w_val="single", w_sz="4", w_space="0",
                     w_color="auto")
        grid = _sub(table, "w:tblGrid")
        width = str(self.text_width() // columns)
        for _ in range(columns):
            _sub(grid, "w:gridCol", w_w=width)
        for cells in rows:
            tr = _sub(table, "w:tr")
            if len(cells) < columns:
                # A short row leaves the rest of the grid empty, as a browser shows it.
                # Padding it with empty cells made one wide row and many short ones
                # rows x columns cells (400 x 400 from 8 KB of HTML: 6 s of CPU).
                missing = columns - len(cells)
                row_props = _sub(tr, "w:trPr")
                _sub(row_props, "w:gridAfter", w_val=str(missing))
                _sub(row_props, "w:wAfter", w_w=str(int(width) * missing), w_type="dxa")
            for cell in cells:
                tc = _sub(tr, "w:tc")
                _sub(_sub(tc, "w:tcPr"), "w:tcW", w_w=width, w_type="dxa")
                place = _Place(format=_Format(bold=True)) if cell.tag == "th" else _Place()
                blocks = list(self.container(cell, place))
                # A cell holds paragraphs only here: a table inside one gives its paragraphs.
                paragraphs = [p for b in blocks
                              for p in ([b] if b.tag == qn("w:p") else list(b.iter(qn("w:p"))))]
                tc.extend(paragraphs or [_element("w:p")])
        if not rows:
            _sub(_sub(table, "w:tr"), "w:tc").append(_element("w:p"))
        return table


def list_start(value: str) -> int:
    """The first number of an `ol start=...`: 1 unless ASCII digits, at most Word's highest.

    str.isdigit() alone also takes "²" and other digits int() refuses, and int() refuses
    more than 4300 digits: either made a request's markup a 500."""
    if not (value.isascii() and value.isdigit()):
        return 1
    return min(int(value.lstrip("0")[:6] or "0"), _MAX_LIST_START)


def _numbering_part(document_part: Any) -> NumberingPart:
    """The document's numbering part, added when it has none (python-docx cannot make one)."""
    try:
        return document_part.part_related_by(RELATIONSHIP_TYPE.NUMBERING)  # type: ignore[no-any-return]
    except KeyError:
        part = NumberingPart(PackURI("/word/numbering.xml"), CONTENT_TYPE.WML_NUMBERING,
                             parse_xml(f"<w:numbering {nsdecls('w')}/>"), document_part.package)
        document_part.relate_to(part, RELATIONSHIP_TYPE.NUMBERING)
        return part


def _rows(table: etree._Element) -> list[etree._Element]:
    """The table's own rows (not those of a table inside one of its cells)."""
    return [row for child in table
            for row in ([child] if child.tag == "tr" else
                        [r for r in child if r.tag == "tr"]
                        if child.tag in ("thead", "tbody", "tfoot") else [])]


def _cells(row: etree._Element) -> list[etree._Element]:
    return [cell for cell in row if cell.tag in ("td", "th")]


def _trim_trailing_space(run: etree._Element) -> None:
    t = run.find(qn("w:t"))
    if t is not None and t.text and t.get(
            "{http://www.w3.org/XML/1998/namespace}space") == "preserve":
        t.text = t.text.rstrip(" ") or t.text


def _add_abstract_list(numbering: etree._Element, ordered: bool) -> str:
    """A nine-level list definition (bullets, or 1. a. i.), before the first w:num."""
    abstract_id = str(1 + max((int(a.get(qn("w:abstractNumId")))
                               for a in numbering.findall(qn("w:abstractNum"))), default=0))
    abstract = etree.fromstring(f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abstract_id}">'
                                '<w:multiLevelType w:val="hybridMultilevel"/></w:abstractNum>')
    for level in range(MAX_LIST_LEVEL + 1):
        fmt = _ORDERED[level % 3] if ordered else "bullet"
        text = f"%{level + 1}." if ordered else _BULLETS[level % 3]
        lvl = _sub(abstract, "w:lvl", w_ilvl=str(level))
        _sub(lvl, "w:start", w_val="1")
        _sub(lvl, "w:numFmt", w_val=fmt)
        _sub(lvl, "w:lvlText", w_val=text)
        _sub(lvl, "w:lvlJc", w_val="left")
        _sub(_sub(lvl, "w:pPr"), "w:ind", w_left=str(_INDENT * 2 * (level + 1)),
             w_hanging=str(_INDENT))
    first_num = numbering.find(qn("w:num"))
    if first_num is not None:
        first_num.addprevious(abstract)
    else:
        numbering.append(abstract)
    return abstract_id
