"""A chunk of a batch: its items rendered with one loaded template, then merged.

Runs where rendering runs (a render worker): the template's package is read
and parsed once per chunk, not once per item, and put back to its pristine
state between items; an item's output is its own parts (body, headers,
footers, footnotes, images), never a zip written and read again. The merged
documents come out sized by an estimate of their pages (`max_pages`), so one
conversion never holds an unbounded document.

Items that cannot be merged (`merging.blockers`, or whose data changed the
template's shared parts, as a sub-document's styles do) come back as
rendered .docx to convert alone; an item whose rendering fails comes back as
its problem, and costs its neighbours nothing.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass, field
from typing import Any

from docx.opc.part import Part
from docx.opc.pkgwriter import PackageWriter

from . import merging
from .errors import Problem
from .rendering import Renderer, RenderOptions, _Template

_FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
_STORY_KINDS = ("header", "footer", "footnotes", "image")
# A rough page of text: what the merged documents are sized by until a split
# tells how many pages an item really has (`pages_per_item`).
_CHARS_PER_PAGE = 3000


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


def _estimated_pages(parts: dict[str, bytes]) -> float:
    body = parts[merging.DOCUMENT]
    return max(1.0, body.count(b"<w:t") * 8 / _CHARS_PER_PAGE + body.count(b'w:type="page"'))


def render_chunk(renderer: Renderer, template: bytes, items: list[dict[str, Any]],
                 options: RenderOptions, max_pages: float,
                 pages_per_item: float = 0.0) -> ChunkResult:
    """Render `items` with one loaded `template` and merge them into documents of about
    `max_pages` pages (`pages_per_item`: what earlier splits measured, 0 if unknown)."""
    result = ChunkResult()
    tpl = _Reused(template)
    base: dict[str, bytes] | None = None
    group: list[tuple[int, dict[str, bytes]]] = []
    pages = 0.0
    for index, data in enumerate(items):
        try:
            renderer.render_into(tpl, template, data, options)
        except Problem as problem:
            result.problems[index] = ItemProblem(problem.slug, problem.detail,
                                                 problem.extensions)
            tpl = _Reused(template)  # a failed render may have left it half-done
            continue
        if tpl.pristine.changed(tpl.docx):
            result.alone[index] = _docx(tpl)
            result.reasons[index] = ["its data changed the template's styles or lists"]
            tpl = _Reused(template)
            continue
        parts = _parts(tpl, full=base is None)
        if reasons := merging.blockers(parts):
            result.alone[index] = _docx(tpl)
            result.reasons[index] = reasons
            continue
        if base is None:
            base = parts
        item_pages = pages_per_item or _estimated_pages(parts)
        if group and pages + item_pages > max_pages:
            result.merged.append(_merge(base, group))
            group, pages = [], 0.0
        group.append((index, parts))
        pages += item_pages
    if group and base is not None:
        result.merged.append(_merge(base, group))
    return result


def _merge(base: dict[str, bytes], group: list[tuple[int, dict[str, bytes]]]) -> Merged:
    first = group[0][1]
    items = [first if first is base else merging.with_shared(base, first)]
    items += [parts for _, parts in group[1:]]
    return Merged(merging.merge(items), [i for i, _ in group],
                  [merging.properties(parts) for _, parts in group])
