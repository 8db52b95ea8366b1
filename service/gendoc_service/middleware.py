"""Pure ASGI middleware: request ids, body size bound, per-route metrics."""

from __future__ import annotations

import asyncio
import hmac
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gendoc.logs import request_id

from .errors import PayloadTooLarge, RequestTimeout, Unauthorized
from .metrics import ServiceMetrics

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Accept a sane X-Request-ID (or make a UUID), echo it, and put it on every log line.

    A made id is a UUID so that a problem's `instance` can name the request as
    `urn:uuid:<id>`; a caller's own id is kept as sent (it ties our logs to its).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _SAFE_ID.fullmatch(given) else str(uuid.uuid4())
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


class BodyLimitMiddleware:
    """No request body beyond `limit` bytes, declared or streamed, nor slower than `timeout`.

    Routes apply their own tighter size limits; this one bounds what a multipart
    parser or any future route could be made to buffer, and how long a slow
    upload may hold a connection (408 once the body takes longer than `timeout`).
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float,
                 paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.paths = paths or {}  # routes allowed a larger body (POST /v1/jobs), by path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        limit = self.paths.get(scope["path"], self.limit)
        body_deadline = time.monotonic() + self.timeout
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # after the body, only a disconnect can come: no limit
                return await receive()
            try:
                async with asyncio.timeout(max(body_deadline - time.monotonic(), 0.001)):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body did not arrive within {self.timeout:g} s."
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(f"The request body exceeds {limit} bytes.", limit=limit)
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, bounded_receive, send)


def presented_key(headers: dict[bytes, bytes]) -> bytes:
    """The API key a request presents: X-API-Key, else an `Authorization: Bearer` token."""
    given = headers.get(b"x-api-key") or b""
    auth = headers.get(b"authorization", b"")
    if not given and auth[:7].lower() == b"bearer ":
        given = auth[7:].strip()
    return given


class ApiKeyMiddleware:
    """When keys are configured, /v1/* needs one (X-API-Key or Authorization: Bearer).

    Health and metrics stay open for probes and scrapers. Keys are compared in
    constant time and never logged.
    """

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _allowed(self, headers: dict[bytes, bytes]) -> bool:
        given = presented_key(headers)
        # Compare against every key, so timing does not tell which one is close.
        return bool(given) and sum(hmac.compare_digest(given, k) for k in self.keys) > 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not self.keys or not scope["path"].startswith("/v1/")
                or self._allowed(dict(scope["headers"]))):
            await self.app(scope, receive, send)
            return
        # Outside the exception middleware: answer here rather than raise.
        problem = Unauthorized(
            "Send a valid API key in X-API-Key or Authorization: Bearer.",
            headers={"WWW-Authenticate": 'Bearer realm="gendoc"'},
        )
        await problem.response()(scope, receive, send)


class MetricsMiddleware:
    """gendoc_requests_total{route,code} and gendoc_request_duration_seconds{route}.

    The route label is the matched route's path template, never the raw URL, so
    that template names cannot blow up the label set.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            if label != "/metrics":
                self.metrics.requests.labels(label, str(status)).inc()
                self.metrics.request_duration.labels(label).observe(time.perf_counter() - started)
