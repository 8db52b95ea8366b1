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
bombs are refused from the zip directory alone before anything is inflated
(`gendoc.package_limits`, the same check the service makes, with the
converter's own limits). Every decision is made on parsed XML
(`gendoc.safexml`: no entities, no DTD, no network), never on bytes, so a
character reference (`TargetMode="&#69;xternal"`), a part in UTF-16 or an
entity cannot spell a link past it; a part that declares a DOCTYPE is refused.
The profile's configuration (profile.py) is the second line of defence.

While every part that holds text is parsed anyway, the runs of hyperlinks get
the character style LibreOffice 7.4 needs to export them as PDF links (links.py).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field

from lxml import etree

from gendoc import safexml
from gendoc.package_limits import PackageLimits, PackageRefused, open_package

from . import links
from .errors import MacroDocument, UnreadableDocument

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CONTENT_TYPES = "[Content_Types].xml"
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
MACRO_CONTENT_TYPES = re.compile(r"(?i)macroEnabled|vbaProject|ms-office\.activeX")


@dataclass
class Report:
    """What sanitising changed (for logs and tests)."""

    relationships: list[str] = field(default_factory=list)  # "part: Type -> Target"
    fields: list[str] = field(default_factory=list)  # "part: INSTRUCTION"
    link_runs: int = 0  # hyperlink runs given links.LINK_STYLE (not a neutralisation)

    @property
    def changed(self) -> bool:
        return bool(self.relationships or self.fields)


def sanitize_docx(data: bytes, limits: PackageLimits) -> tuple[bytes, Report]:
    """The package with every external reference neutralised, and what was changed.

    Returns `data` itself when nothing needed changing. Raises UnreadableDocument
    for something that is not a sane zip package of well-formed, DTD-free XML
    parts, MacroDocument for VBA.
    """
    try:
        archive = open_package(data, limits)
    except PackageRefused as exc:
        raise UnreadableDocument(str(exc)) from None
    with archive:
        try:
            replaced, report = _sanitize(archive)
        except safexml.UnsafeXml as exc:
            raise UnreadableDocument(str(exc)) from None
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            raise UnreadableDocument(f"A part of the package cannot be read: {exc}") from None
        if not replaced:
            return data, report
        return _rezip(archive, replaced), report


def _sanitize(archive: zipfile.ZipFile) -> tuple[dict[str, bytes], Report]:
    infos = archive.infolist()
    names = {i.filename for i in infos}
    if CONTENT_TYPES not in names:
        raise UnreadableDocument(f"Not a valid .docx package: {CONTENT_TYPES} is missing")
    types = content_types(safexml.parse(_read(archive, CONTENT_TYPES), CONTENT_TYPES))
    if any(MACRO_PARTS.search(n) for n in names) or any(
            MACRO_CONTENT_TYPES.search(t) for t in types.values()):
        raise MacroDocument("Documents with macros (VBA projects) are not converted")

    report = Report()
    replaced: dict[str, bytes] = {}
    relationships = {i.filename: safexml.parse(_read(archive, i.filename), i.filename)
                     for i in infos if i.filename.endswith(".rels")}
    for name, root in relationships.items():
        if retarget_external_relationships(root, name, report):
            replaced[name] = _serialize(root)
    skip = fieldless_parts(relationships)
    for info in infos:
        name = info.filename
        if name in relationships or name == CONTENT_TYPES or not is_xml(name, types):
            continue
        if name in skip:
            # Read by LibreOffice all the same: only its prolog is parsed (no DOCTYPE).
            with archive.open(info) as stream:
                safexml.check_prolog(stream, name)
            continue
        root = safexml.parse(_read(archive, name), name)
        styled = links.style_link_runs(root)
        report.link_runs += styled
        if remove_include_fields(root, name, report) or styled:
            replaced[name] = _serialize(root)
    # Looked up only when some link was styled: a document without links costs what it did.
    if report.link_runs and (styles := styles_part(relationships)) in names:
        root = safexml.parse(replaced.get(styles) or _read(archive, styles), styles)
        if links.add_link_style(root):
            replaced[styles] = _serialize(root)
    return replaced, report


def content_types(root: etree._Element) -> dict[str, str]:
    """Content type by part name ("/word/document.xml") and by extension ("xml") (pure)."""
    types: dict[str, str] = {}
    for element in root:
        content_type = str(element.get("ContentType", ""))
        if element.get("PartName") is not None:
            types[str(element.get("PartName")).lower()] = content_type
        elif element.get("Extension") is not None:
            types[str(element.get("Extension")).lower()] = content_type
    return types


def is_xml(name: str, types: dict[str, str]) -> bool:
    """Whether LibreOffice reads the part as XML: by its content type, as OPC says, or by
    its name; so a document part registered under another extension is still checked."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    content_type = types.get(f"/{name}".lower(), types.get(extension, "")).split(";")[0].strip()
    return name.lower().endswith(".xml") or content_type.endswith(("+xml", "/xml"))


def fieldless_parts(relationships: dict[str, etree._Element]) -> set[str]:
    """Parts that cannot hold fields: every relationship to them is of a kind LibreOffice
    never reads text runs from (styles, theme, settings, fonts, numbering, properties).

    Decided by how parts are referenced, never by their names (an attacker may call the
    main document "word/styles.xml"); a part nothing refers to is not skipped either.
    Skipping them avoids inflating a typical package's 800 KB of styles per request.
    """
    return {path for path, types in _internal_targets(relationships).items()
            if types <= FIELDLESS_TYPES}


def styles_part(relationships: dict[str, etree._Element]) -> str | None:
    """The package's styles part: the one target of its "styles" relationships, else None."""
    found = {path for path, types in _internal_targets(relationships).items()
             if "styles" in types}
    return found.pop() if len(found) == 1 else None


def _internal_targets(relationships: dict[str, etree._Element]) -> dict[str, set[str]]:
    """Every internal part some relationship points at -> the kinds (last segment of the
    Type URI) of the relationships pointing at it."""
    kinds: dict[str, set[str]] = {}
    for rels_name, root in relationships.items():
        source_dir = posixpath.dirname(posixpath.dirname(rels_name))
        for rel in root.iter(f"{RELS}Relationship"):
            if (rel.get("TargetMode") or "").lower() == "external":
                continue
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join(source_dir, target))
            kinds.setdefault(path, set()).add(rel.get("Type", "").rsplit("/", 1)[-1])
    return kinds


