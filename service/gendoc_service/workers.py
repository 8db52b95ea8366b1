"""Rendering in worker processes, so that docxtpl uses every core and never blocks the loop.

Each worker is a process with its own Renderer (and so its own compiled-template
cache) and one pipe. A job goes to an idle worker; the waiting happens in a
thread, so the event loop stays free. A worker that exceeds the render time
limit is killed and replaced, not repaired; one that dies (memory limit, crash)
is replaced too. A worker is also replaced after `max_tasks` jobs, so no leak
in a third-party library can grow without bound.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import resource
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from . import errors

log = logging.getLogger(__name__)


_GC_EVERY = 10  # renders between full collections while requests keep coming


class RenderTimeout(errors.Problem):
    status, slug, title = 422, "render-time-limit", "Template took too long to render"


class RenderMemoryLimit(errors.Problem):
    status, slug, title = 422, "render-memory-limit", "Template needed too much memory"


@dataclass(frozen=True)
class WorkerLimits:
    cache_bytes: int
    timeout: float  # seconds of wall time per render
    memory_bytes: int  # address-space limit of a worker (0: none)
    max_tasks: int


def _worker_main(conn: multiprocessing.connection.Connection, limits: WorkerLimits) -> None:
    """Runs in the child: render what arrives until the pipe closes."""
    from .rendering import Renderer

    if limits.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    renderer = Renderer(limits.cache_bytes)
    # python-docx and lxml leave reference cycles that only a full collection
    # frees; left to the default thresholds a worker grew from 40 to 250 MB
    # between collections (measured, one-page invoice). Freezing what start-up
    # made cuts a full collection from ~9 ms to ~3 ms; collecting when idle, or
    # every _GC_EVERY renders when busy, keeps it off the reply's path.
    gc.collect()
    gc.freeze()
    since_gc = 0
    while True:
        try:
            docx, data, strict = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[Any, ...] = ("ok", renderer.render(docx, data, strict=strict))
        except errors.Problem as problem:
            reply = ("problem", type(problem).__name__, problem.detail, problem.extensions)
        except MemoryError:
            # The heap may be in any state now: answer, then let the parent replace us.
            conn.send(("problem", "RenderMemoryLimit",
                       "Rendering exceeded the worker's memory limit.", {}))
            os._exit(3)
        except RecursionError:
            reply = ("problem", "TemplateRenderProblem", "The template nests too deeply.", {})
        except Exception as exc:  # reported to the parent, which logs it
            reply = ("error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)
        since_gc += 1
        if since_gc >= _GC_EVERY or not conn.poll(0):
            gc.collect()
            since_gc = 0


class _Worker:
    def __init__(self, ctx: Any, limits: WorkerLimits) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, limits), daemon=True,
                                   name="gendoc-render")
        self.process.start()
        child.close()
        self.tasks = 0

    def call(self, job: tuple[Any, ...], timeout: float) -> tuple[Any, ...] | None:
        """Send a job and wait for its reply; None on timeout or death."""
        try:
            self.conn.send(job)
            if not self.conn.poll(timeout):
                return None
            return self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            return ("dead",)

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


_PROBLEMS: dict[str, type[errors.Problem]] = {
    cls.__name__: cls for cls in (*errors.Problem.__subclasses__(), RenderTimeout, RenderMemoryLimit)
}


class RenderPool:
    def __init__(self, size: int, limits: WorkerLimits) -> None:
        self.size = size
        self.limits = limits
        # spawn, not fork: the parent runs an event loop and threads.
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self.replaced = 0

    async def start(self) -> None:
        workers = await to_thread.run_sync(
            lambda: [_Worker(self._ctx, self.limits) for _ in range(self.size)]
        )
        for worker in workers:
            self._all.add(worker)
            self._idle.put_nowait(worker)

    async def close(self) -> None:
        for worker in list(self._all):
            await to_thread.run_sync(worker.stop)
        self._all.clear()

    def _replace(self, worker: _Worker, why: str) -> _Worker:
        log.info("replacing render worker pid %s (%s)", worker.process.pid, why)
        self._all.discard(worker)
        worker.stop()
        fresh = _Worker(self._ctx, self.limits)
        self._all.add(fresh)
        self.replaced += 1
        return fresh

    async def render(self, docx: bytes, data: dict[str, Any], strict: bool, timeout: float) -> bytes:
        worker = await self._idle.get()
        budget = min(timeout, self.limits.timeout)
        reply: tuple[Any, ...] | None = None
        try:
            reply = await to_thread.run_sync(worker.call, (docx, data, strict), budget)
        finally:
            # Whatever happened (even cancellation while waiting), the worker goes
            # back idle only if it is known-good; otherwise it is replaced.
            worker.tasks += 1
            if reply is None or reply[0] == "dead" or (
                reply[0] == "problem" and reply[1] == "RenderMemoryLimit"
            ):
                worker = await to_thread.run_sync(self._replace, worker, "limit or crash")
            elif worker.tasks >= self.limits.max_tasks:
                worker = await to_thread.run_sync(self._replace, worker, "max tasks")
            self._idle.put_nowait(worker)
        if reply is None:
            if budget < self.limits.timeout:
                raise errors.DeadlineExceeded(
                    "The request's deadline passed while its document was rendered.",
                    headers=errors.retry_after(1))
            raise RenderTimeout(
                f"Rendering took longer than {self.limits.timeout:g} s; the worker was replaced.",
                limit_seconds=self.limits.timeout)
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "problem":
            _, name, detail, extensions = reply
            raise _PROBLEMS.get(name, errors.TemplateRenderProblem)(detail, **extensions)
        if kind == "dead":
            raise RenderMemoryLimit("The render worker died (memory limit or crash); it was replaced.")
        log.error("render worker failed: %s", reply[1])
        raise errors.Problem("Rendering failed unexpectedly; it has been logged.")
