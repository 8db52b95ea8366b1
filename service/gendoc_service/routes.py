"""HTTP endpoints of the service (API v1, README.md); each reaches its `Services`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from anyio import to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import docxpkg, includes, job_routes, pipeline
from .admission import deadline_for
from .batch import render_batch
from .errors import BadRequest, UnsupportedMediaType
from .payloads import media_type, read_body, render_job, safe_filename
from .ratelimit import charge
from .rendering import TemplateInfo
from .services import Services
from .store import validate_name

T = TypeVar("T")

PDF_MEDIA_TYPE = "application/pdf"
_TEMPLATE_MEDIA_TYPES = {docxpkg.DOCX_MEDIA_TYPE, "application/octet-stream"}


# -- health and metrics ----------------------------------------------------
async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = Services.of(request)
    store = await to_thread.run_sync(services.store.health)  # may be a network call
    checks = {"store": store.detail}
    ready = store.ready
    if services.converter is not None:
        checks["converter"] = "ok" if await services.converter.healthy() else "unreachable"
        ready = ready and checks["converter"] == "ok"
    # "degraded": serving, but not everything (an object store that is down leaves
    # renders of cached versions working, and every pod shares it: taking them all
    # out of the Service would only turn a partial outage into a full one).
    status = ("ok" if all(v == "ok" for v in checks.values()) else "degraded") if ready \
        else "unavailable"
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    registry = Services.of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


# -- templates -------------------------------------------------------------
async def list_templates(request: Request) -> Response:
    store = Services.of(request).store
    names = await to_thread.run_sync(store.names)
    items = []
    for name in names:
        meta = await to_thread.run_sync(store.describe, name)
        items.append({k: meta[k] for k in ("name", "latest", "size", "created", "updated")}
                     | {"versions": len(meta["versions"])})
    return JSONResponse({"templates": items})


async def put_template(request: Request) -> Response:
    services = Services.of(request)
    settings = services.settings
    name = validate_name(request.path_params["name"], settings.max_name_length)
    if media_type(request) not in _TEMPLATE_MEDIA_TYPES | {""}:
        raise UnsupportedMediaType(
            f"Upload the .docx bytes as {docxpkg.DOCX_MEDIA_TYPE} (or application/octet-stream).",
            accepted=sorted(_TEMPLATE_MEDIA_TYPES),
        )
    data = await read_body(request, settings.max_template_bytes, "template")
    if not data:
        raise BadRequest("The request body is empty; send the .docx bytes.")
    info = await to_thread.run_sync(_check_template, services, name, data)
    version, created = await to_thread.run_sync(services.store.put, name, data, info.variables)
    body = await to_thread.run_sync(services.store.describe, name)
    return JSONResponse(
        body | {"version": version.id},
        status_code=201 if created else 200,
        headers={"Location": f"/v1/templates/{name}", "ETag": f'"{version.id}"'},
    )


def _check_template(services: Services, name: str, data: bytes) -> TemplateInfo:
    docxpkg.inspect(data, services.package_limits)
    info = services.inspector.inspect(data)
    # Its sub-templates must exist, and must not include it again (this upload
    # becomes its current version), before it is stored.
    includes.resolve(services.store, services.inspector.analyse, name, data,
                     services.settings.max_include_depth)
    return info


async def get_template(request: Request) -> Response:
    services = Services.of(request)
    name = request.path_params["name"]
    meta = await to_thread.run_sync(services.store.describe, name)
    # Analysed when asked (cached by content hash): sub-templates change apart from it.
    meta |= await to_thread.run_sync(includes.variables_of, services, name, meta["latest"])
    return JSONResponse(meta)


async def get_template_content(request: Request) -> Response:
    name = request.path_params["name"]
    store = Services.of(request).store
    vid, data = await to_thread.run_sync(store.get, name, request.query_params.get("version"))
    return Response(
        data, media_type=docxpkg.DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.docx"', "ETag": f'"{vid}"'},
    )


async def delete_template(request: Request) -> Response:
    store = Services.of(request).store
    await to_thread.run_sync(store.delete, request.path_params["name"],
                             request.query_params.get("version"))
    return Response(status_code=204)


# -- rendering -------------------------------------------------------------
class ClientDisconnected(Exception):
    """The client went away; nobody will read a response."""


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
            Services.of(request).metrics.rejected.labels("client_disconnected").inc()
            raise ClientDisconnected from None
        raise
    finally:
        watcher.cancel()


async def render(request: Request) -> Response:
    services = Services.of(request)
    limit_headers = charge(services.limiter, services.metrics, request)
    deadline = deadline_for(request.headers, services.settings.request_timeout)
    job = await render_job(request, services)
    try:
        document = await cancel_on_disconnect(request, pipeline.produce(services, job, deadline))
    except ClientDisconnected:
        return Response(status_code=499)  # nginx's "client closed request"; nobody reads it
    return Response(document, media_type=_MEDIA_TYPES[job.format],
                    headers=_document_headers(job, limit_headers))


_MEDIA_TYPES = {"pdf": PDF_MEDIA_TYPE, "docx": docxpkg.DOCX_MEDIA_TYPE}


def _document_headers(job: pipeline.RenderJob, extra: dict[str, str]) -> dict[str, str]:
    name = safe_filename(job.filename, job.format)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', **extra}
    if job.version:
        headers["X-Template-Version"] = job.version
    return headers


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
    *job_routes.routes,
]
