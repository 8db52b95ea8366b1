"""docxtpl rendering, always inside a Jinja sandbox with autoescape on.

Pure CPU work with no I/O: the HTTP layer decides where it runs (a thread or a
worker process). Template problems become `Problem`s here, once: syntax errors
name the part and paragraph, undefined variables are listed in strict mode.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import docx.opc.phys_pkg
import jinja2
from docxtpl import DocxTemplate
from docxtpl.subdoc import Subdoc, SubdocComposer
from jinja2 import ChainableUndefined, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from lxml import etree

from . import formatting, richdata
from . import variables as variables_mod
from .cache import ByteLRU
from .errors import (
    InvalidDocx,
    Problem,
    TemplateIncludeProblem,
    TemplateRenderProblem,
    TemplateSecurityProblem,
    TemplateSyntaxProblem,
    UndefinedVariables,
)

_FOOTNOTES_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
_PROPERTIES_PART = "/docProps/core.xml"
# Core properties docxtpl renders (DocxTemplate.render_properties).
_PROPERTY_NAMES = ("author", "comments", "identifier", "language", "subject", "title")

# python-docx writes packages at zlib's default level 6, which was a quarter of a
# render's time (one-page invoice: 3.9 of 16 ms). Level 1 is about three times
# faster and XML still shrinks ~5x; the document mostly goes to the converter on
# localhost anyway.
_COMPRESS_LEVEL = 1


def _fast_zip_writer(self: Any, pkg_file: Any) -> None:
    docx.opc.phys_pkg.PhysPkgWriter.__init__(self)
    self._zipf = zipfile.ZipFile(pkg_file, "w", compression=zipfile.ZIP_DEFLATED,
                                 compresslevel=_COMPRESS_LEVEL)


docx.opc.phys_pkg._ZipPkgWriter.__init__ = _fast_zip_writer  # type: ignore[method-assign]

# Names missing during the current strict render (one list per render call).
_missing: ContextVar[list[str] | None] = ContextVar("gendoc_missing", default=None)


class _TrackedDict(dict[str, Any]):
    """A data mapping that knows its own path, so a missing key is reported in full."""

    __slots__ = ("_gendoc_path",)
    _gendoc_path: str


def _track(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        tracked = _TrackedDict(
            (k, _track(v, f"{path}.{k}" if path else str(k))) for k, v in value.items()
        )
        tracked._gendoc_path = path
        return tracked
    if isinstance(value, list):
        return [_track(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


class _RecordingUndefined(ChainableUndefined):
    """Strict mode: renders as empty, but every use of a missing value is recorded."""

    __slots__ = ()

    def _path(self) -> str:
        parent = self._undefined_obj
        name = self._undefined_name or "?"
        if isinstance(parent, _RecordingUndefined):
            return f"{parent._path()}.{name}"
        parent_path = getattr(parent, "_gendoc_path", None)
        if parent_path:
            return f"{parent_path}.{name}"
        if parent is not jinja2.utils.missing and parent is not None and not parent_path:
            return f"{name} (attribute of {jinja2.utils.object_type_repr(parent)})"
        return name

    def _record(self) -> None:
        names = _missing.get()
        if names is not None:
            names.append(self._path())

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return _RecordingUndefined(obj=self, name=name)

    def __getitem__(self, name: Any) -> Any:
        return _RecordingUndefined(obj=self, name=str(name))

    def __str__(self) -> str:
        self._record()
        return ""

    def __html__(self) -> str:
        return str(self)

    def __iter__(self) -> Any:
        self._record()
        return iter(())

    def __bool__(self) -> bool:
        self._record()
        return False

    def __len__(self) -> int:
        self._record()
        return 0


class _Environment(SandboxedEnvironment):
    """A sandbox whose compiled templates are shared through a byte-bounded cache.

    docxtpl compiles each part's XML with `from_string`; the same template bytes
    always give the same XML, so the compiled code is reused across requests.
    """

    def __init__(self, compiled: ByteLRU[jinja2.Template], **options: Any) -> None:
        super().__init__(autoescape=True, **options)
        self._compiled = compiled
        self.filters.update(formatting.FILTERS)
        self.globals[variables_mod.INCLUDE] = _include

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja's sandbox answers an unsafe attribute with an Undefined that
        # renders as "" - safe, but it hides the attempt. Refuse it loudly so
        # that the caller gets a 422 naming the attribute.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed"
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Dunder names are how template injection starts (__class__, __globals__,
        # __init__...). Refuse them on anything, undefined values included, so an
        # attempt is a 422 rather than an empty string. Data keys starting with
        # "__" are therefore not reachable by attribute syntax.
        if attribute.startswith("__"):
            raise SecurityError(f"access to attribute {attribute!r} is not allowed")
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("__"):
            raise SecurityError(f"access to item {argument!r} is not allowed")
        return super().getitem(obj, argument)

    def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> Any:
        if globals is not None or template_class is not None or not isinstance(source, str):
            return super().from_string(source, globals, template_class)
        key = (self.undefined, source)
        template = self._compiled.get(key)
        if template is None:
            template = super().from_string(source)
            # Compiled code is a few times the size of its source; the source
            # length is the stable, cheap proxy for the byte budget.
            self._compiled.put(key, template, size=4 * len(source))
        return template


_JINJA_TAG_BODY = re.compile(r"(?<=\{[\{%])(.*?)(?=[\}%]\})")


def _unescape_code(match: re.Match[str]) -> str:
    # Inside {{ }} and {% %} the XML text is Jinja code: its string literals
    # must hold characters, not XML entities. docxtpl already turns &lt; and &gt;
    # back; with autoescape on, &amp; must go too or it would be escaped twice.
    return match.group(0).replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


class _Template(DocxTemplate):  # type: ignore[misc]  # docxtpl has no type information
    """docxtpl's template, telling which part it is rendering when an error occurs."""

    def patch_xml(self, src_xml: str) -> str:
        return _JINJA_TAG_BODY.sub(_unescape_code, super().patch_xml(src_xml))

    def render_properties(self, context: Any, jinja_env: Any = None) -> None:
        self.current_rendering_part = _PROPERTIES_PART
        super().render_properties(context, jinja_env)


