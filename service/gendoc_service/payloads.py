"""What a request carries, read and checked: bounded bodies, JSON, API shapes, file names.

Every refusal here is a 4xx problem: 413 beyond a size limit, 400 for JSON that
does not parse or a multipart form without its parts, 415 for a media type the
route does not take, 422 for JSON that does not match the API.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Self, TypeVar

from anyio import to_thread
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from . import docxpkg, formatting, includes
from .errors import (
    BadRequest,
    InvalidJson,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from .pdfoptions import PdfOptions
from .pipeline import RenderJob
from .rendering import RenderOptions
from .services import Services
from .settings import ServiceSettings

RENDER_MEDIA_TYPES = ["application/json", "multipart/form-data"]

M = TypeVar("M", bound=BaseModel)


LocaleName = Annotated[str, AfterValidator(formatting.canonical_locale)]
TimeZoneName = Annotated[str, AfterValidator(formatting.check_timezone)]


class RenderFields(BaseModel):
    """How to render, on every route that renders (one document, a batch)."""

    model_config = ConfigDict(extra="forbid")

    strict: bool = False
    locale: LocaleName | None = None  # default: GENDOC_DEFAULT_LOCALE
    timezone: TimeZoneName | None = None  # default: GENDOC_DEFAULT_TIMEZONE
    pdf: PdfOptions | None = None  # PDF/A, PDF/UA, password, watermark, metadata

    @model_validator(mode="after")
    def _pdf_needs_pdf(self) -> Self:
        # Every route that renders has a `format` (one document, batch, job).
        if self.pdf is not None and getattr(self, "format", "pdf") != "pdf":
            raise ValueError("'pdf' options need format 'pdf'")
        return self

    def options(self, settings: ServiceSettings) -> RenderOptions:
        return RenderOptions(strict=self.strict,
                             locale=self.locale or settings.default_locale,
                             timezone=self.timezone or settings.default_timezone)


class RenderRequest(RenderFields):
    template: str
    version: str | None = None
    data: dict[str, Any] = {}
    format: Literal["pdf", "docx"] = "pdf"
    filename: str | None = None


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The whole body, refusing with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The {what} is {declared} bytes; at most {limit} are allowed.",
                              limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The {what} exceeds {limit} bytes.", limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"The {what} is not valid JSON: {exc}.") from None


def validated(model: type[M], value: Any) -> M:
    """`value` as the API shape `model`, or a 422 listing every mismatch."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidRequest(f"The request does not match the API: {summary}.",
                             errors=errors) from None


def safe_filename(name: str, extension: str) -> str:
    base = name.rsplit(".", 1)[0] if name.endswith((".pdf", ".docx")) else name
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", base)
    return f"{stem[:100] or 'document'}.{extension}"


async def render_job(request: Request, services: Services) -> RenderJob:
    """The render a POST /v1/render asks for, as JSON or as a multipart form."""
    kind = media_type(request)
    if kind == "application/json":
        return await _job_from_json(request, services)
    if kind == "multipart/form-data":
        return await _job_from_form(request, services)
    raise UnsupportedMediaType(
        "Send application/json ({template, data, format}) or multipart/form-data "
        "(a 'template' file part and a 'data' JSON part).",
        accepted=RENDER_MEDIA_TYPES,
    )


async def _job_from_json(request: Request, services: Services) -> RenderJob:
    # The body is mostly the data; allow a little for the other fields.
    raw = await read_body(request, services.settings.max_data_bytes + 4096, "request body")
    body = validated(RenderRequest, parse_json(raw, "request body"))
    vid, docx = await to_thread.run_sync(services.store.get, body.template, body.version)
    options = await includes.with_includes(services, body.template, docx,
                                           body.options(services.settings))
    return RenderJob(body.template, vid, docx, body.data, body.format, options,
                     body.filename or body.template, pdf=body.pdf)


_FORM_FIELDS = ("format", "strict", "filename", "locale", "timezone", "pdf")


async def _job_from_form(request: Request, services: Services) -> RenderJob:
    settings = services.settings
    # Starlette answers a field beyond max_part_size with a 400; the body limit
    # already bounds every field, and the data part's own limit is checked below (413).
    async with request.form(max_files=1, max_fields=16,
                            max_part_size=settings.max_body_bytes) as form:
        upload = form.get("template")
        if not isinstance(upload, UploadFile):
            raise BadRequest("The multipart form needs a 'template' file part with the .docx.")
        docx = await _template_part(upload, settings)
        raw_data = await _data_part(form, settings)
        fields: dict[str, Any] = {k: v for k, v in form.items() if k in _FORM_FIELDS}
    if isinstance(fields.get("pdf"), str):
        fields["pdf"] = parse_json(fields["pdf"], "'pdf' part")
    name = upload.filename or "document"
    body = validated(RenderRequest, {"template": name, "data": parse_json(raw_data, "'data' part"),
                                     **fields})
    await to_thread.run_sync(docxpkg.inspect, docx, services.package_limits)
    stem = name.rsplit(".", 1)[0]
    # Not stored itself, the upload includes stored templates like any other.
    options = await includes.with_includes(services, None, docx, body.options(settings))
    return RenderJob(stem, None, docx, body.data, body.format, options, body.filename or stem,
                     pdf=body.pdf)


async def _template_part(upload: UploadFile, settings: ServiceSettings) -> bytes:
    limit = settings.max_template_bytes
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(f"The template is {upload.size} bytes; at most {limit} are allowed.",
                              limit=limit)
    return await upload.read()


async def _data_part(form: FormData, settings: ServiceSettings) -> str | bytes:
    raw = form.get("data", "{}")
    data = await raw.read() if isinstance(raw, UploadFile) else raw
    if len(data) > settings.max_data_bytes:
        raise PayloadTooLarge(f"The data exceeds {settings.max_data_bytes} bytes.",
                              limit=settings.max_data_bytes)
    return data
