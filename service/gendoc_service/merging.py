"""The merged document: many rendered items of one template as one .docx, one section each.

Converting is mostly per-document overhead (load, filter set-up, layout start,
export set-up: a one-page invoice ≈ 90 ms alone, ≈ 12 ms as one of 20 in one
document), so a batch converts its items as one document and splits the PDF
afterwards (`splitting`). Each item becomes its own section that starts a new
page and restarts page numbering, with its own rendered headers and footers;
its images, links, footnotes, bookmarks, drawing ids and list numbering are
renamed so that nothing it holds meets a neighbour's. A bookmark at each item's
first paragraph (`item_bookmark`) is exported into the PDF as a named
destination, so the split follows the document, not a page count.

`blockers` says why an item cannot be merged safely (anything this module
does not know to keep apart): such items are converted alone. Everything here
is pure: bytes in, bytes out.
"""

from __future__ import annotations

import copy
import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PR_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
DC_NS = "http://purl.org/dc/elements/1.1/"
CP_NS = "http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
W = f"{{{W_NS}}}"
R = f"{{{R_NS}}}"

DOCUMENT = "word/document.xml"
DOCUMENT_RELS = "word/_rels/document.xml.rels"
CONTENT_TYPES = "[Content_Types].xml"
CORE = "docProps/core.xml"
# Letters and digits only: LibreOffice escapes anything else in destination names.
ITEM_BOOKMARK_PREFIX = "gendocitem"

# Parts every item shares with the first: they must be the same bytes in every item
# of a merged document (a sub-document or rich value that added styles or lists
# makes its item different, and it then merges only with items alike: chunks.py).
_SHARED = {"styles", "stylesWithEffects", "settings", "webSettings", "fontTable", "theme",
           "numbering", "customXml", "endnotes"}
# Parts each item brings along, renamed.
_COPIED = {"header", "footer", "image"}
_HYPERLINK = "hyperlink"
_FOOTNOTES = "footnotes"
_NOTE_TYPES = ("footnote", "endnote")
_HEADER_KINDS = ("headerReference", "footerReference")
# Fields whose result would count the merged document rather than the item.
_DOCUMENT_FIELDS = re.compile(r"\b(NUMPAGES|SECTION|SECTIONPAGES|DOCPROPERTY|TOC|INDEX)\b")
_XML_DECLARATION = b"<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n"


def item_bookmark(index: int) -> str:
    """The bookmark (and PDF named destination) at the start of item `index` of a chunk."""
    return f"{ITEM_BOOKMARK_PREFIX}{index}"


def read_package(docx: bytes) -> dict[str, bytes]:
    """The parts of a rendered .docx by zip name."""
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()
                if not info.is_dir()}


def write_package(parts: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    # Level 1: the package goes straight to the converter on localhost.
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def _xml(data: bytes) -> etree._Element:
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, huge_tree=True))


def _bytes(root: etree._Element) -> bytes:
    return _XML_DECLARATION + bytes(etree.tostring(root, encoding="UTF-8"))


def _rels_name(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _kind(rel: etree._Element) -> str:
    return str(rel.get("Type", "")).rsplit("/", 1)[-1]


def _target(source: str, rel: etree._Element) -> str:
    """The zip name of an internal relationship's target, relative to part `source`."""
    target = str(rel.get("Target", ""))
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))


def _rels(parts: dict[str, bytes], part: str) -> list[etree._Element]:
    data = parts.get(_rels_name(part))
    return list(_xml(data)) if data else []


# -- what cannot be merged ---------------------------------------------------------
def blockers(parts: dict[str, bytes]) -> list[str]:
    """Why this rendered item cannot be merged with others (empty: it can)."""
    if DOCUMENT not in parts:
        return ["no word/document.xml"]
    found: list[str] = []
    for rel in _rels(parts, DOCUMENT):
        kind = _kind(rel)
        external = rel.get("TargetMode") == "External"
        if kind == _HYPERLINK and external:
            continue
        if external or kind not in _SHARED | _COPIED | {_FOOTNOTES}:
            found.append(f"a {kind} relationship")
        elif kind in {"header", "footer"}:
            sub = _target(DOCUMENT, rel)
            found += [f"a {_kind(r)} relationship in a {kind}" for r in _rels(parts, sub)
                      if _kind(r) not in {"image", _HYPERLINK}]
        elif kind == _FOOTNOTES and _rels(parts, _target(DOCUMENT, rel)):
            found.append("relationships in the footnotes")
    body_text = parts[DOCUMENT].decode("utf-8", "replace")
    stories = [body_text] + [parts[n].decode("utf-8", "replace") for n in parts
                             if re.match(r"word/(header|footer)\d*\.xml$", n)]
    for story in stories:
        for instruction in _instructions(story):
            if match := _DOCUMENT_FIELDS.search(instruction):
                found.append(f"a {match.group(1)} field")
    document = _xml(parts[DOCUMENT])
    found += _section_blockers(_section_properties(document))
    if document.find(f".//{W}altChunk") is not None:
        found.append("an altChunk")
    if document.find(f".//{W}endnoteReference") is not None:
        found.append("endnotes (they gather at the end of the whole document)")
    if _footnote_references(document):
        found += _footnote_blockers(document, parts.get("word/settings.xml"))
    return list(dict.fromkeys(found))


