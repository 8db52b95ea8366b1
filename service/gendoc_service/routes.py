"""HTTP endpoints of the service (API v1, README.md). State lives in `app.state`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from anyio import to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import docxpkg
from .batch import render_batch
from .errors import BadRequest, FormatNotImplemented, PayloadTooLarge, UnsupportedMediaType
from .handling import (
    deadline_for,
    media_type,
    parse_json,
    rate_limit,
    read_body,
    safe_filename,
    validation_problem,
)
from .store import validate_name

T = TypeVar("T")

PDF_MEDIA_TYPE = "application/pdf"
_TEMPLATE_MEDIA_TYPES = {docxpkg.DOCX_MEDIA_TYPE, "application/octet-stream"}


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str
    version: str | None = None
    data: dict[str, Any] = {}
    format: Literal["pdf", "docx"] = "pdf"
    strict: bool = False
    filename: str | None = None


@dataclass
class RenderJob:
    name: str
    version: str | None  # None for a stateless upload
    docx: bytes
    data: dict[str, Any]
    format: str
    strict: bool
    filename: str


# -- health and metrics ----------------------------------------------------
async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = request.app.state
    checks = {"store": "ok" if state.store.readable() else "unreadable"}
    if state.converter is not None:
        checks["converter"] = "ok" if await state.converter.healthy() else "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# -- templates -------------------------------------------------------------
async def list_templates(request: Request) -> Response:
    store = request.app.state.store
    names = await to_thread.run_sync(store.names)
    items = []
    for name in names:
        meta = await to_thread.run_sync(store.describe, name)
        items.append({k: meta[k] for k in ("name", "latest", "size", "created", "updated")}
                     | {"versions": len(meta["versions"])})
    return JSONResponse({"templates": items})


async def put_template(request: Request) -> Response:
    state = request.app.state
    name = validate_name(request.path_params["name"], state.settings.max_name_length)
    if media_type(request) not in _TEMPLATE_MEDIA_TYPES | {""}:
        raise UnsupportedMediaType(
            f"Upload the .docx bytes as {docxpkg.DOCX_MEDIA_TYPE} (or application/octet-stream).",
            accepted=sorted(_TEMPLATE_MEDIA_TYPES),
        )
    data = await read_body(request, state.settings.max_template_bytes, "template")
    if not data:
        raise BadRequest("The request body is empty; send the .docx bytes.")
    info = await to_thread.run_sync(_check_template, state, data)
    version, created = await to_thread.run_sync(state.store.put, name, data, info.variables)
    body = await to_thread.run_sync(state.store.describe, name)
    return JSONResponse(
        body | {"version": version.id},
        status_code=201 if created else 200,
        headers={"Location": f"/v1/templates/{name}", "ETag": f'"{version.id}"'},
    )


def _check_template(state: Any, data: bytes) -> Any:
    docxpkg.inspect(data, state.package_limits)
    return state.renderer.inspect(data)


async def get_template(request: Request) -> Response:
    state = request.app.state
    name = request.path_params["name"]
    meta = await to_thread.run_sync(state.store.describe, name)
    if meta["variables"] is None:  # a plain file in the store: analysed when asked
        _, data = await to_thread.run_sync(state.store.get, name, meta["latest"])
        meta["variables"] = (await to_thread.run_sync(state.renderer.inspect, data)).variables
    return JSONResponse(meta)


async def get_template_content(request: Request) -> Response:
    name = request.path_params["name"]
    vid, data = await to_thread.run_sync(
        request.app.state.store.get, name, request.query_params.get("version")
    )
    return Response(
        data, media_type=docxpkg.DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.docx"', "ETag": f'"{vid}"'},
    )


async def delete_template(request: Request) -> Response:
    store = request.app.state.store
    await to_thread.run_sync(store.delete, request.path_params["name"], request.query_params.get("version"))
    return Response(status_code=204)


# -- rendering -------------------------------------------------------------
async def _job_from_json(request: Request) -> RenderJob:
    settings = request.app.state.settings
    # The body is mostly the data; allow a little for the other fields.
    raw = await read_body(request, settings.max_data_bytes + 4096, "request body")
    try:
        body = RenderRequest.model_validate(parse_json(raw, "request body"))
    except ValidationError as exc:
        raise validation_problem(exc) from None
    vid, docx = await to_thread.run_sync(request.app.state.store.get, body.template, body.version)
    return RenderJob(body.template, vid, docx, body.data, body.format, body.strict,
                     body.filename or body.template)


async def _job_from_form(request: Request) -> RenderJob:
    settings = request.app.state.settings
    # Starlette answers a field beyond max_part_size with a 400; the body limit
    # already bounds every field, and the data part's own limit is checked below (413).
    async with request.form(max_files=1, max_fields=16,
                            max_part_size=settings.max_body_bytes) as form:
        upload = form.get("template")
        if not isinstance(upload, UploadFile):
            raise BadRequest("The multipart form needs a 'template' file part with the .docx.")
        if upload.size is not None and upload.size > settings.max_template_bytes:
            raise PayloadTooLarge(
                f"The template is {upload.size} bytes; at most {settings.max_template_bytes} are allowed.",
                limit=settings.max_template_bytes,
            )
        docx = await upload.read()
        raw_data = form.get("data", "{}")
        if isinstance(raw_data, UploadFile):
            raw_data = await raw_data.read()
        if len(raw_data) > settings.max_data_bytes:
            raise PayloadTooLarge(f"The data exceeds {settings.max_data_bytes} bytes.",
                                  limit=settings.max_data_bytes)
        fields = {k: v for k, v in form.items() if k in ("format", "strict", "filename")}
    data = parse_json(raw_data, "'data' part")
    try:
        body = RenderRequest.model_validate(
            {"template": upload.filename or "document", "data": data, **fields}
        )
    except ValidationError as exc:
        raise validation_problem(exc) from None
    await to_thread.run_sync(docxpkg.inspect, docx, request.app.state.package_limits)
    name = (upload.filename or "document").rsplit(".", 1)[0]
    return RenderJob(name, None, docx, body.data, body.format, body.strict, body.filename or name)


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it if the client goes away first.

    The body has been read by now, so the next ASGI message is the disconnect.
    Cancelling frees the request's queue place at once (and its slot, when the
    work inside the slot reaches a cancellation point).
    """
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled():
            request.app.state.metrics.rejected.labels("client_disconnected").inc()
            raise ClientDisconnected from None
        raise
    finally:
        watcher.cancel()