@dataclass(frozen=True)
class RenderOptions:
    """How one request wants its document rendered (travels to the worker as is)."""

    strict: bool = False  # missing variables are a 422 listing them, not empty text
    locale: str = "en_US"  # Babel identifier, checked where the request is read
    timezone: str = "UTC"  # IANA name, checked where the request is read
    # The sub-templates include('NAME') may insert, by the reference the templates
    # wrote ('NAME' or 'NAME@VERSION'): read from the store before the render
    # (includes.py), so that rendering stays free of I/O.
    includes: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def formatter(self) -> formatting.Formatter:
        return formatting.Formatter(self.locale, self.timezone)


@dataclass
class TemplateInfo:
    """What a template needs, found without rendering it."""

    variables: dict[str, Any]
    parts: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Analysis:
    """What a template reads, found from its syntax alone (cached by content hash)."""

    paths: tuple[variables_mod.Path, ...]  # every data path, in the order first seen
    required: tuple[variables_mod.Path, ...]  # those the template does not guard itself
    includes: tuple[str | None, ...]  # include() references; None: not a quoted name
    parts: tuple[str, ...]

    def size(self) -> int:
        paths = (*self.paths, *self.required, *self.parts, *self.includes)
        return sum(64 + 16 * len(p or ()) for p in paths)


@dataclass(frozen=True)
class _Including:
    """The document being rendered, for include() called from its template."""

    renderer: Renderer
    tpl: _Template  # the sub-document is attached to this one (styles, numbering, media)
    data: dict[str, Any]  # as the request sent it: rich values are built per document
    options: RenderOptions
    chain: tuple[str, ...]  # the sub-templates from the outermost to this document


_including: ContextVar[_Including | None] = ContextVar("gendoc_including", default=None)


def _include(reference: Any) -> Subdoc:
    """include('NAME'): the sub-template rendered with the same data, as a sub-document."""
    state = _including.get()
    if state is None:
        raise TemplateIncludeProblem("include() is only available while rendering.", chain=[])
    chain = [*state.chain, str(reference)]
    part = state.tpl.current_rendering_part
    if part is not None and part is not state.tpl.docx.part:
        # A sub-document's pictures, links and styles attach to the document's own part.
        raise TemplateIncludeProblem(
            "include() works in the document body only, not in a header, footer or "
            f"footnote ({getattr(part, 'partname', part)}).", chain=chain)
    docx = state.options.includes.get(reference) if isinstance(reference, str) else None
    if docx is None:
        raise TemplateIncludeProblem(
            f"The sub-template {reference!r} was not read before the render "
            "(write its name as a quoted string: include('NAME')).", chain=chain)
    names = [ref.split("@", 1)[0] for ref in chain]
    if names[-1] in names[:-1]:  # the store walk refuses cycles first; never recurse forever
        raise TemplateIncludeProblem(f"Sub-templates include each other: {' -> '.join(chain)}.",
                                     chain=chain)
    sub = _Template(io.BytesIO(docx))
    try:
        state.renderer.fill(sub, docx, state.data, state.options, tuple(chain))
    except Problem as problem:
        if "include" not in problem.extensions:
            problem.extensions["include"] = chain
            problem.detail = f"In sub-template {reference!r}: {problem.detail}"
        raise
    return _Inserted(state.tpl, sub.docx)