def _footnote_blockers(document: etree._Element, settings: bytes | None) -> list[str]:
    """Footnote marks are written as 1, 2, ... per item (`_label_footnotes`): that
    holds for one section numbered in decimals from 1 through the document."""
    found = []
    if len(_section_properties(document)) > 1:
        found.append("footnotes in a template of several sections")
    sources = [document] + ([_xml(settings)] if settings else [])
    for source in sources:
        for numbering in source.iter(f"{W}footnotePr"):
            for child in numbering:
                name, value = etree.QName(child).localname, child.get(f"{W}val")
                plain = {("numFmt", "decimal"), ("numStart", "1"), ("numRestart", "continuous"),
                         ("pos", "pageBottom")}
                if name != "footnote" and (name, value) not in plain:
                    found.append(f"footnotes numbered with {name}={value}")
    return found


def _instructions(xml: str) -> Iterator[str]:
    yield from re.findall(r"<w:instrText[^>]*>([^<]*)</w:instrText>", xml)
    yield from re.findall(r'w:instr="([^"]*)"', xml)


def _section_blockers(sections: list[etree._Element]) -> list[str]:
    """A section inherits the headers it lacks from the section before it: in a merged
    document that would be the previous item's. Every kind of header or footer the
    template uses must therefore be named by its first section."""
    first = {(ref.tag, ref.get(f"{W}type")) for ref in _references(sections[0])}
    used = {(ref.tag, ref.get(f"{W}type")) for s in sections for ref in _references(s)}
    if used - first:
        return ["a header or footer that the first section does not name"]
    return []


def _references(section: etree._Element) -> list[etree._Element]:
    return [child for child in section if etree.QName(child).localname in _HEADER_KINDS]


def _section_properties(document: etree._Element) -> list[etree._Element]:
    """Every sectPr of the body in document order (the body's own is the last)."""
    body = document.find(f"{W}body")
    assert body is not None
    return [s for s in body.iter(f"{W}sectPr") if s.getparent() is not None
            and s.getparent().tag in (f"{W}pPr", f"{W}body")]


def _footnote_references(document: etree._Element) -> list[etree._Element]:
    return list(document.iter(f"{W}footnoteReference"))


def _notes(root: etree._Element, tag: str) -> list[etree._Element]:
    """The real notes of a footnotes/endnotes part (not its separators)."""
    return [n for n in root.iter(f"{W}{tag}") if n.get(f"{W}type") in (None, "normal")]


# -- the merge -----------------------------------------------------------------------
@dataclass
class _Merged:
    """The package being built: the first item's, with the others folded in."""

    parts: dict[str, bytes]
    rels: etree._Element
    types: etree._Element
    numbering: etree._Element | None
    footnotes: etree._Element | None
    styles: etree._Element | None
    ids: dict[str, int] = field(default_factory=dict)
    numbered: dict[str, tuple[str, str, str, etree._Element | None]] = field(
        default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)  # the first item's rIds by kind

    def next_id(self, counter: str, start: int) -> int:
        value = max(self.ids.get(counter, start), start) + 1
        self.ids[counter] = value
        return value

    def add_rel(self, kind_uri: str, target: str, external: bool = False) -> str:
        rid = f"rIdGd{self.next_id('rel', 0)}"
        rel = etree.SubElement(self.rels, f"{{{PR_NS}}}Relationship", Id=rid, Type=kind_uri,
                               Target=target)
        if external:
            rel.set("TargetMode", "External")
        return rid


