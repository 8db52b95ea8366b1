"""A chunk of a batch: its items rendered with one loaded template, then merged.

Runs where rendering runs (a render worker): the template's package is read
and parsed once per chunk, not once per item, and put back to its pristine
state between items; an item's output is its own parts (body, headers,
footers, footnotes, images), never a zip written and read again. The merged
documents come out sized by an estimate of their pages (`max_pages`) and by
their items' bytes, so one conversion never holds an unbounded document.

Items whose data changed the template's shared parts (a sub-document's
styles, a rich value's lists) merge only with items that changed them alike.
Items that cannot be merged (`merging.blockers`) come back as rendered .docx
to convert alone; an item whose rendering fails comes back as its problem,
and costs its neighbours nothing.
"""

from __future__ import annotations

import copy
import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import Any

from docx.opc.part import Part
from docx.opc.pkgwriter import PackageWriter

from . import merging
from .errors import Problem
from .rendering import Renderer, RenderOptions, _Template

_FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
_STORY_KINDS = ("header", "footer", "footnotes", "image")
# A rough page of text or lines: merged documents are sized by an estimate, the
# real count being known only after the conversion.
_CHARS_PER_PAGE = 3000
_LINES_PER_PAGE = 45  # every paragraph (table cells' too) takes at least a line
_TAG = re.compile(rb"<[^>]+>")
# Bytes of an item's own parts (pictures mostly) in one merged document: what
# LibreOffice holds in memory grows with them as well as with pages.
MAX_MERGED_BYTES = 32 << 20


@dataclass(frozen=True)
class ItemProblem:
    """A failed item's problem by slug (rebuilt in the parent, like a worker's reply)."""

    slug: str
    detail: str
    extensions: dict[str, Any]


@dataclass(frozen=True)
class Merged:
    """One document to convert: the chunk items `items` (indices), in order."""

    docx: bytes
    items: list[int]
    info: list[dict[str, str]]  # each item's PDF document information


@dataclass
class ChunkResult:
    merged: list[Merged] = field(default_factory=list)
    alone: dict[int, bytes] = field(default_factory=dict)  # rendered .docx to convert alone
    reasons: dict[int, list[str]] = field(default_factory=dict)  # why they are alone
    problems: dict[int, ItemProblem] = field(default_factory=dict)


class _Package:
    """What `_Reused` puts back before each item: rels, bodies and blobs it changes."""

    def __init__(self, tpl: _Template) -> None:
        doc = tpl.docx
        self.element = doc._element
        self.body = copy.deepcopy(doc._element.body)
        self.parts = list(doc.part.package.iter_parts())
        self.rels = [(p.rels, dict(p.rels), {r: rel._target for r, rel in p.rels.items()},
                      dict(p.rels._target_parts_by_rId)) for p in self.parts]
        self.blobs = [(p, p._blob) for p in self.parts if p.content_type == _FOOTNOTES_TYPE]
        core = doc.part.package._core_properties_part
        self.core = (core, copy.deepcopy(core._element))
        self.shared = self._shared_sizes(doc)

    @staticmethod
    def _shared_sizes(doc: Any) -> tuple[int, ...]:
        """Sizes of the parts a sub-document would add to (styles, lists, how many parts
        besides pictures, which an item may add)."""
        parts = doc.part.package.iter_parts()
        sizes = [sum(1 for p in parts if not str(p.partname).startswith("/word/media/"))]
        for rel in doc.part.rels.values():
            if rel.reltype.rsplit("/", 1)[-1] in ("styles", "numbering"):
                sizes.append(len(rel.target_part.element))
        return tuple(sizes)

    def restore(self, doc: Any) -> None:
        self.element.replace(self.element.body, copy.deepcopy(self.body))
        for rels, pristine, targets, by_id in self.rels:
            for rid in [r for r in rels if r not in pristine]:
                del rels[rid]
            for rid, target in targets.items():
                rels[rid]._target = target
            rels._target_parts_by_rId.clear()
            rels._target_parts_by_rId.update(by_id)
        for part, blob in self.blobs:
            part._blob = blob
        core, element = self.core
        core._element = copy.deepcopy(element)

    def changed(self, doc: Any) -> bool:
        return self._shared_sizes(doc) != self.shared


class _Reused(_Template):
    """A template loaded once and put back to its pristine state before each render."""

    is_rendered: bool

    def __init__(self, docx: bytes) -> None:
        super().__init__(io.BytesIO(docx))
        self._patched: dict[str, str] = {}
        super().init_docx()
        self.pristine = _Package(self)

    def patch_xml(self, src_xml: str) -> str:
        # The same template parts every time: docxtpl's clean-up (a dozen regular
        # expressions over each part, 20% of a render) is done once per chunk.
        patched = self._patched.get(src_xml)
        if patched is None:
            patched = self._patched[src_xml] = super().patch_xml(src_xml)
        return patched

    def init_docx(self, reload: bool = True) -> None:
        if self.is_rendered and reload:
            self.pristine.restore(self.docx)
            self.is_rendered = False


class _PartsWriter:
    """python-docx's package writer, writing into a dict instead of a zip."""

    def __init__(self) -> None:
        self.parts: dict[str, bytes] = {}

    def write(self, pack_uri: Any, blob: bytes) -> None:
        self.parts[pack_uri.membername] = blob


