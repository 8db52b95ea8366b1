"""Sub-templates: what `{{p include('NAME') }}` inserts, read from the store before a render.

A template names its sub-templates as quoted strings, `include('letterhead')`
(the current version) or `include('letterhead@<version id>')`, so they are
known from its syntax alone (`Renderer.analyse`). Before a render the service
walks that graph through the store (`resolve`, here, in the service process)
and hands the bytes to the render with its options: the render itself, in a
worker process, reads nothing. A name that does not resolve, templates that
include each other, or a chain deeper than `GENDOC_MAX_INCLUDE_DEPTH` are a 422
`template-include-error` naming the chain.

Both store backends serve sub-templates alike (`TemplateStore.get`). A
stateless multipart render includes from the store too: the uploaded template
is not stored, but what it includes is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from anyio import to_thread

from . import variables as variables_mod
from .errors import (
    InvalidTemplateName,
    TemplateIncludeProblem,
    TemplateNotFound,
    VersionNotFound,
)
from .rendering import Analysis, RenderOptions
from .services import Services
from .store import TemplateStore

Analyse = Callable[[bytes], Analysis]


def name_of(reference: str) -> str:
    """The template name of a reference ('NAME' or 'NAME@VERSION')."""
    return reference.split("@", 1)[0]


def check_step(chain: tuple[str, ...], depth: int, max_depth: int) -> None:
    """422 when the last reference of `chain` closes a cycle or goes deeper than allowed.

    `chain` runs from the outermost template (when it has a name) to the reference
    just met; `depth` counts the include() steps in it.
    """
    names = [name_of(ref) for ref in chain]
    if names[-1] in names[:-1]:
        raise TemplateIncludeProblem(
            f"Sub-templates include each other: {' -> '.join(chain)}.", chain=list(chain))
    if depth > max_depth:
        raise TemplateIncludeProblem(
            f"Sub-templates nest {depth} deep, more than the {max_depth} allowed "
            f"(GENDOC_MAX_INCLUDE_DEPTH): {' -> '.join(chain)}.", chain=list(chain))


def _fetch(store: TemplateStore, reference: str, chain: tuple[str, ...]) -> bytes:
    name, _, version = reference.partition("@")
    try:
        return store.get(name, version or None)[1]
    except (TemplateNotFound, VersionNotFound, InvalidTemplateName) as exc:
        raise TemplateIncludeProblem(
            f"include({reference!r}) cannot be served: {exc.detail} "
            f"(chain: {' -> '.join(chain)}).", chain=list(chain)) from None


def resolve(store: TemplateStore, analyse: Analyse, root: str | None, docx: bytes,
            max_depth: int) -> dict[str, bytes]:
    """Every sub-template `docx` includes, directly or not, by reference.

    `root` is the template's own name (None for an upload that is not stored): a
    sub-template including it again is a cycle. Synchronous (store I/O): run it
    off the event loop.
    """
    found: dict[str, bytes] = {}
    # The deepest each reference was checked at: deeper means less room left, so a
    # reference met again no deeper is not walked again (a shared letterhead is
    # fetched and analysed once, however many templates include it).
    checked: dict[str, int] = {}

    def walk(document: bytes, chain: tuple[str, ...], depth: int) -> None:
        for reference in analyse(document).includes:
            if reference is None:
                raise TemplateIncludeProblem(
                    "include() takes the sub-template's name as a quoted string, "
                    "include('NAME') or include('NAME@VERSION'): it is read before the "
                    f"render (in {' -> '.join(chain) or 'the template'}).", chain=list(chain))
            step = (*chain, reference)
            check_step(step, depth + 1, max_depth)
            if checked.get(reference, -1) >= depth + 1:
                continue
            checked[reference] = depth + 1
            if reference not in found:
                found[reference] = _fetch(store, reference, step)
            walk(found[reference], step, depth + 1)

    walk(docx, (root,) if root else (), 0)
    return found


async def with_includes(services: Services, root: str | None, docx: bytes,
                        options: RenderOptions) -> RenderOptions:
    """`options` carrying the sub-templates `docx` includes (unchanged when none)."""
    found = await to_thread.run_sync(resolve, services.store, services.inspector.analyse, root,
                                     docx, services.settings.max_include_depth)
    return dataclasses.replace(options, includes=found) if found else options


def variables_of(services: Services, name: str, version: str) -> dict[str, Any]:
    """The variable tree of a stored version with its sub-templates' (current versions),
    and the references it includes. A sub-template that cannot be served leaves the
    tree at what could be read and says why in `include_error`."""
    _, docx = services.store.get(name, version)
    own = services.inspector.analyse(docx)
    paths = list(own.paths)
    described: dict[str, Any] = {"includes": [r for r in own.includes if r is not None]}
    try:
        found = resolve(services.store, services.inspector.analyse, name, docx,
                        services.settings.max_include_depth)
    except TemplateIncludeProblem as problem:
        found = {}
        described["include_error"] = problem.detail
    for document in found.values():
        paths += services.inspector.analyse(document).paths
    described["variables"] = variables_mod.as_tree(dict.fromkeys(paths))
    return described
