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
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread

from gendoc.deadline import Deadline

from . import errors
from .backends import Budget
from .chunks import ChunkResult
from .rendering import RenderOptions

log = logging.getLogger(__name__)


_GC_EVERY = 10  # renders between full collections while requests keep coming
# A new worker announces itself once its imports and renderer are ready; only
# then does it take jobs, so its start-up (about 1 s, several under load) never
# counts against a template's time limit. Measured: with a 0.5 s limit and no
# such wait, every render failed and every replacement started cold again.
_READY = "ready"
_START_TIMEOUT = 60.0  # seconds a new worker may take to announce itself


@dataclass(frozen=True)
class WorkerLimits:
    cache_bytes: int
    timeout: float  # seconds of wall time per render
    memory_bytes: int  # address-space limit of a worker (0: none)
    max_tasks: int


@dataclass(frozen=True)
class Job:
    docx: bytes
    data: dict[str, Any]
    options: RenderOptions


@dataclass(frozen=True)
class ChunkJob:
    """Items of one template rendered and merged in one go (`chunks.render_chunk`)."""

    docx: bytes
    items: list[dict[str, Any]]
    options: RenderOptions
    max_pages: float


@dataclass(frozen=True)
class Reply:
    """What a worker answers: the document, or a problem by slug (rebuilt in the parent)."""

    document: bytes = b""
    slug: str = ""  # empty: rendered
    detail: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)
    replace: bool = False  # the worker is not fit for another job (memory, death)
    chunk: ChunkResult | None = None  # a ChunkJob's result

    @classmethod
    def of(cls, problem: errors.Problem, *, replace: bool = False) -> Reply:
        return cls(slug=problem.slug, detail=problem.detail, extensions=problem.extensions,
                   replace=replace)


def _render_reply(renderer: Any, job: Job | ChunkJob,
                  conn: multiprocessing.connection.Connection) -> Reply:
    try:
        if isinstance(job, ChunkJob):
            from .chunks import render_chunk

            return Reply(chunk=render_chunk(renderer, job.docx, job.items, job.options,
                                            job.max_pages))
        return Reply(renderer.render(job.docx, job.data, job.options))
    except errors.Problem as problem:
        return Reply.of(problem)
    except MemoryError:
        # The heap may be in any state now: answer, then let the parent replace us.
        conn.send(Reply.of(errors.RenderMemoryLimit(
            "Rendering exceeded the worker's memory limit; the worker was replaced."),
            replace=True))
        os._exit(3)
    except RecursionError:
        return Reply.of(errors.TemplateRenderProblem("The template nests too deeply."))
    except Exception as exc:  # reported to the parent, which logs it
        return Reply(slug=errors.Problem.slug, detail=f"{type(exc).__name__}: {exc}")


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
    conn.send(_READY)
    since_gc = 0
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_render_reply(renderer, job, conn))
        since_gc += 1
        if since_gc >= _GC_EVERY or not conn.poll(0):
            gc.collect()
            since_gc = 0


_DIED = Reply.of(errors.RenderMemoryLimit(
    "The render worker died (memory limit or crash); it was replaced."), replace=True)


class _Worker:
    def __init__(self, ctx: Any, limits: WorkerLimits) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, limits), daemon=True,
                                   name="gendoc-render")
        self.process.start()
        child.close()
        self.tasks = 0

    def wait_ready(self, timeout: float = _START_TIMEOUT) -> bool:
        """Block until the worker has started (imports, renderer); False if it never did."""
        try:
            return self.conn.poll(timeout) and bool(self.conn.recv() == _READY)
        except (EOFError, OSError):
            return False

    def call(self, job: Job | ChunkJob, timeout: float) -> Reply | None:
        """Send a job and wait for its reply; None on timeout."""
        try:
            self.conn.send(job)
            if not self.conn.poll(timeout):
                return None
            reply = self.conn.recv()
        except (EOFError, OSError):
            return _DIED
        return reply if isinstance(reply, Reply) else _DIED

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)


