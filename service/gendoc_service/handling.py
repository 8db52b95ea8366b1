"""What the routes do with every request: bounded bodies, JSON, deadlines, rate limits, names."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from .errors import BadRequest, InvalidJson, InvalidRequest, PayloadTooLarge, TooManyRequests
from .ratelimit import client_key

# Header a caller may send to shorten its deadline below the server's default.
TIMEOUT_HEADER = "x-request-timeout"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The whole body, refusing with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The {what} is {declared} bytes; at most {limit} are allowed.", limit=limit)
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


def validation_problem(exc: ValidationError) -> InvalidRequest:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return InvalidRequest(f"The request does not match the API: {summary}.", errors=errors)


def safe_filename(name: str, extension: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit(".", 1)[0] if name.endswith((".pdf", ".docx")) else name)
    return f"{stem[:100] or 'document'}.{extension}"


def deadline_for(request: Request) -> float:
    """This request's deadline as a time.monotonic() value."""
    settings = request.app.state.settings
    timeout = settings.request_timeout
    asked = request.headers.get(TIMEOUT_HEADER)
    if asked is not None:
        try:
            timeout = min(timeout, float(asked))
        except ValueError:
            raise BadRequest(f"{TIMEOUT_HEADER} must be a number of seconds.") from None
        if timeout <= 0:
            raise BadRequest(f"{TIMEOUT_HEADER} must be positive.")
    return time.monotonic() + timeout


def rate_limit(request: Request, cost: int = 1) -> dict[str, str]:
    """Charge `cost` documents to the request's client; 429 when its bucket is short."""
    limiter = request.app.state.rate_limiter
    if limiter is None:
        return {}
    api_key = request.headers.get("x-api-key") or request.headers.get("authorization", "")[7:] or None
    address = request.client.host if request.client else None
    decision = limiter.take(client_key(api_key, address), time.monotonic(), cost)
    if not decision.allowed:
        request.app.state.metrics.rejected.labels("rate_limit").inc()
        raise TooManyRequests("This client has used its request rate; retry later.",
                              headers=decision.headers())
    return decision.headers()