def merge(items: list[dict[str, bytes]]) -> bytes:
    """One .docx holding `items` as consecutive sections, item i starting at the bookmark
    `item_bookmark(i)`. Each item is a rendering of the same template without `blockers`;
    the first is a whole package, the others need only their own parts (`with_shared`)."""
    first = items[0]
    parts = dict(first)
    numbering_name = _shared_target(first, "numbering")
    footnotes_name = _shared_target(first, _FOOTNOTES)
    styles_name = _shared_target(first, "styles")
    merged = _Merged(
        parts=parts, rels=_xml(parts[DOCUMENT_RELS]), types=_xml(parts[CONTENT_TYPES]),
        numbering=_xml(parts[numbering_name]) if numbering_name else None,
        footnotes=_xml(parts[footnotes_name]) if footnotes_name else None,
        styles=_xml(parts[styles_name]) if styles_name else None,
    )
    merged.numbered = _numbered_styles(merged.styles)
    merged.shared = {_kind(r): str(r.get("Id")) for r in merged.rels}
    document = _xml(parts[DOCUMENT])
    body = document.find(f"{W}body")
    assert body is not None
    _prime_ids(merged, document)
    for child in list(body):
        body.remove(child)
    last_section: etree._Element | None = None
    for index, item in enumerate(items):
        item_body = _item_body(merged, item, index)
        if last_section is not None:
            _close_section(body, last_section)
        section = item_body[-1]
        body.extend(item_body[:-1])
        last_section = section
    assert last_section is not None
    body.append(last_section)
    parts[DOCUMENT] = _bytes(document)
    parts[DOCUMENT_RELS] = _bytes(merged.rels)
    parts[CONTENT_TYPES] = _bytes(merged.types)
    if numbering_name and merged.numbering is not None:
        parts[numbering_name] = _bytes(merged.numbering)
    if footnotes_name and merged.footnotes is not None:
        parts[footnotes_name] = _bytes(merged.footnotes)
    return write_package(parts)


def with_shared(base: dict[str, bytes], own: dict[str, bytes]) -> dict[str, bytes]:
    """A whole package from an item's own parts (body, headers, images...) and the
    shared parts of `base`, a whole package of the same template."""
    whole = {**base, **own}
    types = _xml(base[CONTENT_TYPES])
    declared = {str(o.get("PartName")) for o in types.iter(f"{{{CT_NS}}}Override")}
    defaults = {str(d.get("Extension", "")).lower() for d in types.iter(f"{{{CT_NS}}}Default")}
    for entry in _xml(own[CONTENT_TYPES]):
        if entry.tag == f"{{{CT_NS}}}Override" and entry.get("PartName") not in declared:
            types.append(copy.deepcopy(entry))
        elif (entry.tag == f"{{{CT_NS}}}Default"
              and str(entry.get("Extension", "")).lower() not in defaults):
            types.insert(0, copy.deepcopy(entry))
    whole[CONTENT_TYPES] = _bytes(types)
    return whole


def _shared_target(parts: dict[str, bytes], kind: str) -> str | None:
    for rel in _rels(parts, DOCUMENT):
        if _kind(rel) == kind and rel.get("TargetMode") != "External":
            return _target(DOCUMENT, rel)
    return None


def _prime_ids(merged: _Merged, document: etree._Element) -> None:
    """Counters start above every id the first item (the template) already uses."""
    def top(values: Iterator[str | None]) -> int:
        return max((int(v) for v in values if v and v.lstrip("-").isdigit()), default=0)

    merged.ids["bookmark"] = top(b.get(f"{W}id") for b in document.iter(f"{W}bookmarkStart"))
    merged.ids["docpr"] = top(d.get("id") for d in document.iter(f"{{{WP_NS}}}docPr"))
    if merged.footnotes is not None:
        merged.ids["footnote"] = top(n.get(f"{W}id") for n in merged.footnotes)
    if merged.numbering is not None:
        merged.ids["num"] = top(n.get(f"{W}numId") for n in merged.numbering.iter(f"{W}num"))
        merged.ids["abstract"] = top(a.get(f"{W}abstractNumId")
                                     for a in merged.numbering.iter(f"{W}abstractNum"))


def _item_body(merged: _Merged, item: dict[str, bytes], index: int) -> list[etree._Element]:
    """The item's body elements, renamed into the merged package; its sectPr last."""
    document = _xml(item[DOCUMENT])
    body = document.find(f"{W}body")
    assert body is not None
    if index > 0:
        _rename_relationships(merged, item, document, index)
        _renumber_lists(merged, document, index)
        _renumber_footnotes(merged, item, document)
        _rename_bookmarks(merged, document, index)
        _renumber_drawings(merged, document)
    _mark_start(merged, body, index)
    _label_footnotes(document)
    _restart_section(_section_properties(document)[0])
    elements = list(body)
    if elements[-1].tag != f"{W}sectPr":  # a body without one: Word's defaults
        elements.append(etree.Element(f"{W}sectPr"))
    return elements


