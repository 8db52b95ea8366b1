"""The render path of every request: admit, render, convert.

`produce` makes one document (POST /v1/render); `render_many` and
`convert_many` make a batch's documents (POST /v1/render/batch), the batch
holding one admission slot around both. Every step takes the request's absolute
`Deadline` and records its duration.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from anyio import to_thread
from prometheus_client import Histogram

from gendoc.deadline import Deadline

from . import chunks, errors, splitting
from .converter_client import ConverterClient
from .errors import DeadlineExceeded, FormatNotImplemented, Problem
from .pdfoptions import PdfOptions, needs_per_document_conversion
from .rendering import RenderOptions
from .services import Services

log = logging.getLogger(__name__)
T = TypeVar("T")
Format = Literal["pdf", "docx"]

# Conversions of one batch in flight at the converter at once: enough to keep a
# pool of warm instances busy, few enough to leave room for other requests.
CONVERSIONS_IN_FLIGHT = 4


@dataclass(frozen=True)
class RenderJob:
    name: str
    version: str | None  # None for a stateless upload
    docx: bytes
    data: dict[str, Any]
    format: Format
    options: RenderOptions
    filename: str
    pdf: PdfOptions | None = None


def converter_fields(pdf: PdfOptions | None) -> dict[str, str]:
    """The converter's form fields for the `pdf` options (none without them)."""
    return pdf.form_fields() if pdf is not None else {}


def converter_for(services: Services, fmt: Format) -> ConverterClient | None:
    """The converter a format needs (None for DOCX); 501 for PDF when none is configured."""
    if fmt == "docx":
        return None
    if services.converter is None:
        raise FormatNotImplemented("PDF output needs a converter; none is configured.")
    return services.converter


async def produce(services: Services, job: RenderJob, deadline: Deadline) -> bytes:
    """One document, rendered and (for PDF) converted inside one admission slot."""
    converter = converter_for(services, job.format)
    async with services.admission.slot(deadline):
        document = await render(services, job.docx, job.data, job.options, deadline)
        if converter is not None:
            document = await convert(services, converter, f"{job.name}.docx", document, deadline,
                                     converter_fields(job.pdf))
    return document


async def _timed(histogram: Histogram, work: Awaitable[T]) -> T:
    started = time.perf_counter()
    result = await work
    histogram.observe(time.perf_counter() - started)
    return result


async def render(services: Services, docx: bytes, data: dict[str, Any], options: RenderOptions,
                 deadline: Deadline) -> bytes:
    work = services.backend.render(docx, data, options, deadline)
    return await _timed(services.metrics.render_duration, work)


async def convert(services: Services, converter: ConverterClient, filename: str, docx: bytes,
                  deadline: Deadline, fields: dict[str, str] | None = None) -> bytes:
    work = converter.to_pdf(docx, deadline=deadline, filename=filename, fields=fields)
    return await _timed(services.metrics.convert_duration, work)


async def render_many(services: Services, template: bytes, items: list[dict[str, Any]],
                      options: RenderOptions, deadline: Deadline) -> list[bytes]:
    """Every item rendered (concurrently); the first failure names its item index.

    The items queue for the render workers, so one item's own time would count
    that wait: the batch records its mean time per document instead.
    """
    async def one(i: int, data: dict[str, Any]) -> bytes:
        try:
            return await services.backend.render(template, data, options, deadline)
        except Problem as problem:
            problem.extensions["item"] = i
            problem.detail = f"Item {i}: {problem.detail}"
            raise

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i, d) for i, d in enumerate(items)),
                                   return_exceptions=True)
    services.metrics.render_duration.observe((time.perf_counter() - started) / len(results))
    documents: list[bytes] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        documents.append(result)
    return documents


async def convert_many(services: Services, converter: ConverterClient,
                       documents: list[tuple[str, bytes]], deadline: Deadline,
                       fields: dict[str, str] | None = None,
                       ) -> AsyncGenerator[tuple[str, bytes | Problem], None]:
    """Each (name, PDF or the problem converting it), in order, a few in flight at once."""
    gate = asyncio.Semaphore(CONVERSIONS_IN_FLIGHT)

    async def one(name: str, docx: bytes) -> bytes:
        async with gate:
            return await convert(services, converter, f"{name}.docx", docx, deadline, fields)

    tasks = [asyncio.ensure_future(one(name, docx)) for name, docx in documents]
    try:
        for (name, _), task in zip(documents, tasks, strict=True):
            try:
                yield name, await task
            except Problem as problem:
                yield name, problem
    finally:
        for task in tasks:
            task.cancel()


