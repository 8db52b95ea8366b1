"""The render path of every request: admit, render, convert.

`produce` makes one document (POST /v1/render); `render_many` and
`convert_many` make a batch's documents (POST /v1/render/batch), the batch
holding one admission slot around both. Every step takes the request's absolute
`Deadline` and records its duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from prometheus_client import Histogram

from gendoc.deadline import Deadline

from .converter_client import ConverterClient
from .errors import FormatNotImplemented, Problem
from .rendering import RenderOptions
from .services import Services

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
            document = await convert(services, converter, f"{job.name}.docx", document, deadline)
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
                  deadline: Deadline) -> bytes:
    work = converter.to_pdf(docx, deadline=deadline, filename=filename)
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
                       documents: list[tuple[str, bytes]],
                       deadline: Deadline) -> AsyncGenerator[tuple[str, bytes | Problem], None]:
    """Each (name, PDF or the problem converting it), in order, a few in flight at once."""
    gate = asyncio.Semaphore(CONVERSIONS_IN_FLIGHT)

    async def one(name: str, docx: bytes) -> bytes:
        async with gate:
            return await convert(services, converter, f"{name}.docx", docx, deadline)

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
