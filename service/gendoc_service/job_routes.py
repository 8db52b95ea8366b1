"""HTTP endpoints of async jobs: POST /v1/jobs, GET /v1/jobs/{id}[/result|/items/{index}],
DELETE /v1/jobs/{id} (README.md, "Async jobs")."""

from __future__ import annotations

from anyio import to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import includes, pipeline
from .batch import checked
from .errors import (
    PROBLEM_CONTENT_TYPE,
    InvalidRequest,
    JobNotFound,
    JobNotReady,
    UnsupportedMediaType,
)
from .jobs import MEDIA_TYPES, JobRequest, item_names, new_job_id, result_extension
from .payloads import media_type, parse_json, read_body, validated
from .queue import JobRecord
from .rendering import RenderOptions
from .results import item_key, result_key
from .services import Services


async def _job_request(request: Request, services: Services) -> JobRequest:
    settings = services.settings
    if media_type(request) != "application/json":
        raise UnsupportedMediaType("Send the job as application/json.",
                                   accepted=["application/json"])
    raw = await read_body(request, settings.max_job_bytes, "job request")
    body = checked(validated(JobRequest, parse_json(raw, "request body")),
                   settings.max_job_items, "A job")
    if body.merge and body.pdf is not None and body.pdf.password is not None:
        # A job's merged result joins the items' PDFs, which encryption would lock.
        raise InvalidRequest("merge=true cannot encrypt the merged PDF: ask for the zip.")
    return body


async def submit_job(request: Request) -> Response:
    services = Services.of(request)
    body = await _job_request(request, services)
    pipeline.converter_for(services, body.format)  # 501 now, not for every item later
    if body.webhook is not None:  # 422 now, not a webhook refused when the job is done
        services.webhooks.config.check(body.webhook.url)
    version, template = await to_thread.run_sync(services.store.get, body.template, body.version)
    # 422 now for sub-templates that cannot be included (read again when items render).
    await includes.with_includes(services, body.template, template, RenderOptions())
    record = JobRecord(id=new_job_id(), spec=body.spec(version), total=len(body.items))
    await services.jobs.queue.create(record, body.items)
    services.jobs.submitted()
    return JSONResponse(record.public(), status_code=202,
                        headers={"Location": f"/v1/jobs/{record.id}"})


async def _record(request: Request) -> JobRecord:
    job_id = request.path_params["id"]
    record = await Services.of(request).jobs.queue.get(job_id)
    if record is None:
        raise JobNotFound(f"There is no job {job_id[:64]!r} (never submitted, or deleted after "
                          "its retention time).", job=job_id[:64])
    return record


async def get_job(request: Request) -> Response:
    return JSONResponse((await _record(request)).public())


async def cancel_job(request: Request) -> Response:
    """Cancel a job not yet finished (items not started are never rendered); a finished
    job is answered as it is."""
    jobs = Services.of(request).jobs
    record = await _record(request)
    cancelled = await jobs.queue.cancel(record.id)
    if cancelled is not None:
        await jobs.announce(cancelled)
        record = cancelled
    return JSONResponse(record.public())


def _not_ready(record: JobRecord, what: str) -> JobNotReady:
    return JobNotReady(f"Job {record.id} is {record.status}; {what}.", job_status=record.status,
                       job=record.id)


def _stored(services: Services, key: str, filename: str) -> Response | None:
    """The stored result at `key`: the file itself, or a redirect to the object store."""
    results = services.jobs.results
    path = results.local_path(key)
    extension = key.rsplit(".", 1)[1]
    if path is not None:
        return FileResponse(path, media_type=MEDIA_TYPES[extension], filename=filename)
    url = results.url(key, 600)
    return RedirectResponse(url, status_code=303) if url else None


async def get_result(request: Request) -> Response:
    services = Services.of(request)
    record = await _record(request)
    if record.result is None:
        raise _not_ready(record, "its result is written once every item is done (a cancelled "
                         "job, or a merged job without any document, has none)")
    extension = result_extension(record.spec)
    stem = item_names(record.spec, 1)[0].rsplit("-", 1)[0]
    response = _stored(services, result_key(record.id, extension), f"{stem}.{extension}")
    if response is None:
        raise JobNotFound(f"The result of job {record.id} is gone.", job=record.id)
    return response


async def get_item(request: Request) -> Response:
    services = Services.of(request)
    record = await _record(request)
    raw = request.path_params["index"]
    index = int(raw) if raw.isdigit() else -1
    if not 0 <= index < record.total:
        raise JobNotFound(f"Job {record.id} has items 0 to {record.total - 1}, not {raw[:20]!r}.",
                          job=record.id)
    outcome = await services.jobs.queue.outcome(record.id, index)
    if outcome is None:
        raise _not_ready(record, f"item {index} is not done yet")
    if outcome.problem is not None:  # the item's own problem, with its own status
        return JSONResponse(outcome.problem, status_code=int(outcome.problem["status"]),
                            media_type=PROBLEM_CONTENT_TYPE)
    name = f"{item_names(record.spec, index + 1)[index]}.{outcome.extension}"
    response = _stored(services, item_key(record.id, index, outcome.extension), name)
    if response is None:
        raise JobNotFound(f"Item {index} of job {record.id} is gone.", job=record.id)
    return response


routes = [
    Route("/v1/jobs", submit_job, methods=["POST"]),
    Route("/v1/jobs/{id}", get_job, methods=["GET"]),
    Route("/v1/jobs/{id}", cancel_job, methods=["DELETE"]),
    Route("/v1/jobs/{id}/result", get_result, methods=["GET"]),
    Route("/v1/jobs/{id}/items/{index}", get_item, methods=["GET"]),
]