class ProcessBackend:
    """Renders in `size` worker processes, each replaced when it hits a limit."""

    def __init__(self, size: int, limits: WorkerLimits) -> None:
        self.size = size
        self.limits = limits
        # spawn, not fork: the parent runs an event loop and threads.
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        # Replacements under way: held so they are not collected, awaited on close.
        self._replacing: set[asyncio.Task[None]] = set()
        self.replaced = 0

    async def start(self) -> None:
        workers = await to_thread.run_sync(
            lambda: [_Worker(self._ctx, self.limits) for _ in range(self.size)]
        )
        for worker in workers:  # started in parallel, awaited in turn
            if not await to_thread.run_sync(worker.wait_ready):
                log.error("render worker pid %s did not start", worker.process.pid)
            self._all.add(worker)
            self._idle.put_nowait(worker)

    async def close(self) -> None:
        if self._replacing:
            await asyncio.gather(*self._replacing, return_exceptions=True)
        for worker in list(self._all):
            await to_thread.run_sync(worker.stop)
        self._all.clear()

    def _replace(self, worker: _Worker, why: str) -> _Worker:
        log.info("replacing render worker pid %s (%s)", worker.process.pid, why)
        self._all.discard(worker)
        worker.stop()
        fresh = _Worker(self._ctx, self.limits)
        if not fresh.wait_ready():
            log.error("render worker pid %s did not start", fresh.process.pid)
        self._all.add(fresh)
        self.replaced += 1
        return fresh

    def _release(self, worker: _Worker, reply: Reply | None) -> None:
        """Back to idle if known-good, else replaced (even after a cancellation).

        A replacement waits for the new worker's start-up (about a second, several
        under load): the caller's answer must not, so it happens in the background
        and the slot comes back to the idle queue once the new worker is ready.
        """
        worker.tasks += 1
        if reply is None or reply.replace:
            why = "limit or crash"
        elif worker.tasks >= self.limits.max_tasks:
            why = "max tasks"
        else:
            self._idle.put_nowait(worker)
            return
        task = asyncio.get_running_loop().create_task(self._replace_in_background(worker, why))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace_in_background(self, worker: _Worker, why: str) -> None:
        fresh = await to_thread.run_sync(self._replace, worker, why)
        self._idle.put_nowait(fresh)

    async def render(self, docx: bytes, data: dict[str, Any], options: RenderOptions,
                     deadline: Deadline) -> bytes:
        return (await self._call(Job(docx, data, options), deadline, 1)).document

    async def render_chunk(self, docx: bytes, items: list[dict[str, Any]],
                           options: RenderOptions, max_pages: float,
                           deadline: Deadline) -> ChunkResult:
        job = ChunkJob(docx, items, options, max_pages)
        chunk = (await self._call(job, deadline, len(items))).chunk
        assert chunk is not None
        return chunk

    async def _call(self, job: Job | ChunkJob, deadline: Deadline, renders: int) -> Reply:
        """The reply of an idle worker to `job` (`renders` renders' worth of time)."""
        try:
            async with asyncio.timeout(deadline.remaining()):
                worker = await self._idle.get()
        except TimeoutError:
            raise Budget(0.0, self.limits.timeout * renders).exceeded() from None
        allowed = Budget.of(deadline, self.limits.timeout * renders)
        reply: Reply | None = None
        try:
            reply = await to_thread.run_sync(worker.call, job, allowed.seconds)
        finally:
            self._release(worker, reply)
        if reply is None:
            raise allowed.exceeded("; the worker was replaced")
        if not reply.slug:
            return reply
        if reply.slug == errors.Problem.slug:
            log.error("render worker failed: %s", reply.detail)
            raise errors.Problem("Rendering failed unexpectedly; it has been logged.")
        raise errors.rebuild(reply.slug, reply.detail, reply.extensions)