def _close_section(body: etree._Element, section: etree._Element) -> None:
    """End the previous item with its section: its last paragraph carries the sectPr."""
    last = body[-1] if len(body) else None
    if last is None or last.tag != f"{W}p" or last.find(f"{W}pPr/{W}sectPr") is not None:
        last = etree.SubElement(body, f"{W}p")
    ppr = last.find(f"{W}pPr")
    if ppr is None:
        ppr = etree.Element(f"{W}pPr")
        last.insert(0, ppr)
    ppr.append(section)


def _restart_section(section: etree._Element) -> None:
    """An item's first section starts a new page, numbered from 1 unless it says otherwise."""
    kind = section.find(f"{W}type")
    if kind is not None:
        section.remove(kind)
    number = section.find(f"{W}pgNumType")
    if number is None:
        number = etree.Element(f"{W}pgNumType")
        _insert_in_order(section, number)
    if number.get(f"{W}start") is None:
        number.set(f"{W}start", "1")


# CT_SectPr's sequence: a new child goes before the first of these it precedes.
_SECTPR_ORDER = ["headerReference", "footerReference", "footnotePr", "endnotePr", "type",
                 "pgSz", "pgMar", "paperSrc", "pgBorders", "lnNumType", "pgNumType", "cols",
                 "formProt", "vAlign", "noEndnote", "titlePg", "textDirection", "bidi",
                 "rtlGutter", "docGrid", "printerSettings", "sectPrChange"]


def _insert_in_order(section: etree._Element, child: etree._Element) -> None:
    rank = _SECTPR_ORDER.index(etree.QName(child).localname)
    for i, existing in enumerate(section):
        name = etree.QName(existing).localname
        if name in _SECTPR_ORDER and _SECTPR_ORDER.index(name) > rank:
            section.insert(i, child)
            return
    section.append(child)


def _mark_start(merged: _Merged, body: etree._Element, index: int) -> None:
    """A bookmark at the item's first paragraph (the first cell's, for a table)."""
    first = next(body.iter(f"{W}p"), None)
    if first is None:
        first = etree.Element(f"{W}p")
        body.insert(0, first)
    bid = str(merged.next_id("bookmark", 0))
    start = etree.Element(f"{W}bookmarkStart")
    start.set(f"{W}id", bid)
    start.set(f"{W}name", item_bookmark(index))
    end = etree.Element(f"{W}bookmarkEnd")
    end.set(f"{W}id", bid)
    at = 1 if len(first) and first[0].tag == f"{W}pPr" else 0
    first.insert(at, end)
    first.insert(at, start)


def _rename_relationships(merged: _Merged, item: dict[str, bytes],
                          document: etree._Element, index: int) -> None:
    """Copy the item's own parts (headers, footers, images) under new names and
    point every r:* attribute of its body at the merged package's relationships."""
    mapping: dict[str, str] = {}
    types = _xml(item[CONTENT_TYPES])
    for rel in _rels(item, DOCUMENT):
        kind, rid = _kind(rel), str(rel.get("Id"))
        if rel.get("TargetMode") == "External":
            mapping[rid] = merged.add_rel(str(rel.get("Type")), str(rel.get("Target")), True)
        elif kind in _COPIED:
            name = _copy_part(merged, item, types, _target(DOCUMENT, rel), index)
            mapping[rid] = merged.add_rel(str(rel.get("Type")),
                                          posixpath.relpath(name, "word"))
        else:
            mapping[rid] = merged.shared[kind]
    for element in document.iter():
        for attribute, value in element.attrib.items():
            if attribute.startswith(R) and value in mapping:
                element.set(attribute, mapping[value])


def _copy_part(merged: _Merged, item: dict[str, bytes], types: etree._Element, name: str,
               index: int) -> str:
    """The item's part `name` in the merged package: the same part when the bytes are
    the same (the template's own images), else a copy under a new name (with its rels)."""
    data = item[name]
    if merged.parts.get(name) == data and not _rels(item, name):
        return name
    folder, base = posixpath.split(name)
    new = posixpath.join(folder, f"gd{index}-{base}")
    merged.parts[new] = data
    rels = item.get(_rels_name(name))
    if rels is not None:
        root = _xml(rels)
        for rel in root:
            if rel.get("TargetMode") != "External":
                target = _copy_part(merged, item, types, _target(name, rel), index)
                rel.set("Target", posixpath.relpath(target, folder))
        merged.parts[_rels_name(new)] = _bytes(root)
    _declare_type(merged, types, name, new)
    return new