class _Inserted(Subdoc):  # type: ignore[misc]  # docxtpl has no type information
    """docxtpl's Subdoc of a document already in memory, the rendered sub-template.

    docxtpl's own Subdoc opens a file; writing the rendered sub-template to a zip
    and reading it back was half of what an include cost (measured: 55 ms of CPU
    for the example letterhead). Its styles, numbering, pictures and footnotes are
    merged into the including document by docxcompose, as Subdoc does.
    """

    def __init__(self, tpl: Any, document: Any) -> None:
        self.tpl = tpl
        self.docx = tpl.get_docx()
        self.subdocx = document
        SubdocComposer(self.docx).attach_parts(document)


def _part_kind(partname: str) -> str:
    name = partname.rsplit("/", 1)[-1]
    if name.startswith("header"):
        return "header"
    if name.startswith("footer"):
        return "footer"
    if name.startswith("footnotes"):
        return "footnotes"
    if partname.startswith(_PROPERTIES_PART):
        return "properties"
    return "body"


def _syntax_problem(exc: TemplateSyntaxError, partname: str,
                    source: str | None) -> TemplateSyntaxProblem:
    kind = _part_kind(partname)
    line = exc.lineno
    extra: dict[str, Any] = {"part": kind, "partname": partname, "line": line}
    if source is not None and kind != "properties":
        # docxtpl puts each <w:p> on its own line before compiling, so line n is
        # the (n-1)th paragraph of the part; show the text around it.
        lines = source.splitlines()
        start = max(line - 3, 0)
        extra["paragraph"] = max(line - 1, 1)
        extra["context"] = [
            re.sub(r"<[^>]+>", "", text) for text in lines[start : line + 2]
        ]
    return TemplateSyntaxProblem(
        f"{exc.message} (in the {kind}, {partname}, line {line}).", **extra
    )