class ClientDisconnected(Exception):
    """The client went away; nobody will read a response."""


async def _produce(state: Any, job: RenderJob, deadline: float) -> bytes:
    async with state.admission.slot(deadline):
        started = time.perf_counter()
        document = await state.render_docx(job.docx, job.data, job.strict, deadline - time.monotonic())
        state.metrics.render_seconds.observe(time.perf_counter() - started)
        if job.format == "pdf":
            started = time.perf_counter()
            document = await state.converter.to_pdf(
                document, timeout=deadline - time.monotonic(), filename=f"{job.name}.docx"
            )
            state.metrics.convert_seconds.observe(time.perf_counter() - started)
    return document


async def render(request: Request) -> Response:
    state = request.app.state
    limit_headers = rate_limit(request)
    deadline = deadline_for(request)
    kind = media_type(request)
    if kind == "application/json":
        job = await _job_from_json(request)
    elif kind == "multipart/form-data":
        job = await _job_from_form(request)
    else:
        raise UnsupportedMediaType(
            "Send application/json ({template, data, format}) or multipart/form-data "
            "(a 'template' file part and a 'data' JSON part).",
            accepted=["application/json", "multipart/form-data"],
        )
    if job.format == "pdf" and state.converter is None:
        raise FormatNotImplemented("PDF output needs a converter; none is configured.")
    try:
        document = await cancel_on_disconnect(request, _produce(state, job, deadline))
    except ClientDisconnected:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
    media = PDF_MEDIA_TYPE if job.format == "pdf" else docxpkg.DOCX_MEDIA_TYPE
    headers = {"Content-Disposition": f'attachment; filename="{safe_filename(job.filename, job.format)}"',
               **limit_headers}
    if job.version:
        headers["X-Template-Version"] = job.version
    return Response(document, media_type=media, headers=headers)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/v1/templates", list_templates, methods=["GET"]),
    Route("/v1/templates/{name}", put_template, methods=["PUT"]),
    Route("/v1/templates/{name}", get_template, methods=["GET"]),
    Route("/v1/templates/{name}", delete_template, methods=["DELETE"]),
    Route("/v1/templates/{name}/content", get_template_content, methods=["GET"]),
    Route("/v1/render", render, methods=["POST"]),
    Route("/v1/render/batch", render_batch, methods=["POST"]),
]