def _declare_type(merged: _Merged, types: etree._Element, old: str, new: str) -> None:
    """Declare part `new`'s content type as the item's `types` declare its `old`."""
    for override in types.iter(f"{{{CT_NS}}}Override"):
        if override.get("PartName") == f"/{old}":
            etree.SubElement(merged.types, f"{{{CT_NS}}}Override", PartName=f"/{new}",
                             ContentType=str(override.get("ContentType")))
            return
    extension = new.rsplit(".", 1)[-1].lower()
    known = {str(d.get("Extension", "")).lower() for d in merged.types.iter(f"{{{CT_NS}}}Default")}
    if extension not in known:
        for default in types.iter(f"{{{CT_NS}}}Default"):
            if str(default.get("Extension", "")).lower() == extension:
                merged.types.insert(0, copy.deepcopy(default))


def _renumber_lists(merged: _Merged, document: etree._Element, index: int) -> None:
    """Each item gets its own copy of every list it uses, so numbering restarts per item
    (the same numId, or two numIds of one abstract list, would continue)."""
    numbering = merged.numbering
    if numbering is None:
        return
    copies: dict[str, str] = {}

    def copy_of(num_id: str) -> str:
        if num_id not in copies:
            copies[num_id] = _copy_list(merged, numbering, num_id, index)
        return copies[num_id]

    for num in document.iter(f"{W}numId"):
        value = str(num.get(f"{W}val"))
        if value != "0":
            num.set(f"{W}val", copy_of(value))
    styles = merged.numbered
    for paragraph in document.iter(f"{W}p"):
        ppr = paragraph.find(f"{W}pPr")
        style = ppr.find(f"{W}pStyle") if ppr is not None else None
        style_id = str(style.get(f"{W}val")) if style is not None else styles.get("", ("",))[0]
        if style_id not in styles or (ppr is not None and ppr.find(f"{W}numPr") is not None):
            continue
        num_id, level, indent = styles[style_id][1:]
        if ppr is None:
            ppr = etree.Element(f"{W}pPr")
            paragraph.insert(0, ppr)
        # Direct numbering outranks the style's indent, style numbering does not: the
        # style's own indent goes along so the paragraph stays where it was.
        numpr = etree.Element(f"{W}numPr")
        etree.SubElement(numpr, f"{W}ilvl").set(f"{W}val", level)
        etree.SubElement(numpr, f"{W}numId").set(f"{W}val", copy_of(num_id))
        at = 1 if style is not None else 0
        ppr.insert(at, numpr)
        if indent is not None and ppr.find(f"{W}ind") is None:
            ppr.append(copy.deepcopy(indent))


def _copy_list(merged: _Merged, numbering: etree._Element, num_id: str, index: int) -> str:
    num = next((n for n in numbering.iter(f"{W}num") if n.get(f"{W}numId") == num_id), None)
    if num is None:
        return num_id
    abstract_ref = num.find(f"{W}abstractNumId")
    abstract_id = abstract_ref.get(f"{W}val") if abstract_ref is not None else None
    abstract = next((a for a in numbering.iter(f"{W}abstractNum")
                     if a.get(f"{W}abstractNumId") == abstract_id), None)
    new_num = copy.deepcopy(num)
    new_id = str(merged.next_id("num", 0))
    new_num.set(f"{W}numId", new_id)
    if abstract is not None and abstract_ref is not None:
        new_abstract = copy.deepcopy(abstract)
        new_abstract_id = str(merged.next_id("abstract", 0))
        new_abstract.set(f"{W}abstractNumId", new_abstract_id)
        nsid = new_abstract.find(f"{W}nsid")
        if nsid is not None:
            nsid.set(f"{W}val", f"{(index * 7919 + int(new_abstract_id)) & 0xFFFFFFFF:08X}")
        abstract.addnext(new_abstract)
        new_num.find(f"{W}abstractNumId").set(f"{W}val", new_abstract_id)
    last_num = list(numbering.iter(f"{W}num"))[-1]
    last_num.addnext(new_num)
    return new_id