class Renderer:
    """Renders .docx templates; one per process, safe to share between threads."""

    def __init__(self, cache_bytes: int) -> None:
        self._compiled: ByteLRU[jinja2.Template] = ByteLRU(cache_bytes, size_of=lambda _: 0)
        self._lenient = _Environment(self._compiled, undefined=ChainableUndefined)
        self._strict = _Environment(self._compiled, undefined=_RecordingUndefined)
        # Each template's analysis (paths, sub-templates), by content hash.
        self._analysed: ByteLRU[Analysis] = ByteLRU(
            max(cache_bytes // 16, 1 << 20), size_of=lambda _: 0)

    # -- inspection -------------------------------------------------------
    def inspect(self, docx: bytes) -> TemplateInfo:
        """Compile every part (raising TemplateSyntaxProblem) and list the variables."""
        found = self.analyse(docx)
        return TemplateInfo(variables=variables_mod.as_tree(found.paths), parts=list(found.parts),
                            includes=[ref for ref in found.includes if ref is not None])

    def analyse(self, docx: bytes) -> Analysis:
        """What the template reads and includes (TemplateSyntaxProblem, InvalidDocx); cached."""
        key = hashlib.sha256(docx).digest()
        found = self._analysed.get(key)
        if found is None:
            tpl = _Template(io.BytesIO(docx))
            try:
                tpl.init_docx()
            except Exception as exc:  # python-docx raises many kinds on broken packages
                raise InvalidDocx(
                    f"The package is not a readable Word document: {exc}.") from None
            reads = self._reads(tpl)
            found = Analysis(
                paths=tuple(dict.fromkeys(p for _, read in reads for p in read.paths)),
                required=tuple(dict.fromkeys(p for _, read in reads for p in read.required())),
                includes=tuple(dict.fromkeys(r for _, read in reads for r in read.includes)),
                parts=tuple(partname for partname, _ in reads))
            self._analysed.put(key, found, size=found.size())
        return found

    def _reads(self, tpl: _Template) -> list[tuple[str, variables_mod.Reads]]:
        """What each part reads (partname, paths), compiling it (TemplateSyntaxProblem)."""
        reads = []
        for partname, source in _template_sources(tpl):
            try:
                tree = self._lenient.parse(source)
                reads.append((partname, variables_mod.collect(tree, self._lenient.globals)))
            except TemplateSyntaxError as exc:
                raise _syntax_problem(exc, partname, source) from None
            except RecursionError:
                # This runs in the service itself (uploads, include resolution), not only
                # in a render worker: the same answer as the worker gives.
                raise TemplateRenderProblem(
                    f"The template nests too deeply ({partname}).") from None
        return reads

    def _required(self, docx: bytes, options: RenderOptions) -> list[variables_mod.Path]:
        """The paths the template and its sub-templates read without guarding them."""
        documents = [docx, *options.includes.values()]
        return [path for document in documents for path in self.analyse(document).required]

    # -- rendering --------------------------------------------------------
    def render(self, docx: bytes, data: dict[str, Any],
               options: RenderOptions = RenderOptions()) -> bytes:
        tpl = _Template(io.BytesIO(docx))
        self.render_into(tpl, docx, data, options)
        return _saved(tpl)

    def render_into(self, tpl: _Template, docx: bytes, data: dict[str, Any],
                    options: RenderOptions) -> None:
        """Render `tpl`, a template loaded from `docx`, in place (a batch renders many
        items with one loaded template: chunks.py)."""
        strict = options.strict
        if strict and (absent := variables_mod.missing_in(data, self._required(docx, options))):
            raise _undefined(absent)
        missing: list[str] = []
        token = _missing.set(missing if strict else None)
        try:
            with formatting.formatting_with(options.formatter):
                self.fill(tpl, docx, data, options, ())
        finally:
            _missing.reset(token)
        if missing:
            raise _undefined(list(dict.fromkeys(missing)))

    def fill(self, tpl: _Template, docx: bytes, data: dict[str, Any], options: RenderOptions,
             chain: tuple[str, ...]) -> None:
        """Render one document in place: the template itself, or a sub-template in `chain`."""
        strict = options.strict
        env = self._strict if strict else self._lenient
        raw = data
        if richdata.has_markers(data):
            tpl.init_docx()  # images and links attach to the document being rendered
            # Only what this template reads: a sub-template gets the whole data, and
            # building the letter's $html again for its letterhead doubled its render.
            # A template reaches data only through top-level names, all in its analysis.
            names = {path[0] for path in self.analyse(docx).paths}
            data = {k: richdata.materialize(tpl, v, f"data.{k}") if k in names else v
                    for k, v in data.items()}
        context = _track(data, "") if strict else data
        token = _including.set(_Including(self, tpl, raw, options, chain))
        try:
            tpl.render(context, jinja_env=env, autoescape=True)
        except TemplateSyntaxError as exc:
            part = tpl.current_rendering_part
            partname = getattr(part, "partname", None) or str(part or "/word/document.xml")
            raise _syntax_problem(exc, str(partname), exc.source) from None
        except Problem:
            raise
        except SecurityError as exc:
            raise TemplateSecurityProblem(
                f"The template tried an unsafe operation: {exc}."
            ) from None
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError,
                AttributeError, etree.XMLSyntaxError) as exc:
            raise TemplateRenderProblem(
                f"Rendering failed: {type(exc).__name__}: {exc}.", error=type(exc).__name__
            ) from None
        finally:
            _including.reset(token)


def _saved(tpl: _Template) -> bytes:
    out = io.BytesIO()
    tpl.save(out)
    return out.getvalue()


def _undefined(paths: list[str]) -> UndefinedVariables:
    return UndefinedVariables(
        f"The data lacks {len(paths)} variable(s) the template uses: {', '.join(paths)}.",
        variables=paths,
    )


def _template_sources(tpl: _Template) -> list[tuple[str, str]]:
    """(partname, Jinja source) of every part docxtpl renders, as docxtpl prepares them."""
    doc = tpl.docx
    sources = [("/word/document.xml", tpl.patch_xml(tpl.get_xml()))]
    for uri in (tpl.HEADER_URI, tpl.FOOTER_URI):
        for _, part in tpl.get_headers_footers(uri):
            sources.append((str(part.partname), tpl.patch_xml(tpl.get_part_xml(part))))
    for part in doc.part.package.parts:
        if part.content_type == _FOOTNOTES_TYPE:
            blob = part.blob.decode("utf-8") if isinstance(part.blob, bytes) else part.blob
            sources.append((str(part.partname), tpl.patch_xml(blob)))
    props = doc.core_properties
    for name in _PROPERTY_NAMES:
        if value := getattr(props, name):
            sources.append((f"{_PROPERTIES_PART}#{name}", value))
    # docxtpl adds the paragraph line breaks only when rendering; mimic it so
    # that line numbers from inspect() match those from render().
    return [(name, re.sub(r"<w:p([ >])", r"\n<w:p\1", src)) for name, src in sources]

