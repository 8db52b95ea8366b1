"""The Starlette application: built from settings, owning its resources through lifespan."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from . import docxpkg
from .admission import Admission
from .converter import ConverterClient
from .errors import BadRequest, MethodNotAllowed, NotFound, Problem
from .metrics import ServiceMetrics
from .middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from .ratelimit import RateLimiter
from .rendering import Renderer
from .routes import routes
from .settings import ServiceSettings
from .store import DirectoryStore
from .workers import RenderPool, WorkerLimits

log = logging.getLogger(__name__)


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return problem.response(instance=request.url.path)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc.detail)
    return problem_response(exc, request)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kinds: dict[int, type[Problem]] = {404: NotFound, 405: MethodNotAllowed, 400: BadRequest}
    kind = kinds.get(exc.status_code, BadRequest)
    problem = kind(str(exc.detail))
    problem.status = exc.status_code  # type: ignore[misc]
    return problem_response(problem, request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem("An unexpected error occurred; it has been logged."), request)


def create_app(settings: ServiceSettings | None = None) -> Starlette:
    settings = settings or ServiceSettings()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = app.state
        state.store.open()
        state.admission = Admission(settings.concurrency, settings.queue_capacity, metrics,
                                    max_wait=settings.max_queue_wait)
        state.converter = ConverterClient(settings.converter_url) if settings.converter_url else None
        pool = None
        if settings.render_workers > 0:
            pool = RenderPool(settings.render_workers, WorkerLimits(
                cache_bytes=settings.cache_bytes // 2,
                timeout=settings.render_timeout,
                memory_bytes=settings.render_memory_mb * 1024 * 1024,
                max_tasks=settings.render_max_tasks,
            ))
            await pool.start()

            async def render_docx(docx: bytes, data: dict[str, Any], strict: bool, timeout: float) -> bytes:
                return await pool.render(docx, data, strict, timeout)

            state.render_docx = render_docx
        state.render_pool = pool
        try:
            yield
        finally:
            if pool is not None:
                await pool.close()
            if state.converter is not None:
                await state.converter.aclose()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(ApiKeyMiddleware, keys=settings.accepted_api_keys()),
            Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, timeout=settings.body_timeout),
        ],
        exception_handlers={
            Problem: _on_problem,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )
    renderer = Renderer(settings.cache_bytes // 2)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.renderer = renderer
    app.state.store = DirectoryStore(
        settings.store_dir, max_name_length=settings.max_name_length, cache_bytes=settings.cache_bytes // 2
    )
    app.state.package_limits = docxpkg.PackageLimits(
        settings.max_zip_entries, settings.max_unzipped_bytes, settings.max_compression_ratio
    )

    async def render_docx(docx: bytes, data: dict[str, Any], strict: bool, timeout: float) -> bytes:
        # Without worker processes (render_workers=0): a thread, no time limit.
        return await to_thread.run_sync(functools.partial(renderer.render, docx, data, strict=strict))

    app.state.render_docx = render_docx
    app.state.rate_limiter = (
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute > 0 else None
    )
    return app
