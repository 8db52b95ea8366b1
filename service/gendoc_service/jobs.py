"""Async jobs: what POST /v1/jobs asks for, and the workers that do it in every service process.

A job is checked and stored at once (202), then its items are done by job
workers in whichever service process claims them from the queue (`queue.py`):
several of them per process (`GENDOC_JOB_SLOTS`), each holding one admission
slot for a chunk of items (`GENDOC_JOB_CHUNK_ITEMS`), taken only while no
synchronous request waits for a slot (`Admission.idle_slot`). So renders keep
their latency, and jobs use what capacity renders leave. A chunk goes through
the same pipeline as a batch (`pipeline.render_batch`, `pipeline.convert_batch`).

Each item's document is stored under its job and index (`results.py`) before
its outcome is written, both after the chunk's slot is released, while the
worker renders its next chunk (storing is waiting, not rendering or
converting). A 4xx problem fails the item alone, a 5xx one (or a render worker
that died) delivers it again later. When the last item is
written, the job's finalize task assembles the result (a zip, or one merged
PDF), sets the final status and calls the finished hooks (`Jobs.on_finished`:
webhooks are wired there).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import socket
import tempfile
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from pydantic import BaseModel, ConfigDict

from gendoc.deadline import Deadline

from . import includes, pipeline
from .batch import BatchRequest
from .errors import Problem, QueueUnavailable, StoreUnavailable
from .payloads import safe_filename
from .queue import (
    FINAL,
    FINALIZE,
    JobQueue,
    JobRecord,
    Outcome,
    Task,
    conversion_summary,
    open_queue,
    retriable,
)
from .results import Entry, ResultStore, item_key, open_results, result_key

if TYPE_CHECKING:
    from .services import Services
    from .settings import ServiceSettings

log = logging.getLogger(__name__)

MEDIA_TYPES = {"pdf": "application/pdf", "zip": "application/zip",
               "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
FinishedHook = Callable[[JobRecord], Awaitable[None]]
# Called with the job's id, spec and the outcomes just written (a redelivered item's
# may come again): the webhook sender's per-item events.
ItemsHook = Callable[[str, dict[str, Any], list[tuple[int, Outcome]]], Awaitable[None]]


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    items: bool = False  # also an event per item as it is done (job.item.succeeded|failed)


class JobRequest(BatchRequest):
    """POST /v1/jobs: a batch's fields (parsed as /v1/render's are), and a webhook."""

    webhook: Webhook | None = None

    def spec(self, version: str) -> dict[str, Any]:
        """What the job record keeps: every field but the items, the version resolved."""
        return self.model_dump(exclude={"items"}, exclude_none=True) | {"version": version}


@dataclass(frozen=True)
class _Answer:
    """A chunk's items of one job, done: each one's document (or problem), to write."""

    tasks: list[Task]
    answers: list[bytes | Problem]
    extension: str  # of the documents ("pdf", "docx")
    spec: dict[str, Any]
    conversions: list[tuple[str, str]] | None = None  # each PDF's (mode, why single)


def new_job_id() -> str:
    return uuid.uuid4().hex


def item_names(spec: dict[str, Any], total: int) -> list[str]:
    """The file name stem of each item in the result (as a batch names them)."""
    stem = safe_filename(spec.get("filename") or spec["template"], "x").rsplit(".", 1)[0]
    return [f"{stem}-{i + 1:04d}" for i in range(total)]


def result_extension(spec: dict[str, Any]) -> str:
    return "pdf" if spec.get("merge") else "zip"


class Jobs:
    """The queue, the results, the finished hooks, and this process's job workers."""

    def __init__(self, settings: ServiceSettings, queue: JobQueue, results: ResultStore) -> None:
        self.settings = settings
        self.queue = queue
        self.results = results
        # Called once per job that finished (succeeded, failed or cancelled), with its
        # record; the webhook sender appends itself here. A hook's error is logged.
        self.on_finished: list[FinishedHook] = []
        self.on_items: list[ItemsHook] = []
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._work = asyncio.Event()  # set when a job is submitted here: wake idle workers

    @classmethod
    def build(cls, settings: ServiceSettings) -> Jobs:
        return cls(settings, open_queue(settings), open_results(settings))

    # -- life cycle ------------------------------------------------------------
    async def start(self, services: Services) -> None:
        await self.queue.open()
        self._tasks = [asyncio.ensure_future(self._worker(services))
                       for _ in range(self.settings.job_slot_count())]
        self._tasks.append(asyncio.ensure_future(self._housekeeping(services)))

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let chunks in hand finish for `timeout`, then give the rest back."""
        self._stopping.set()
        self._work.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.queue.close()

    def submitted(self) -> None:
        self._work.set()

    async def announce(self, record: JobRecord) -> None:
        for hook in self.on_finished:
            try:
                await hook(record)
            except Exception:
                log.exception("a finished hook failed for job %s", record.id)

    # -- workers -----------------------------------------------------------------
    async def _worker(self, services: Services) -> None:
        failures = 0
        # The previous chunk's documents and outcomes, written after its slot was
        # released and while this worker renders the next chunk: storing them (a
        # flush to disk per document, or S3 uploads) is waiting that neither the
        # render workers nor the converter do (gendoc bench jobs: 5 s of a 2,000-item
        # job's 100 s were spent in fsync holding the slot).
        writing: asyncio.Task[bool] | None = None
        try:
            while not self._stopping.is_set():
                answers: list[_Answer] = []
                ok = True
                try:
                    async with services.admission.idle_slot():
                        if self._stopping.is_set():
                            return
                        tasks = await self.queue.claim(self.consumer,
                                                       self.settings.job_chunk_items)
                        if tasks:
                            answers = await self._do(services, tasks)
                except QueueUnavailable as exc:
                    ok = False
                    log.warning("job worker: %s", exc.detail)
                    tasks = []
                except Exception:
                    ok = False
                    log.exception("job worker: unexpected error")
                    tasks = []
                if writing is not None:  # one chunk written at a time
                    ok = await writing and ok
                writing = asyncio.ensure_future(self._write(answers)) if answers else None
                failures = 0 if ok else failures + 1
                if not tasks or not ok:
                    await self._nap(min(self.settings.job_poll_interval * 2 ** failures, 10.0))
        finally:
            if writing is not None:
                try:  # a chunk converted is written, also when stop() cancels the worker
                    await asyncio.shield(writing)
                finally:  # unless cancelled again: then what is unwritten is given back
                    writing.cancel()

    async def _nap(self, seconds: float) -> None:
        self._work.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._work.wait()

    async def _do(self, services: Services, tasks: list[Task]) -> list[_Answer]:
        """One claimed chunk: its finalize tasks, then its items job by job; the
        items' answers, to be written (`_write`). A chunk cut short (shutdown) gives
        back what it had not answered."""
        open_tasks = {t.token: t for t in tasks}
        answers: list[_Answer] = []
        try:
            for task in [t for t in tasks if t.index == FINALIZE]:
                await self._finalize(task)
                open_tasks.pop(task.token)
            by_job: dict[str, list[Task]] = {}
            for task in tasks:
                if task.index != FINALIZE:
                    by_job.setdefault(task.job, []).append(task)
            for group in by_job.values():
                answer = await self._items(services, group)
                if answer is None:  # dropped
                    for task in group:
                        open_tasks.pop(task.token)
                else:
                    answers.append(answer)
        except BaseException:
            await self._give_back(list(open_tasks.values()))
            raise
        return answers

    async def _give_back(self, tasks: list[Task]) -> None:
        if tasks:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.queue.release(tasks))

    async def _write(self, answers: list[_Answer]) -> bool:
        """Each job's documents, then its outcomes (`_answer`); whether all were
        written. What could not be is given back to the queue, delivered again."""
        for i, answer in enumerate(answers):
            try:
                await self._answer(answer.tasks, answer.answers, answer.extension,
                                   spec=answer.spec, conversions=answer.conversions)
            except BaseException as exc:
                await self._give_back([t for a in answers[i:] for t in a.tasks])
                if not isinstance(exc, Exception):
                    raise
                if isinstance(exc, Problem):
                    log.warning("job worker: %s", exc.detail)
                else:
                    log.exception("job worker: unexpected error")
                return False
        return True

    async def _items(self, services: Services, tasks: list[Task]) -> _Answer | None:
        """The chunk's items of one job rendered and converted (None: dropped, the
        job being forgotten or cancelled)."""
        record = await self.queue.get(tasks[0].job)
        if record is None or record.status in FINAL:  # forgotten, or cancelled meanwhile
            await self.queue.drop(tasks)
            return None
        spec = record.spec
        try:
            _, template = await to_thread.run_sync(services.store.get, spec["template"],
                                                   spec["version"])
            asked = JobRequest.model_validate(spec | {"items": [{}]})
            converter = pipeline.converter_for(services, spec["format"])
            # Sub-templates as they are when the items render (current versions).
            options = await includes.with_includes(services, spec["template"], template,
                                                   asked.options(self.settings))
        except Problem as problem:
            return _Answer(tasks, [problem] * len(tasks), "", spec)
        # A chunk has a synchronous request's time: its documents wait for the same workers.
        deadline = Deadline.after(self.settings.request_timeout)
        # The batch's path: merged conversion where it applies, each item's problem its own.
        # Merged documents as large as allowed (not one share per render worker, as a
        # batch cuts them): the other job workers keep the render workers busy.
        rendered = await pipeline.render_batch(services, template, [t.data or {} for t in tasks],
                                               options, spec["format"],
                                               deadline, pdf=asked.pdf, spread=False)
        answers: list[bytes | Problem] = []
        async with contextlib.aclosing(
                pipeline.convert_batch(services, converter, rendered, deadline)) as converted:
            async for i, answer in converted:
                if isinstance(answer, Problem):
                    answer.extensions["item"] = tasks[i].index
                answers.append(answer)
        conversions: list[tuple[str, str]] | None = (
            [rendered.conversion(i) for i in range(len(tasks))] if converter is not None
            else None)
        return _Answer(tasks, answers, spec["format"], spec, conversions)

    async def _answer(self, tasks: list[Task], answers: list[bytes | Problem],
                      extension: str = "", *, spec: dict[str, Any],
                      conversions: list[tuple[str, str]] | None = None) -> None:
        """Store each document, then write the outcomes; retry what deserves it."""
        written: list[tuple[Task, Outcome]] = []
        documents: list[Entry] = []
        for i, (task, answer) in enumerate(zip(tasks, answers, strict=True)):
            if isinstance(answer, bytes):
                documents.append((item_key(task.job, task.index, extension), answer,
                                  MEDIA_TYPES[extension], f"{task.index}.{extension}"))
                mode, why = conversions[i] if conversions else ("", "")
                written.append((task, Outcome(size=len(answer), extension=extension,
                                              mode=mode, why=why)))
            elif retriable(answer):
                await self.queue.retry(task, answer)
            else:
                written.append((task, Outcome.failed(answer, task.index)))
        if documents:  # stored before any outcome says they are
            await to_thread.run_sync(self.results.put_many, documents)
        if written:
            await self.queue.record(written)
            for hook in self.on_items:
                try:
                    await hook(tasks[0].job, spec, [(t.index, o) for t, o in written])
                except Exception:
                    log.exception("an items hook failed for job %s", tasks[0].job)

    # -- finishing -----------------------------------------------------------------
    async def _finalize(self, task: Task) -> None:
        record = await self.queue.get(task.job)
        result = None
        if record is not None and record.status not in FINAL:
            outcomes = await self.queue.outcomes(task.job)
            try:
                result = await to_thread.run_sync(self._assemble, record, outcomes)
            except StoreUnavailable as problem:
                await self.queue.retry(task, problem)
                return
        finished = await self.queue.finish(task, result)
        if finished is not None:
            log.info("job %s %s: %d done, %d failed", finished.id, finished.status,
                     finished.done, finished.failed)
            await self.announce(finished)

    def _assemble(self, record: JobRecord, outcomes: dict[int, Outcome]) -> dict[str, Any] | None:
        """Write the job's result (a zip in item order, or one merged PDF) from the
        stored items; its {url, size}, or None when there is nothing to put in it."""
        spec = record.spec
        extension = result_extension(spec)
        names = item_names(spec, record.total)
        fd, tmp = tempfile.mkstemp(dir=self.results.scratch(), prefix=".result-")
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as fh:
                documents = (self._read(record.id, i, outcomes.get(i)) for i in range(record.total))
                if extension == "zip":
                    _write_zip(fh, names, documents)
                elif not _write_merged(fh, documents):
                    return None
            size = path.stat().st_size
            key = result_key(record.id, extension)
            filename = f"{names[0].rsplit('-', 1)[0]}.{extension}"
            self.results.put_file(key, path, MEDIA_TYPES[extension], filename)
        finally:
            path.unlink(missing_ok=True)
        expires = int(self.settings.job_retention)
        result: dict[str, Any] = {
            "url": self.results.url(key, expires) or f"/v1/jobs/{record.id}/result",
            "size": size}
        if (conversion := conversion_summary(list(outcomes.values()))) is not None:
            result["conversion"] = conversion  # shown beside the result (JobRecord.public)
        return result

    def _read(self, job_id: str, index: int,
              outcome: Outcome | None) -> tuple[str, bytes] | dict[str, Any]:
        """An item's (extension, document), or its problem body."""
        if outcome is None:
            return {"title": "Item missing", "detail": "The item has no outcome.", "item": index}
        if outcome.problem is not None:
            return outcome.problem
        data = self.results.get(item_key(job_id, index, outcome.extension))
        if data is None:
            raise StoreUnavailable(f"Item {index} of job {job_id} is missing from the results.")
        return outcome.extension, data

    # -- housekeeping ----------------------------------------------------------------
    async def _housekeeping(self, services: Services) -> None:
        """Refresh the backlog gauges often; delete expired jobs now and then."""
        gauge_every = 2.0
        sweep_every = min(max(self.settings.job_retention / 4, 1.0), 60.0)
        last_sweep = 0.0
        while not self._stopping.is_set():
            try:
                backlog = await self.queue.backlog()
                services.metrics.jobs_backlog.set(backlog.items)
                services.metrics.jobs_oldest.set(backlog.oldest_seconds)
                if time.monotonic() - last_sweep >= sweep_every:
                    last_sweep = time.monotonic()
                    await self.sweep()
            except Problem as problem:
                log.warning("job housekeeping: %s", problem.detail)
            await self._nap_until_stop(min(gauge_every, sweep_every))

    async def _nap_until_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def sweep(self, now: float | None = None) -> int:
        """Delete jobs (record, outcomes, documents) whose retention is over."""
        cutoff = (time.time() if now is None else now) - self.settings.job_retention
        expired = await self.queue.expired(cutoff)
        for job_id in expired:
            await to_thread.run_sync(self.results.delete_job, job_id)
            await self.queue.forget(job_id)
        return len(expired)


def _write_zip(fh: Any, names: list[str], documents: Any) -> None:
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as archive:
        for name, document in zip(names, documents, strict=True):
            if isinstance(document, dict):  # the item failed: its problem takes its place
                archive.writestr(f"{name}.error.json", json.dumps(document))
            else:
                archive.writestr(f"{name}.{document[0]}", document[1])


def _write_merged(fh: Any, documents: Any) -> bool:
    from pypdf import PdfWriter

    writer = PdfWriter()
    merged = 0
    for document in documents:
        if not isinstance(document, dict):
            writer.append(io.BytesIO(document[1]))
            merged += 1
    if merged:
        writer.write(fh)
    return merged > 0
