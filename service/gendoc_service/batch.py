"""POST /v1/render/batch: one template, many data sets, one zip (or one merged PDF).

Every document is rendered before the response starts, so a template or data
problem is still a clean 422 naming the item. Conversions then stream into the
zip in order while the batch holds one admission slot. A conversion that fails
after the response has started cannot change its status: its place in the zip
holds `<name>.error.json` with the problem, so nothing is silently lost.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any, Literal

from anyio import to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .errors import FormatNotImplemented, InvalidRequest, Problem
from .handling import (
    deadline_for,
    parse_json,
    rate_limit,
    read_body,
    safe_filename,
    validation_problem,
)

ZIP_MEDIA_TYPE = "application/zip"
PDF_MEDIA_TYPE = "application/pdf"
# Conversions of one batch in flight at the converter at once: enough to keep a
# pool of warm instances busy, few enough to leave room for other requests.
_CONVERSIONS_IN_FLIGHT = 4


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str
    version: str | None = None
    items: list[dict[str, Any]] = Field(min_length=1)
    format: Literal["pdf", "docx"] = "pdf"
    strict: bool = False
    merge: bool = False
    filename: str | None = None


class _Sink(io.RawIOBase):
    """A write-only stream zipfile writes into; the producer takes what accumulated."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


async def render_batch(request: Request) -> Response:
    state = request.app.state
    settings = state.settings
    deadline = deadline_for(request)
    raw = await read_body(request, settings.max_body_bytes, "batch request")
    try:
        body = BatchRequest.model_validate(parse_json(raw, "request body"))
    except ValidationError as exc:
        raise validation_problem(exc) from None
    if len(body.items) > settings.max_batch_items:
        raise InvalidRequest(f"A batch holds at most {settings.max_batch_items} items; "
                             f"this one has {len(body.items)}.", max_items=settings.max_batch_items)
    if body.merge and body.format != "pdf":
        raise InvalidRequest("merge=true needs format pdf: DOCX files cannot be merged.")
    if body.format == "pdf" and state.converter is None:
        raise FormatNotImplemented("PDF output needs a converter; none is configured.")
    limit_headers = rate_limit(request, cost=len(body.items))
    vid, template = await to_thread.run_sync(state.store.get, body.template, body.version)
    stem = safe_filename(body.filename or body.template, "x").rsplit(".", 1)[0]
    names = [f"{stem}-{i + 1:04d}" for i in range(len(body.items))]

    stack = AsyncExitStack()
    await stack.enter_async_context(state.admission.slot(deadline))
    try:
        documents = await _render_all(state, template, body, deadline)
        headers = {"X-Template-Version": vid, **limit_headers}
        if body.merge:
            pdf = await state.converter.convert(
                [(f"{n}.docx", d) for n, d in zip(names, documents, strict=True)],
                timeout=deadline - time.monotonic(), merge=True)
            await stack.aclose()
            headers["Content-Disposition"] = f'attachment; filename="{stem}.pdf"'
            return Response(pdf, media_type=PDF_MEDIA_TYPE, headers=headers)
    except BaseException:
        await stack.aclose()
        raise
    headers["Content-Disposition"] = f'attachment; filename="{stem}.zip"'
    chunks = _stream_zip(state, stack, names, documents, body.format, deadline)
    return StreamingResponse(chunks, media_type=ZIP_MEDIA_TYPE, headers=headers)


async def _render_all(state: Any, template: bytes, body: BatchRequest, deadline: float) -> list[bytes]:
    async def one(i: int, data: dict[str, Any]) -> bytes:
        try:
            return await state.render_docx(template, data, body.strict, deadline - time.monotonic())
        except Problem as problem:
            problem.extensions["item"] = i
            problem.detail = f"Item {i}: {problem.detail}"
            raise

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i, d) for i, d in enumerate(body.items)), return_exceptions=True)
    state.metrics.render_seconds.observe((time.perf_counter() - started) / len(results))
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def _stream_zip(state: Any, stack: AsyncExitStack, names: list[str], documents: list[bytes],
                fmt: str, deadline: float) -> AsyncIterator[bytes]:
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)

    async def put(chunk: bytes | None) -> None:
        # A client that stops reading must not hold the slot past the deadline.
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
            await chunks.put(chunk)

    async def produce() -> None:
        async with stack:  # releases the admission slot however this ends
            sink = _Sink()
            archive = zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED)
            if fmt == "docx":
                for name, doc in zip(names, documents, strict=True):
                    archive.writestr(f"{name}.docx", doc)
                    await put(sink.take())
            else:
                gate = asyncio.Semaphore(_CONVERSIONS_IN_FLIGHT)

                async def convert(name: str, doc: bytes) -> bytes:
                    async with gate:
                        started = time.perf_counter()
                        pdf = await state.converter.to_pdf(doc, timeout=deadline - time.monotonic(),
                                                           filename=f"{name}.docx")
                        state.metrics.convert_seconds.observe(time.perf_counter() - started)
                        return pdf

                tasks = [asyncio.ensure_future(convert(n, d)) for n, d in zip(names, documents, strict=True)]
                try:
                    for name, task in zip(names, tasks, strict=True):
                        try:
                            archive.writestr(f"{name}.pdf", await task)
                        except Problem as problem:
                            archive.writestr(f"{name}.error.json", json.dumps(problem.body()))
                        await put(sink.take())
                finally:
                    for task in tasks:
                        task.cancel()
            archive.close()
            await put(sink.take())
            await put(None)

    producer = asyncio.ensure_future(produce())

    async def body() -> AsyncIterator[bytes]:
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
            await producer
        finally:
            producer.cancel()

    return body()