def _numbered_styles(styles: etree._Element | None
                     ) -> dict[str, tuple[str, str, str, etree._Element | None]]:
    """Paragraph styles that number their paragraphs: style id -> (style id, numId, ilvl,
    the style's indent), inherited along basedOn; the key "" names the default style."""
    if styles is None:
        return {}
    by_id = {str(s.get(f"{W}styleId")): s for s in styles.iter(f"{W}style")
             if s.get(f"{W}type") == "paragraph"}

    def look(style_id: str, path: str, seen: frozenset[str] = frozenset()
             ) -> etree._Element | None:
        style = by_id.get(style_id)
        if style is None or style_id in seen:
            return None
        found = style.find(path)
        if found is not None:
            return found
        based = style.find(f"{W}basedOn")
        if based is None:
            return None
        return look(str(based.get(f"{W}val")), path, seen | {style_id})

    result: dict[str, tuple[str, str, str, etree._Element | None]] = {}
    for style_id, style in by_id.items():
        num = look(style_id, f"{W}pPr/{W}numPr/{W}numId")
        if num is None or num.get(f"{W}val") == "0":
            continue
        level = look(style_id, f"{W}pPr/{W}numPr/{W}ilvl")
        entry = (style_id, str(num.get(f"{W}val")),
                 str(level.get(f"{W}val")) if level is not None else "0",
                 look(style_id, f"{W}pPr/{W}ind"))
        result[style_id] = entry
        if style.get(f"{W}default") in ("1", "true"):
            result[""] = entry
    return result


def _renumber_footnotes(merged: _Merged, item: dict[str, bytes],
                        document: etree._Element) -> None:
    references = _footnote_references(document)
    name = _shared_target(item, _FOOTNOTES)
    if not references or name is None or merged.footnotes is None:
        return
    notes = {str(n.get(f"{W}id")): n for n in _notes(_xml(item[name]), "footnote")}
    renamed: dict[str, str] = {}
    for reference in references:
        old = str(reference.get(f"{W}id"))
        if old not in renamed and old in notes:
            note = copy.deepcopy(notes[old])
            renamed[old] = str(merged.next_id("footnote", 0))
            note.set(f"{W}id", renamed[old])
            merged.footnotes.append(note)
        if old in renamed:
            reference.set(f"{W}id", renamed[old])


def _label_footnotes(document: etree._Element) -> None:
    """Footnote marks as written labels counting from 1 in each item: LibreOffice numbers
    footnotes through the whole document (it ignores a section's numRestart)."""
    for number, reference in enumerate(_footnote_references(document), start=1):
        reference.set(f"{W}customMarkFollows", "1")
        label = etree.Element(f"{W}t")
        label.text = str(number)
        reference.addnext(label)


def _rename_bookmarks(merged: _Merged, document: etree._Element, index: int) -> None:
    """Bookmark ids and names of this item apart from its neighbours', and the links and
    fields that name them renamed with them."""
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for tag in ("bookmarkStart", "bookmarkEnd"):
        for mark in document.iter(f"{W}{tag}"):
            old = str(mark.get(f"{W}id"))
            if old not in ids:
                ids[old] = str(merged.next_id("bookmark", 0))
            mark.set(f"{W}id", ids[old])
            name = mark.get(f"{W}name")
            if name is not None:
                names[name] = f"{name}_{index}"
                mark.set(f"{W}name", names[name])
    if not names:
        return
    for link in document.iter(f"{W}hyperlink"):
        anchor = link.get(f"{W}anchor")
        if anchor in names:
            link.set(f"{W}anchor", names[anchor])
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    for text in document.iter(f"{W}instrText"):
        if text.text:
            text.text = pattern.sub(lambda m: names[m.group(1)], text.text)
    for simple in document.iter(f"{W}fldSimple"):
        instr = simple.get(f"{W}instr")
        if instr:
            simple.set(f"{W}instr", pattern.sub(lambda m: names[m.group(1)], instr))


def _renumber_drawings(merged: _Merged, document: etree._Element) -> None:
    for drawing in document.iter(f"{{{WP_NS}}}docPr"):
        drawing.set("id", str(merged.next_id("docpr", 0)))


def properties(parts: dict[str, bytes]) -> dict[str, str]:
    """The item's rendered core properties as PDF document information entries."""
    data = parts.get(CORE)
    if data is None:
        return {}
    root = _xml(data)
    names = {f"{{{DC_NS}}}title": "/Title", f"{{{DC_NS}}}creator": "/Author",
             f"{{{DC_NS}}}subject": "/Subject", f"{{{CP_NS}}}keywords": "/Keywords"}
    return {names[child.tag]: child.text for child in root
            if child.tag in names and child.text}
