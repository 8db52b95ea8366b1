"""Make a .docx safe to hand to LibreOffice: nothing in it may fetch anything (pure).

A WordprocessingML package can point outside itself in two ways:

- relationships with TargetMode="External": linked images, linked OLE objects,
  attached templates, sub-documents, frames. Each is retargeted to a part that
  does not exist inside the package, so LibreOffice finds nothing to load and
  shows an empty placeholder. Hyperlinks are kept: in a PDF they are only
  links, nothing is fetched while converting.
- field codes that include other files: INCLUDEPICTURE, INCLUDETEXT (and its
  old name INCLUDE, IMPORT), LINK and DDE/DDEAUTO. The field code is removed
  and its cached result kept as plain content.

Packages with VBA projects (.docm and friends) are refused outright, and zip
bombs are refused from the zip directory alone before anything is inflated.
The profile's configuration (profile.py) is the second line of defence.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from .errors import MacroDocument, UnreadableDocument

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
# Where an external relationship now points: a part no package has.
BLOCKED_TARGET = "gendoc-blocked-external-link"
DANGEROUS_FIELDS = frozenset(
    {"INCLUDEPICTURE", "INCLUDETEXT", "INCLUDE", "IMPORT", "LINK", "DDE", "DDEAUTO"})
# Internal relationships whose content LibreOffice imports from other formats
# (HTML, RTF, MHT) that could carry their own links: dropped too.
ALWAYS_BLOCKED_TYPES = ("/aFChunk",)
# Relationship kinds (last segment of the Type URI) whose targets hold no text runs.
FIELDLESS_TYPES = frozenset({
    "styles", "stylesWithEffects", "fontTable", "numbering", "settings", "webSettings",
    "theme", "customXml", "customXmlProps", "core-properties", "extended-properties",
    "custom-properties", "thumbnail", "image"})
MACRO_PARTS = re.compile(r"(?i)(^|/)(vbaProject\.bin|vbaData\.xml|vbaProjectSignature\.bin)$")
MACRO_CONTENT_TYPES = re.compile(rb"(?i)macroEnabled|vbaProject|ms-office\.activeX")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False, remove_blank_text=False)


@dataclass(frozen=True)
class Limits:
    max_entries: int = 2000
    max_unzipped_bytes: int = 200 * 1024 * 1024
    max_ratio: float = 200.0


@dataclass
class Report:
    """What sanitising changed (for logs and tests)."""

    relationships: list[str] = field(default_factory=list)  # "part: Type -> Target"
    fields: list[str] = field(default_factory=list)  # "part: INSTRUCTION"

    @property
    def changed(self) -> bool:
        return bool(self.relationships or self.fields)


def sanitize_docx(data: bytes, limits: Limits = Limits()) -> tuple[bytes, Report]:
    """The package with every external reference neutralised, and what was changed.

    Returns `data` itself when nothing needed changing. Raises UnreadableDocument
    for something that is not a sane zip package, MacroDocument for VBA.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise UnreadableDocument(f"Not a valid .docx package (zip): {exc}") from None
    _check_limits(infos, limits)
    names = {i.filename for i in infos}
    if "[Content_Types].xml" not in names:
        raise UnreadableDocument("Not a valid .docx package: [Content_Types].xml is missing")
    if any(MACRO_PARTS.search(n) for n in names) or MACRO_CONTENT_TYPES.search(
            _read(archive, "[Content_Types].xml")):
        raise MacroDocument("Documents with macros (VBA projects) are not converted")

    report = Report()
    replaced: dict[str, bytes] = {}
    relationships = {i.filename: _read(archive, i.filename) for i in infos
                     if i.filename.endswith(".rels")}
    for name, raw in relationships.items():
        if b"External" in raw or any(t.encode() in raw for t in ALWAYS_BLOCKED_TYPES):
            new = strip_external_relationships(raw, name, report)
            if new is not None:
                replaced[name] = new
    skip = fieldless_parts(relationships)
    for info in infos:
        name = info.filename
        if name.endswith(".xml") and name not in skip:
            raw = _read(archive, name)
            if b"instrText" in raw or b"fldSimple" in raw:
                new = strip_include_fields(raw, name, report)
                if new is not None:
                    replaced[name] = new
    if not replaced:
        return data, report
    return _rezip(archive, infos, replaced), report


def fieldless_parts(relationships: dict[str, bytes]) -> set[str]:
    """Parts that cannot hold fields: every relationship to them is of a kind LibreOffice
    never reads text runs from (styles, theme, settings, fonts, numbering, properties).

    Decided by how parts are referenced, never by their names (an attacker may call the
    main document "word/styles.xml"); a part nothing refers to is not skipped either.
    Skipping them avoids inflating a typical package's 800 KB of styles per request.
    """
    kinds: dict[str, set[str]] = {}
    for rels_name, xml in relationships.items():
        source_dir = posixpath.dirname(posixpath.dirname(rels_name))
        try:
            root = etree.fromstring(xml, _PARSER)
        except etree.XMLSyntaxError:
            continue  # reported where the part is stripped; decides nothing here
        for rel in root.iter(f"{RELS}Relationship"):
            if (rel.get("TargetMode") or "").lower() == "external":
                continue
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join(source_dir, target))
            kinds.setdefault(path, set()).add(rel.get("Type", "").rsplit("/", 1)[-1])
    return {path for path, types in kinds.items() if types <= FIELDLESS_TYPES}