# -- batches converted as merged documents -------------------------------------------
BatchMode = Literal["merged", "single"]
# Gotenberg's own field (a real Gotenberg has it too): Writer bookmarks become PDF
# named destinations, which is how `splitting` finds where each item starts.
_DESTINATIONS = {"exportBookmarksToPdfDestination": "true"}


def batch_mode(fmt: Format, count: int, enabled: bool,
               per_document: list[str]) -> tuple[BatchMode, list[str]]:
    """How a batch is converted, and why not merged (`per_document`: reasons its
    options need one conversion per document, such as PDF/A or encryption)."""
    reasons = list(per_document)
    if fmt != "pdf":
        reasons.append("DOCX output is one document per item")
    if count < 2:
        reasons.append("a single item")
    if not enabled:
        reasons.append("merging is off (GENDOC_BATCH_MERGE)")
    return ("single" if reasons else "merged"), reasons


def chunk_size(count: int, workers: int, max_items: int) -> int:
    """Items per render chunk: every render worker gets a share, none more than
    `max_items` (one merged document at most)."""
    return max(1, min(max_items, -(-count // max(workers, 1))))


@dataclass
class RenderedBatch:
    """A batch rendered and ready to convert: how, and what each item became."""

    template: bytes
    items: list[dict[str, Any]]
    options: RenderOptions
    format: Format
    mode: BatchMode
    reasons: list[str]  # why single, or why some items are converted alone
    merged: list[chunks.Merged] = field(default_factory=list)  # indices into items
    fields: dict[str, str] = field(default_factory=dict)  # the `pdf` options' (pdfoptions)
    documents: dict[int, bytes] = field(default_factory=dict)  # .docx converted alone
    problems: dict[int, Problem] = field(default_factory=dict)
    # Why each item converted alone was (a merged batch's item that could not be merged,
    # or whose merged conversion failed); a job's status counts them (`conversion`).
    alone: dict[int, str] = field(default_factory=dict)

    def first_problem(self) -> Problem | None:
        return self.problems[min(self.problems)] if self.problems else None

    def conversion(self, index: int) -> tuple[BatchMode, str]:
        """How item `index`'s PDF was made: split from a merged document, or converted
        alone and why."""
        if self.mode == "single":
            return "single", self.alone.get(index) or "; ".join(self.reasons)
        if index in self.alone:
            return "single", self.alone[index]
        return "merged", ""


def _reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, Problem) else str(exc)


def _item_problem(index: int, problem: Problem) -> Problem:
    problem.extensions["item"] = index
    problem.detail = f"Item {index}: {problem.detail}"
    return problem


async def render_batch(services: Services, template: bytes, items: list[dict[str, Any]],
                       options: RenderOptions, fmt: Format, deadline: Deadline,
                       per_document: list[str] | None = None,
                       pdf: PdfOptions | None = None, spread: bool = True) -> RenderedBatch:
    """Every item rendered: merged into documents to convert (`chunks`) where it can
    be, else alone; an item's render problem is its own (`problems`). The `pdf`
    options that a split would lose make every item a conversion of its own.

    `spread` cuts the items so that every render worker gets a share (a batch's
    latency); without it the merged documents are as large as allowed
    (GENDOC_BATCH_MERGE_ITEMS), for work whose parallelism comes from elsewhere
    (a job's other workers): LibreOffice pays its per-document time once per
    merged document (a one-page invoice, measured: about 5% more CPU per item in
    documents of 25 than of 50, 40% more in documents of 10)."""
    settings = services.settings
    per_document = [*(per_document or []),
                    *(f"pdf option '{o}'" for o in needs_per_document_conversion(pdf))]
    mode, reasons = batch_mode(fmt, len(items), settings.batch_merge, per_document)
    batch = RenderedBatch(template, items, options, fmt, mode, reasons,
                          fields=converter_fields(pdf))
    started = time.perf_counter()
    if mode == "merged":
        await _render_merged(services, batch, deadline, spread)
    else:
        await _render_alone(services, batch, list(range(len(items))), deadline)
    services.metrics.render_duration.observe((time.perf_counter() - started) / len(items))
    if fmt == "pdf":
        if not batch.merged:
            batch.mode = "single"
        services.metrics.batch_mode.labels(batch.mode).inc()
    return batch


async def _render_alone(services: Services, batch: RenderedBatch, indices: list[int],
                        deadline: Deadline) -> None:
    async def one(i: int) -> None:
        try:
            batch.documents[i] = await services.backend.render(
                batch.template, batch.items[i], batch.options, deadline)
        except Problem as problem:
            batch.problems[i] = _item_problem(i, problem)

    await asyncio.gather(*(one(i) for i in indices))


async def _render_merged(services: Services, batch: RenderedBatch, deadline: Deadline,
                         spread: bool) -> None:
    settings = services.settings
    workers = settings.render_workers if spread else 1
    size = chunk_size(len(batch.items), workers, settings.batch_merge_items)
    starts = range(0, len(batch.items), size)

    async def chunk(start: int) -> None:
        indices = list(range(start, min(start + size, len(batch.items))))
        try:
            result = await services.backend.render_chunk(
                batch.template, [batch.items[i] for i in indices], batch.options,
                settings.batch_merge_pages, deadline)
        except Problem as problem:
            # The chunk as a whole hit a limit: each item again alone, so that only
            # the one at fault fails.
            log.warning("batch chunk failed (%s); its items render alone", problem.detail)
            for i in indices:
                batch.alone[i] = f"its chunk failed to render as a whole: {problem.detail}"
            await _render_alone(services, batch, indices, deadline)
            return
        for merged in result.merged:
            batch.merged.append(chunks.Merged(merged.docx, [indices[i] for i in merged.items],
                                              merged.info))
        for i, docx in result.alone.items():
            batch.documents[indices[i]] = docx
        for i, why in result.reasons.items():
            batch.reasons += [f"item {indices[i]}: {reason}" for reason in why]
            batch.alone[indices[i]] = "; ".join(why)
        for i, found in result.problems.items():
            rebuilt = errors.rebuild(found.slug, found.detail, found.extensions)
            batch.problems[indices[i]] = _item_problem(indices[i], rebuilt)

    await asyncio.gather(*(chunk(start) for start in starts))


async def convert_batch(services: Services, converter: ConverterClient | None,
                        batch: RenderedBatch, deadline: Deadline
                        ) -> AsyncGenerator[tuple[int, bytes | Problem], None]:
    """Each item's document (PDF, or the .docx without a converter) or problem, in order.

    A merged document whose conversion or split fails is converted again item by
    item, so no item pays for a neighbour."""
    count = len(batch.items)
    loop = asyncio.get_running_loop()
    results: dict[int, asyncio.Future[bytes | Problem]] = {
        i: loop.create_future() for i in range(count)}
    for i, problem in batch.problems.items():
        results[i].set_result(problem)
    if converter is None:
        for i, docx in batch.documents.items():
            results[i].set_result(docx)
        for i in range(count):
            yield i, await results[i]
        return
    gate = asyncio.Semaphore(CONVERSIONS_IN_FLIGHT)

    async def alone(i: int) -> None:
        try:
            docx = batch.documents.get(i)
            if docx is None:
                docx = await services.backend.render(batch.template, batch.items[i],
                                                     batch.options, deadline)
            async with gate:
                results[i].set_result(await convert(services, converter, f"{i}.docx", docx,
                                                    deadline, batch.fields))
        except Problem as problem:
            results[i].set_result(_item_problem(i, problem))

    async def merged(document: chunks.Merged) -> None:
        try:
            async with gate:
                # Only options a split keeps reach here (a watermark, on every page).
                work = converter.convert([("batch.docx", document.docx)], deadline=deadline,
                                         fields={**_DESTINATIONS, **batch.fields})
                pdf = await _timed(services.metrics.convert_duration, work)
            pdfs = await to_thread.run_sync(splitting.split, pdf, len(document.items),
                                            document.info)
        except (Problem, splitting.SplitFailed) as exc:
            if isinstance(exc, Problem) and (isinstance(exc, DeadlineExceeded)
                                             or deadline.expired):
                # No time is left for conversions one by one either: each item says so.
                for i in document.items:
                    results[i].set_result(_item_problem(i, type(exc)(
                        exc.detail, headers=dict(exc.headers))))
                return
            log.warning("merged conversion of %d items failed (%s); converting them alone",
                        len(document.items), exc)
            for i in document.items:
                batch.alone[i] = f"the merged conversion failed: {_reason(exc)}"
            await asyncio.gather(*(alone(i) for i in document.items))
            return
        for i, item_pdf in zip(document.items, pdfs, strict=True):
            results[i].set_result(item_pdf)

    def settle(items: list[int], task: asyncio.Future[None]) -> None:
        """No item waits forever: an unexpected failure is its items' problem."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("batch conversion failed", exc_info=task.exception())
        for i in items:
            if not results[i].done():
                results[i].set_result(_item_problem(i, Problem(
                    "Converting failed unexpectedly; it has been logged.")))

    tasks = [asyncio.ensure_future(merged(d)) for d in batch.merged]
    for task, document in zip(tasks, batch.merged, strict=True):
        task.add_done_callback(functools.partial(settle, document.items))
    for i in sorted(batch.documents):
        tasks.append(asyncio.ensure_future(alone(i)))
        tasks[-1].add_done_callback(functools.partial(settle, [i]))
    try:
        for i in range(count):
            yield i, await results[i]
    finally:
        for task in tasks:
            task.cancel()