def strip_external_relationships(xml: bytes, part: str = "", report: Report | None = None
                                 ) -> bytes | None:
    """A .rels part with external non-hyperlink targets retargeted; None if unchanged."""
    root = _parse(xml, part)
    return _serialize(root) if retarget_external_relationships(root, part, report) else None


def retarget_external_relationships(root: etree._Element, part: str,
                                    report: Report | None = None) -> bool:
    """Retarget, in the parsed .rels `root`, every external non-hyperlink relationship and
    every always-blocked one; whether anything changed."""
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
    return changed


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
    return _serialize(root) if remove_include_fields(root, part, report) else None


def remove_include_fields(root: etree._Element, part: str, report: Report | None = None
                          ) -> bool:
    """Remove, from the parsed part `root`, every field that includes another file, keeping
    its cached result; whether anything changed."""
    doomed: list[etree._Element] = []
    for simple in list(root.iter(f"{W}fldSimple")):
        instruction = simple.get(f"{W}instr", "")
        if field_type(instruction) in DANGEROUS_FIELDS:
            _note(report, part, instruction)
            _unwrap(simple)
            doomed.append(simple)
    doomed += _dangerous_complex_fields(root, part, report)
    for element in doomed:
        parent = element.getparent()
        if parent is not None and element.tag != f"{W}fldSimple":
            parent.remove(element)
    return bool(doomed)


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


def _read(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError) as exc:
        raise UnreadableDocument(f"Cannot read {name} in the package: {exc}") from None


def _parse(xml: bytes, part: str) -> etree._Element:
    try:
        return safexml.parse(xml, part or "a part")
    except safexml.UnsafeXml as exc:
        raise UnreadableDocument(str(exc)) from None


def _serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))


def _rezip(archive: zipfile.ZipFile, replaced: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    # Stored, not deflated: the package only travels to LibreOffice's scratch file on the
    # same disk, and deflating a typical package's 800 KB of styles again cost more than
    # all of sanitising it (≈ 10 of 26 ms CPU for a one-link python-docx document).
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as new:
        for info in archive.infolist():
            content = replaced.get(info.filename)
            if content is None:
                content = _read(archive, info.filename)
            new.writestr(info.filename, content, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()