def strip_external_relationships(xml: bytes, part: str = "", report: Report | None = None
                                 ) -> bytes | None:
    """A .rels part with external non-hyperlink targets retargeted; None if unchanged."""
    root = _parse(xml, part)
    changed = False
    for rel in root.iter(f"{RELS}Relationship"):
        kind = rel.get("Type", "")
        external = (rel.get("TargetMode") or "").lower() == "external"
        if kind.endswith("/hyperlink") and external:
            continue
        if external or kind.endswith(ALWAYS_BLOCKED_TYPES):
            if report is not None:
                report.relationships.append(f"{part}: {kind.rsplit('/', 1)[-1]} -> "
                                            f"{rel.get('Target', '')}")
            rel.set("Target", BLOCKED_TARGET)
            if "TargetMode" in rel.attrib:
                del rel.attrib["TargetMode"]
            changed = True
    return _serialize(root) if changed else None


@dataclass
class _Field:
    begin: etree._Element
    in_instruction: bool = True
    text: list[str] = field(default_factory=list)
    elements: list[etree._Element] = field(default_factory=list)


def field_type(instruction: str) -> str:
    """The field's type: the first word of its instruction, upper-cased (pure)."""
    words = instruction.strip().split(None, 1)
    return words[0].upper().lstrip("\\") if words else ""


def strip_include_fields(xml: bytes, part: str = "", report: Report | None = None) -> bytes | None:
    """A WordprocessingML part without fields that include other files; None if unchanged."""
    root = _parse(xml, part)
    doomed: list[etree._Element] = []
    for simple in list(root.iter(f"{W}fldSimple")):
        instruction = simple.get(f"{W}instr", "")
        if field_type(instruction) in DANGEROUS_FIELDS:
            _note(report, part, instruction)
            _unwrap(simple)
            doomed.append(simple)
    doomed += _dangerous_complex_fields(root, part, report)
    if not doomed:
        return None
    for element in doomed:
        parent = element.getparent()
        if parent is not None and element.tag != f"{W}fldSimple":
            parent.remove(element)
    return _serialize(root)


def _dangerous_complex_fields(root: etree._Element, part: str,
                              report: Report | None) -> list[etree._Element]:
    """Elements of begin/instrText/separate/end fields to remove; their results stay."""
    stack: list[_Field] = []
    doomed: list[etree._Element] = []
    tags = (f"{W}fldChar", f"{W}instrText", f"{W}delInstrText", f"{W}t")
    for element in root.iter(*tags):
        # Everything between a field's begin and separate is its instruction,
        # nested fields included: removed with it if it is dangerous.
        for open_field in stack:
            if open_field.in_instruction:
                open_field.elements.append(element)
        if element.tag == f"{W}fldChar":
            kind = element.get(f"{W}fldCharType")
            if kind == "begin":
                stack.append(_Field(begin=element))
            elif kind == "separate" and stack:
                stack[-1].in_instruction = False
                stack[-1].elements.append(element)
            elif kind == "end" and stack:
                done = stack.pop()
                done.elements.append(element)
                instruction = "".join(done.text)
                if field_type(instruction) in DANGEROUS_FIELDS:
                    _note(report, part, instruction)
                    doomed += [done.begin, *done.elements]
        elif element.tag in (f"{W}instrText", f"{W}delInstrText"):
            if stack and stack[-1].in_instruction:
                stack[-1].text.append(element.text or "")
        else:  # w:t inside an instruction: a nested field's result, part of the code
            for open_field in reversed(stack):
                if open_field.in_instruction:
                    open_field.text.append(element.text or "")
                    break
    return list(dict.fromkeys(doomed))


def _unwrap(element: etree._Element) -> None:
    """Replace `element` by its children (a simple field by its cached result)."""
    parent = element.getparent()
    if parent is None:
        return
    position = parent.index(element)
    for offset, child in enumerate(list(element)):
        parent.insert(position + offset, child)
    parent.remove(element)


def _note(report: Report | None, part: str, instruction: str) -> None:
    if report is not None:
        report.fields.append(f"{part}: {instruction.strip()[:200]}")


def _check_limits(infos: Iterable[zipfile.ZipInfo], limits: Limits) -> None:
    infos = list(infos)
    if len(infos) > limits.max_entries:
        raise UnreadableDocument(f"The package has more than {limits.max_entries} entries")
    total = 0
    for info in infos:
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            raise UnreadableDocument(f"Entry {info.filename} is compressed suspiciously well")
    if total > limits.max_unzipped_bytes:
        raise UnreadableDocument("The package is too large once uncompressed")


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError) as exc:
        raise UnreadableDocument(f"Cannot read {name} in the package: {exc}") from None


def _parse(xml: bytes, part: str) -> etree._Element:
    try:
        return etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnreadableDocument(f"{part or 'A part'} is not well-formed XML: {exc}") from None


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _rezip(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo],
           replaced: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for info in infos:
            content = replaced.get(info.filename)
            if content is None:
                content = _read(archive, info.filename)
            new.writestr(info.filename, content, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()
