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
import zipfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import Any, Literal, TypeVar

from anyio import to_thread
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gendoc.deadline import Deadline

from . import includes, pipeline
from .admission import deadline_for
from .converter_client import ConverterClient
from .errors import InvalidRequest
from .payloads import RenderFields, parse_json, read_body, safe_filename, validated
from .ratelimit import charge
from .services import Services

ZIP_MEDIA_TYPE = "application/zip"
_READ_GRACE = 5.0  # seconds a reading client has for a chunk once the deadline has passed
B = TypeVar("B", bound="BatchRequest")
PDF_MEDIA_TYPE = "application/pdf"


class BatchRequest(RenderFields):
    template: str
    version: str | None = None
    items: list[dict[str, Any]] = Field(min_length=1)
    format: Literal["pdf", "docx"] = "pdf"
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


async def _batch_request(request: Request, services: Services) -> BatchRequest:
    settings = services.settings
    raw = await read_body(request, settings.max_body_bytes, "batch request")
    return checked(validated(BatchRequest, parse_json(raw, "request body")),
                   settings.max_batch_items, "A batch")


def checked(body: B, max_items: int, what: str) -> B:
    """A batch's (or a job's) request, refused with 422 when its fields cannot go together."""
    if len(body.items) > max_items:
        raise InvalidRequest(f"{what} holds at most {max_items} items; "
                             f"this one has {len(body.items)}.", max_items=max_items)
    if body.merge and body.format != "pdf":
        raise InvalidRequest("merge=true needs format pdf: DOCX files cannot be merged.")
    if body.merge and body.pdf is not None and (body.pdf.standard or body.pdf.ua):
        # One file merged from many keeps neither PDF/A identification nor structure tree.
        raise InvalidRequest("merge=true cannot keep PDF/A or PDF/UA: ask for the zip.")
    return body


async def render_batch(request: Request) -> Response:
    services = Services.of(request)
    deadline = deadline_for(request.headers, services.settings.request_timeout)
    body = await _batch_request(request, services)
    converter = pipeline.converter_for(services, body.format)
    limit_headers = charge(services.limiter, services.metrics, request, cost=len(body.items))
    vid, template = await to_thread.run_sync(services.store.get, body.template, body.version)
    options = await includes.with_includes(services, body.template, template,
                                           body.options(services.settings))
    stem = safe_filename(body.filename or body.template, "x").rsplit(".", 1)[0]
    names = [f"{stem}-{i + 1:04d}" for i in range(len(body.items))]
    headers = {"X-Template-Version": vid, **limit_headers}

    # The slot is held until the last chunk of the zip is produced.
    stack = AsyncExitStack()
    await stack.enter_async_context(services.admission.slot(deadline))
    try:
        if converter is not None and body.merge:
            documents = await pipeline.render_many(services, template, body.items, options,
                                                   deadline)
            pdf = await converter.convert(
                [(f"{n}.docx", d) for n, d in zip(names, documents, strict=True)],
                deadline=deadline, merge=True, fields=pipeline.converter_fields(body.pdf))
            await stack.aclose()
            headers["Content-Disposition"] = f'attachment; filename="{stem}.pdf"'
            return Response(pdf, media_type=PDF_MEDIA_TYPE, headers=headers)
        rendered = await pipeline.render_batch(services, template, body.items, options,
                                               body.format, deadline, pdf=body.pdf)
        if (problem := rendered.first_problem()) is not None:
            raise problem
    except BaseException:
        await stack.aclose()
        raise
    headers["Content-Disposition"] = f'attachment; filename="{stem}.zip"'
    headers["Gendoc-Batch-Mode"] = rendered.mode
    chunks = _stream_zip(services, converter, stack, names, rendered, deadline)
    return StreamingResponse(chunks, media_type=ZIP_MEDIA_TYPE, headers=headers)


async def _zip_entries(services: Services, converter: ConverterClient | None,
                       names: list[str], rendered: pipeline.RenderedBatch,
                       deadline: Deadline) -> AsyncGenerator[tuple[str, bytes], None]:
    """(file name, bytes) of each zip entry, in item order."""
    extension = "pdf" if converter is not None else "docx"
    # aclosing: stopping early (client gone, deadline) cancels the conversions.
    async with aclosing(pipeline.convert_batch(services, converter, rendered,
                                               deadline)) as results:
        async for index, result in results:
            if isinstance(result, bytes):
                yield f"{names[index]}.{extension}", result
            else:  # the response has started: the problem takes the PDF's place
                yield f"{names[index]}.error.json", json.dumps(result.body()).encode()


def _stream_zip(services: Services, converter: ConverterClient | None, stack: AsyncExitStack,
                names: list[str], rendered: pipeline.RenderedBatch,
                deadline: Deadline) -> AsyncIterator[bytes]:
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=4)

    async def put(chunk: bytes | None) -> None:
        # A client that stops reading must not hold the slot long past the deadline;
        # one that reads does within seconds, even on a loaded machine.
        async with asyncio.timeout(max(deadline.remaining(), _READ_GRACE)):
            await chunks.put(chunk)

    async def produce() -> None:
        async with stack:  # releases the admission slot however this ends
            sink = _Sink()
            archive = zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED)
            entries_of = _zip_entries(services, converter, names, rendered, deadline)
            async with aclosing(entries_of) as entries:
                async for filename, data in entries:
                    archive.writestr(filename, data)
                    await put(sink.take())
            archive.close()
            await put(sink.take())
            await put(None)

    producer = asyncio.ensure_future(produce())

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                getter = asyncio.ensure_future(chunks.get())
                await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    if chunks.empty():
                        # The producer ended without its last chunk: its error ends the
                        # response (cut short, so the client sees it), never a hang.
                        await producer
                        return
                    continue
                if (chunk := getter.result()) is None:
                    break
                yield chunk
            await producer
        finally:
            producer.cancel()

    return body()
