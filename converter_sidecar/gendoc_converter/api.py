"""The HTTP API: Gotenberg 8's LibreOffice module (the subset in docs/converter.md), plus metrics.

Same paths, form fields, headers, health JSON and status codes as Gotenberg, so
either side can be swapped. Errors are plain text, as Gotenberg's are; we add
Retry-After to 429 and 503.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import PurePath

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gendoc.deadline import HEADER as DEADLINE_HEADER
from gendoc.deadline import Deadline, InvalidTimeout, parse_timeout
from gendoc.logs import request_id
from gendoc.package_limits import PackageLimits

from .errors import BadForm, ConverterError, UnreadableDocument
from .finishing import Finishing, finish
from .metrics import ConverterMetrics
from .options import (
    ConversionOptions,
    FormFields,
    parse_finishing,
    parse_options,
    refuse_file_field,
    refuse_unread,
)
from .pool import Pool
from .sanitize import sanitize_docx
from .settings import ConverterSettings

log = logging.getLogger(__name__)

TRACE_HEADER = "Gotenberg-Trace"
OUTPUT_FILENAME_HEADER = "Gotenberg-Output-Filename"
# Word processing formats only: .docx (and templates) are sanitised before
# conversion; .odt relies on the locked-down profile; plain text fetches nothing.
DOCX_SUFFIXES = (".docx", ".dotx")
SUFFIXES = (*DOCX_SUFFIXES, ".odt", ".txt")
PDF = "application/pdf"
ZIP = "application/zip"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("gendoc")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(settings: ConverterSettings, pool: Pool | None = None) -> Starlette:
    metrics = pool.metrics if pool else ConverterMetrics()
    pool = pool or Pool(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.start()
        try:
            yield
        finally:
            await pool.close()

    async def convert(request: Request) -> Response:
        started = time.monotonic()
        trace = request.headers.get(TRACE_HEADER) or str(uuid.uuid4())
        token = request_id.set(trace)
        try:
            try:
                response = await _convert(request, pool, settings)
            except ConverterError as exc:
                response = _error(exc)
            except HTTPException as exc:  # malformed multipart body
                response = PlainTextResponse(str(exc.detail), status_code=exc.status_code)
            response.headers[TRACE_HEADER] = trace
            log.info("convert %s in %.3fs", response.status_code, time.monotonic() - started)
            return response
        finally:
            request_id.reset(token)

    async def health(request: Request) -> Response:
        up = pool.healthy()
        status = "up" if up else "down"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        details = {"libreoffice": {"status": status, "timestamp": stamp}}
        body = {"status": status, "details": details}
        return JSONResponse(body, status_code=200 if up else 503)

    async def get_version(request: Request) -> Response:
        return PlainTextResponse(version())

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/forms/libreoffice/convert", convert, methods=["POST"]),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/version", get_version, methods=["GET"]),
        Route("/prometheus/metrics", prometheus, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.pool = pool
    return app


async def _convert(request: Request, pool: Pool, settings: ConverterSettings) -> Response:
    deadline = _deadline(request.headers.get(DEADLINE_HEADER), settings.request_timeout)
    files, form = await _read_form(request, settings)
    fields = FormFields(form)
    options, merge = parse_options(fields)
    finishing = parse_finishing(fields, options)
    refuse_unread(fields)
    merged = merge and len(files) > 1
    if merged and (options.pdfa or options.pdfua):
        # Merging keeps neither the PDF/A identification nor the structure tree.
        raise BadForm("merge=true cannot keep PDF/A or PDF/UA: convert the files separately")
    results: list[tuple[str, bytes]] = []
    for name, data in files:
        pdf = await _convert_one(pool, name, data, options, deadline, PackageLimits.of(settings))
        if not merged:
            pdf = await _finish(pdf, replace(finishing, title_fallback=PurePath(name).stem),
                                settings)
        results.append((_pdf_name(name), pdf))
    output = _output_name(request.headers.get(OUTPUT_FILENAME_HEADER))
    if len(results) == 1:
        return _attachment(results[0][1], PDF, f"{output}.pdf")
    if merge:
        # Gotenberg merges in the alphanumeric order of the file names.
        ordered = [pdf for _, pdf in sorted(results, key=lambda r: r[0])]
        merged_pdf = await _finish(await asyncio.to_thread(_merge, ordered),
                                   replace(finishing, title_fallback=output), settings)
        return _attachment(merged_pdf, PDF, f"{output}.pdf")
    return _attachment(_zip(results), ZIP, f"{output}.zip")


async def _finish(pdf: bytes, finishing: Finishing, settings: ConverterSettings) -> bytes:
    """Watermark, metadata, encryption (finishing.py), off the event loop."""
    if not finishing.needed:
        return pdf
    try:
        return await asyncio.to_thread(finish, pdf, finishing, settings.watermark_font)
    except Exception as exc:
        # LibreOffice's own output failed to finish: ours to answer for, not the document's.
        log.exception("PDF finishing failed")
        raise ConverterError(f"PDF finishing failed: {type(exc).__name__}: {exc}") from None


async def _convert_one(pool: Pool, name: str, data: bytes, options: ConversionOptions,
                       deadline: Deadline, limits: PackageLimits) -> bytes:
    suffix = PurePath(name).suffix.lower()
    if not data:
        # LibreOffice turns an empty file into an empty PDF; an empty upload is a mistake.
        raise UnreadableDocument(f"File '{name}' is empty")
    if suffix in DOCX_SUFFIXES:
        data, report = sanitize_docx(data, limits)
        if report.changed:
            log.warning("%s: neutralised external references: %s", name,
                        "; ".join(report.relationships + report.fields)[:1000])
    return await pool.convert(data, suffix, options, deadline)


def _deadline(header: str | None, limit: float) -> Deadline:
    """The caller's deadline (`Gendoc-Timeout`: seconds left), at most our own request limit.

    Gotenberg 8 has no per-request deadline to honour: its only one is the server-wide
    `--api-timeout` (30 s), a context.WithTimeout on each request (8.34.0,
    pkg/modules/api/context.go, newContext); `request_timeout` plays that role here.
    """
    if header is None:
        return Deadline.after(limit)
    try:
        seconds = parse_timeout(header)
    except InvalidTimeout as exc:
        if _spent(header):
            # The previous hop's deadline has passed (it sends what is left, "0.000"):
            # no time for a conversion, which is a 503, not a malformed request.
            return Deadline.after(0)
        raise BadForm(str(exc)) from None
    return Deadline.after(min(seconds, limit))


def _spent(header: str) -> bool:
    try:
        return float(header) <= 0
    except ValueError:
        return False


async def _read_form(request: Request, settings: ConverterSettings
                     ) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadForm("The request must be multipart/form-data")
    limit = settings.max_upload_mb * 1024 * 1024
    form = await request.form(max_files=settings.max_files, max_fields=100)
    try:
        files: list[tuple[str, bytes]] = []
        fields: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                refuse_file_field(key)
                name = PurePath(value.filename or "").name
                if PurePath(name).suffix.lower() not in SUFFIXES:
                    continue  # as Gotenberg: files of other extensions are ignored
                if value.size is not None and value.size > limit:
                    raise BadForm(f"File '{name}' is larger than {settings.max_upload_mb} MiB")
                files.append((name, await value.read()))
            elif key in fields:
                # Gotenberg 8.36 reads repeated watermark*/stamp* fields as several; this
                # converter applies one of each, so a second is refused, never dropped.
                raise BadForm(f"Form field '{key}' is given more than once; this converter "
                              "reads each field once (see docs/pdf.md)")
            else:
                fields[key] = value
        if not files:
            raise BadForm("No form file found for extensions: " + ", ".join(SUFFIXES))
        return files, fields
    finally:
        await form.close()


def _pdf_name(name: str) -> str:
    return f"{PurePath(name).stem or 'document'}.pdf"


_UNSAFE = re.compile(r'[\x00-\x1f"\\/;]')


def _output_name(header: str | None) -> str:
    """Gotenberg-Output-Filename without an extension (we add it), else a UUID as Gotenberg."""
    name = _UNSAFE.sub("_", (header or "").strip())
    return name or str(uuid.uuid4())


def _attachment(body: bytes, media_type: str, filename: str) -> Response:
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\""
    if ascii_name != filename:
        disposition += f"; filename*=UTF-8''{quote(filename)}"
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})


def _zip(results: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    seen: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, pdf in results:
            count = seen.get(name, 0)
            seen[name] = count + 1
            unique = name if not count else f"{PurePath(name).stem}_{count}.pdf"
            archive.writestr(unique, pdf)
    return out.getvalue()


def _merge(pdfs: list[bytes]) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    try:
        for pdf in pdfs:
            writer.append(PdfReader(io.BytesIO(pdf)))
    except Exception as exc:
        raise UnreadableDocument(f"Cannot merge the converted PDFs: {exc}") from None
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _error(exc: ConverterError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    if exc.status >= 500 or exc.status == 429:
        log.warning("%s: %s", type(exc).__name__, exc.detail)
    else:
        log.info("%s: %s", type(exc).__name__, exc.detail)
    return PlainTextResponse(exc.detail, status_code=exc.status, headers=headers)
