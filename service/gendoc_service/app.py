"""The Starlette application: built from settings, owning its `Services` through lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from .errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
)
from .idempotency import IdempotencyMiddleware, IdempotencyPolicy
from .metrics import ServiceMetrics
from .middleware import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    MetricsMiddleware,
    RequestIdMiddleware,
)
from .routes import routes
from .services import STATE_KEY, Services
from .settings import ServiceSettings
from .ui import routes as playground_routes

log = logging.getLogger(__name__)

# Starlette's own refusals (routing, form parsing), as our problem kinds.
_HTTP_KINDS: dict[int, type[Problem]] = {
    400: BadRequest, 404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc.detail)
    return exc.response()


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = _HTTP_KINDS.get(exc.status_code, Problem if exc.status_code >= 500 else BadRequest)
    return kind(str(exc.detail)).response()


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Problem("An unexpected error occurred; it has been logged.").response()


def _middleware(settings: ServiceSettings, metrics: ServiceMetrics) -> list[Middleware]:
    """Outermost first: the request id is set before anything can log or answer."""
    return [
        Middleware(RequestIdMiddleware),
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(ApiKeyMiddleware, keys=settings.accepted_api_keys()),
        Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes,
                   timeout=settings.body_timeout,
                   paths={"/v1/jobs": max(settings.max_job_bytes, settings.max_body_bytes)}),
        # Inside the key check (no anonymous caller reaches another's answers) and
        # the body bound (it reads the body to fingerprint it).
        Middleware(IdempotencyMiddleware, policy=IdempotencyPolicy(
            retention=settings.idempotency_retention, lease=settings.idempotency_lease(),
            max_bytes=settings.idempotency_max_bytes,
        ), store_of=lambda scope: Services.in_scope(scope).idempotency),
    ]


def create_app(settings: ServiceSettings | None = None) -> Starlette:
    settings = settings or ServiceSettings()
    # Metrics exist before start-up: the metrics middleware counts every request.
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        async with Services.build(settings, metrics).running() as services:
            yield {STATE_KEY: services}

    return Starlette(
        routes=[*routes, *playground_routes],
        lifespan=lifespan,
        middleware=_middleware(settings, metrics),
        exception_handlers={
            Problem: _on_problem,
            HTTPException: _on_http_exception,
            Exception: _on_unexpected,
        },
    )
