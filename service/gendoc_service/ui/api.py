"""The API routes the playground needs; part of service API v1 (README, "Playground").

- `POST /v1/preview`: the body of a `POST /v1/render` (JSON, or multipart with
  the template: nothing stored); the PDF it would give, as PNG page images
  (base64) and the page count.
- `GET /v1/templates/{name}/compare?from=A&to=B`: variables added and removed
  between two versions, and a unified diff of their text (`to` defaults to the
  current version).
- `GET|PUT /v1/templates/{name}/sample`: sample data (a JSON object) kept with
  the template, for whoever opens it next.
"""

from __future__ import annotations

import base64
import json
import zipfile
from dataclasses import replace
from functools import partial

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gendoc.safexml import UnsafeXml

from .. import comparison, pipeline
from ..admission import deadline_for
from ..errors import BadRequest, InvalidDocx, InvalidRequest, NotFound, UnsupportedMediaType
from ..pages import page_images
from ..payloads import media_type, parse_json, read_body, render_job
from ..ratelimit import charge
from ..services import Services


async def preview(request: Request) -> Response:
    services = Services.of(request)
    settings = services.settings
    limit_headers = charge(services.limiter, services.metrics, request)
    deadline = deadline_for(request.headers, settings.request_timeout)
    job = replace(await render_job(request, services), format="pdf")
    pdf = await pipeline.produce(services, job, deadline)
    pages = await to_thread.run_sync(partial(
        page_images, pdf, max_pages=settings.preview_max_pages, dpi=settings.preview_dpi))
    return JSONResponse({
        "template": job.name,
        "version": job.version,
        "pages": pages.count,
        "images": [base64.b64encode(png).decode() for png in pages.images],
    }, headers=limit_headers)


async def compare(request: Request) -> Response:
    services = Services.of(request)
    name = request.path_params["name"]
    older = request.query_params.get("from")
    if not older:
        raise BadRequest("Name the older version to compare with in ?from=VERSION.")
    newer = request.query_params.get("to") or None
    old_id, old_tree, old_text = await to_thread.run_sync(_version, services, name, older)
    new_id, new_tree, new_text = await to_thread.run_sync(_version, services, name, newer)
    result = comparison.compare(old_tree, new_tree, old_text, new_text,
                                old_label=old_id[:12], new_label=new_id[:12])
    return JSONResponse({"template": name, "from": old_id, "to": new_id} | result.public())


def _version(services: Services, name: str,
             version: str | None) -> tuple[str, dict[str, object], list[str]]:
    vid, data = services.store.get(name, version)
    try:
        text = comparison.document_text(data)
    except (UnsafeXml, zipfile.BadZipFile, KeyError) as exc:
        raise InvalidDocx(f"Version {vid} is not a readable Word document: {exc}.") from None
    return vid, services.inspector.inspect(data).variables, text


async def get_sample(request: Request) -> Response:
    name = request.path_params["name"]
    raw = await to_thread.run_sync(Services.of(request).store.get_sample, name)
    if raw is None:
        raise NotFound(f"No sample data is saved with template {name!r}.", template=name)
    return Response(raw, media_type="application/json")


async def put_sample(request: Request) -> Response:
    services = Services.of(request)
    name = request.path_params["name"]
    if media_type(request) != "application/json":
        raise UnsupportedMediaType("Send the sample data as application/json.",
                                   accepted=["application/json"])
    raw = await read_body(request, services.settings.max_data_bytes, "sample data")
    data = parse_json(raw, "sample data")
    if not isinstance(data, dict):
        raise InvalidRequest("Sample data is a JSON object, as the `data` of a render.")
    await to_thread.run_sync(services.store.put_sample, name, json.dumps(data).encode())
    return Response(status_code=204)


routes = [
    Route("/v1/preview", preview, methods=["POST"]),
    Route("/v1/templates/{name}/compare", compare, methods=["GET"]),
    Route("/v1/templates/{name}/sample", get_sample, methods=["GET"]),
    Route("/v1/templates/{name}/sample", put_sample, methods=["PUT"]),
]
