"""Where docxtpl runs: one protocol, two backends (worker processes, threads).

The routes and the pipeline see only `RenderBackend.render(docx, data, options,
deadline)`. Both backends answer by the earlier of the request's deadline and the
per-render limit, with the same problems: `DeadlineExceeded` (503) when the
request's deadline came first, `RenderTimeout` (422) when the render limit did.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from anyio import to_thread

from gendoc.deadline import Deadline

from .chunks import ChunkResult, render_chunk
from .errors import DeadlineExceeded, Problem, RenderTimeout, retry_after
from .rendering import Renderer, RenderOptions

T = TypeVar("T")


class RenderBackend(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def render(self, docx: bytes, data: dict[str, Any], options: RenderOptions,
                     deadline: Deadline) -> bytes:
        """The rendered .docx, or a Problem (template error, time or memory limit)."""
        ...

    async def render_chunk(self, docx: bytes, items: list[dict[str, Any]],
                           options: RenderOptions, max_pages: float,
                           deadline: Deadline) -> ChunkResult:
        """`items` rendered and merged (`chunks.render_chunk`) in one go, within
        `len(items)` renders' time; a Problem only when the whole chunk failed."""
        ...


@dataclass(frozen=True)
class Budget:
    """How long one render may take, and which bound that is."""

    seconds: float
    limit: float  # the per-render limit (GENDOC_RENDER_TIMEOUT)

    @classmethod
    def of(cls, deadline: Deadline, limit: float) -> Budget:
        return cls(min(deadline.remaining(), limit), limit)

    def exceeded(self, what: str = "") -> Problem:
        """The problem for a render that used the whole budget."""
        if self.seconds < self.limit:
            return DeadlineExceeded(
                "The request's deadline passed while its document was rendered.",
                headers=retry_after(1))
        return RenderTimeout(f"Rendering took longer than {self.limit:g} s{what}.",
                             limit_seconds=self.limit)


class ThreadBackend:
    """Renders in threads of this process (GENDOC_RENDER_WORKERS=0): no memory limit.

    A thread cannot be stopped, so one that overruns keeps its CPU until the
    template finishes; the request is answered at its time anyway, and the
    admission slot is freed for the next one.
    """

    def __init__(self, renderer: Renderer, limit: float) -> None:
        self._renderer = renderer
        self.limit = limit

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def render(self, docx: bytes, data: dict[str, Any], options: RenderOptions,
                     deadline: Deadline) -> bytes:
        work = functools.partial(self._renderer.render, docx, data, options)
        return await self._run(work, Budget.of(deadline, self.limit))

    async def render_chunk(self, docx: bytes, items: list[dict[str, Any]],
                           options: RenderOptions, max_pages: float,
                           deadline: Deadline) -> ChunkResult:
        work = functools.partial(render_chunk, self._renderer, docx, items, options,
                                 max_pages)
        return await self._run(work, Budget.of(deadline, self.limit * len(items)))

    async def _run(self, work: Callable[[], T], allowed: Budget) -> T:
        try:
            async with asyncio.timeout(allowed.seconds):
                return await to_thread.run_sync(work, abandon_on_cancel=True)
        except TimeoutError:
            raise allowed.exceeded() from None