def _parts(tpl: _Template, full: bool) -> dict[str, bytes]:
    """The rendered package as parts: all of them (`full`), or the item's own only."""
    doc = tpl.docx
    package = doc.part.package
    writer = _PartsWriter()
    if full:
        parts = list(package.iter_parts())
        PackageWriter._write_pkg_rels(writer, package.rels)  # type: ignore[no-untyped-call]
    else:
        parts = [doc.part, package._core_properties_part, *_story_parts(doc.part)]
    PackageWriter._write_content_types_stream(writer, parts)  # type: ignore[no-untyped-call]
    PackageWriter._write_parts(writer, parts)  # type: ignore[arg-type]
    return writer.parts


def _story_parts(part: Part, seen: set[str] | None = None) -> list[Part]:
    """The parts an item brings along: headers, footers, footnotes, images (and theirs)."""
    seen = set() if seen is None else seen
    found: list[Part] = []
    for rel in part.rels.values():
        if rel.is_external or rel.reltype.rsplit("/", 1)[-1] not in _STORY_KINDS:
            continue
        target = rel.target_part
        if target.partname not in seen:
            seen.add(target.partname)
            found += [target, *_story_parts(target, seen)]
    return found


def _docx(tpl: _Template) -> bytes:
    out = io.BytesIO()
    tpl.save(out)
    return out.getvalue()


def estimated_pages(body: bytes) -> float:
    """Pages of a rendered body, roughly: its text or its paragraphs, whichever fills
    more, plus its explicit page breaks; at least one."""
    text = len(_TAG.sub(b"", body))
    paragraphs = body.count(b"<w:p>") + body.count(b"<w:p ")
    cells = body.count(b"<w:tc>") + body.count(b"<w:tc ")
    rows = body.count(b"<w:tr>") + body.count(b"<w:tr ")
    # A table row is a line or two, however many cells (paragraphs) it holds.
    lines = max(paragraphs - cells, 0) + 2 * rows
    return max(1.0, text / _CHARS_PER_PAGE, lines / _LINES_PER_PAGE) + \
        body.count(b'w:type="page"')


@dataclass
class _Group:
    """Items being merged into one document: the first whole (`base`), the others their
    own parts; the estimated pages and the bytes so far."""

    base: dict[str, bytes]
    items: list[tuple[int, dict[str, bytes]]] = field(default_factory=list)
    pages: float = 0.0
    size: int = 0


def render_chunk(renderer: Renderer, template: bytes, items: list[dict[str, Any]],
                 options: RenderOptions, max_pages: float) -> ChunkResult:
    """Render `items` with one loaded `template` and merge them into documents of about
    `max_pages` estimated pages.

    Items whose data added styles or lists (a sub-template, a rich value's list) merge
    only with items that added exactly the same (the same sub-template in every item):
    the merged document has one set of them. Each such set has its own groups."""
    result = ChunkResult()
    tpl = _Reused(template)
    groups: dict[tuple[tuple[str, bytes], ...], _Group] = {}
    for index, data in enumerate(items):
        try:
            renderer.render_into(tpl, template, data, options)
        except Problem as problem:
            result.problems[index] = ItemProblem(problem.slug, problem.detail,
                                                 problem.extensions)
            tpl = _Reused(template)  # a failed render may have left it half-done
            continue
        key: tuple[tuple[str, bytes], ...] = ()  # the template's own shared parts
        if tpl.pristine.changed(tpl.docx):
            full, own = _parts(tpl, full=True), _parts(tpl, full=False)
            key = _shared_key(full, own)
            parts = own if key in groups else full
            # Loaded again: `restore` does not undo the styles or lists the data added.
            docx, tpl = _docx(tpl), _Reused(template)
        else:
            parts, docx = _parts(tpl, full=key not in groups), b""
        if reasons := merging.blockers(parts):
            result.alone[index] = docx or _docx(tpl)
            result.reasons[index] = reasons
            continue
        group = groups.setdefault(key, _Group(parts))
        item_pages = estimated_pages(parts[merging.DOCUMENT])
        item_bytes = sum(len(data) for data in parts.values()) if group.items else 0
        if group.items and (group.pages + item_pages > max_pages
                            or group.size + item_bytes > MAX_MERGED_BYTES):
            result.merged.append(_merge(group.base, group.items))
            group.items, group.pages, group.size = [], 0.0, 0
        group.items.append((index, parts))
        group.pages += item_pages
        group.size += item_bytes
    for group in groups.values():
        if group.items:
            result.merged.append(_merge(group.base, group.items))
    return result


def _shared_key(full: dict[str, bytes], own: dict[str, bytes]) -> tuple[tuple[str, bytes], ...]:
    """The parts of a rendered package that every item of a merged document shares with
    its first (styles, lists, settings...), as a key: not the item's own parts, not
    pictures, not the content types (each item's own are read for the parts it brings)."""
    return tuple(sorted((name, hashlib.sha256(data).digest()) for name, data in full.items()
                        if name not in own and not name.startswith("word/media/")
                        and name != merging.CONTENT_TYPES))


def _merge(base: dict[str, bytes], group: list[tuple[int, dict[str, bytes]]]) -> Merged:
    first = group[0][1]
    items = [first if first is base else merging.with_shared(base, first)]
    items += [parts for _, parts in group[1:]]
    return Merged(merging.merge(items), [i for i, _ in group],
                  [merging.properties(parts) for _, parts in group])
