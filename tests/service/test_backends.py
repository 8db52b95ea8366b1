"""Both render backends honour the request's deadline and the render limit (real docxtpl)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from docx_helpers import ENDLESS_LOOP, SLOW_LOOP, make_docx, part_texts
from gendoc_service.backends import RenderBackend, ThreadBackend
from gendoc_service.errors import DeadlineExceeded, Problem, RenderTimeout, UndefinedVariables
from gendoc_service.rendering import Renderer, RenderOptions
from gendoc_service.workers import ProcessBackend, WorkerLimits

from gendoc.deadline import Deadline

# A worker process is killed, so its render may never end; a thread cannot be
# stopped, so its render must end on its own (in the background, once answered).
ENDLESS = make_docx(ENDLESS_LOOP)
SLOW = make_docx(SLOW_LOOP)
HELLO = make_docx("Hello {{ who }}")


def threads(limit: float) -> tuple[RenderBackend, bytes]:
    return ThreadBackend(Renderer(8 << 20), limit), SLOW


def processes(limit: float) -> tuple[RenderBackend, bytes]:
    limits = WorkerLimits(cache_bytes=8 << 20, timeout=limit, memory_bytes=0, max_tasks=100)
    return ProcessBackend(1, limits), ENDLESS


Make = Callable[[float], tuple[RenderBackend, bytes]]


def run(backend: RenderBackend, docx: bytes, seconds: float, data: dict[str, object] | None = None,
        strict: bool = False) -> tuple[bytes | Problem, float]:
    """Render once on a started backend with `seconds` to go: (document or problem, time taken)."""
    async def go() -> tuple[bytes | Problem, float]:
        await backend.start()
        try:
            deadline = Deadline.after(seconds)
            started = time.monotonic()
            try:
                options = RenderOptions(strict=strict)
                result: bytes | Problem = await backend.render(docx, data or {}, options, deadline)
            except Problem as problem:
                result = problem
            return result, time.monotonic() - started
        finally:
            await backend.close()

    return asyncio.run(go())


@pytest.mark.parametrize("make", [threads, processes])
def test_renders_and_reports_problems(make: Make) -> None:
    out, _ = run(make(10.0)[0], HELLO, 30, {"who": "Ada"})
    assert isinstance(out, bytes) and "Hello Ada" in part_texts(out)["word/document.xml"]
    missing, _ = run(make(10.0)[0], HELLO, 30, strict=True)
    assert isinstance(missing, UndefinedVariables) and missing.extensions["variables"] == ["who"]


@pytest.mark.parametrize("make", [threads, processes])
def test_the_request_deadline_ends_a_render(make: Make) -> None:
    backend, long_render = make(20.0)
    out, took = run(backend, long_render, 0.5)
    assert isinstance(out, DeadlineExceeded), out
    assert 0.4 <= took < 3.0
    assert int(out.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("make", [threads, processes])
def test_the_render_limit_ends_a_render(make: Make) -> None:
    backend, long_render = make(0.5)
    out, took = run(backend, long_render, 30)
    assert isinstance(out, RenderTimeout), out
    assert out.extensions["limit_seconds"] == 0.5
    assert 0.4 <= took < 3.0
