"""Every error the service reports, sorted into kinds once (RFC 9457 problem details).

Each problem has a stable `type` URI (listed with its meaning in docs/problems.md),
a status and a title; `detail` says what happened to this request and extra members
carry structured context (missing variables, the part and line of a syntax error).
Every kind registers itself by slug (`KINDS`), so a problem that crossed a process
boundary (a render worker's reply) is rebuilt by its slug (`rebuild`).
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from starlette.responses import JSONResponse

from gendoc.logs import request_id

PROBLEM_BASE = "https://gendoc.io/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# slug -> kind; filled by Problem.__init_subclass__ as each kind is defined.
KINDS: dict[str, type[Problem]] = {}


def instance_uri(rid: str) -> str | None:
    """`urn:uuid:<request id>` (RFC 9562) when the request id is a UUID.

    The service makes every request id a UUID unless the caller sent its own
    X-Request-ID, which is kept (it ties our logs to the caller's); a caller's id
    that is not a UUID has no URN form, and RFC 9457 makes `instance` optional.
    """
    try:
        return uuid.UUID(rid).urn
    except ValueError:
        return None


class Problem(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.slug in KINDS:
            raise TypeError(f"problem slug {cls.slug!r} is already {KINDS[cls.slug].__name__}")
        KINDS[cls.slug] = cls

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def response(self) -> JSONResponse:
        """The problem as this request's response; `instance` names the request."""
        return JSONResponse(self.body(instance_uri(request_id.get())), status_code=self.status,
                            headers=self.headers, media_type=PROBLEM_CONTENT_TYPE)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


KINDS[Problem.slug] = Problem


def rebuild(slug: str, detail: str, extensions: dict[str, Any]) -> Problem:
    """The problem a slug names (an unknown slug is an internal error, not a guess)."""
    return KINDS.get(slug, Problem)(detail, **extensions)


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidJson(Problem):
    status, slug, title = 400, "invalid-json", "Request body is not valid JSON"


class InvalidRequest(Problem):
    status, slug, title = 422, "invalid-request", "Request does not match the API"


class InvalidTemplateName(Problem):
    status, slug, title = 400, "invalid-template-name", "Invalid template name"


class InvalidDocx(Problem):
    status, slug, title = 422, "invalid-docx", "Not a usable .docx template"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "A valid API key is required"


class RequestTimeout(Problem):
    status, slug, title = 408, "request-timeout", "The request body arrived too slowly"


class TemplateNotFound(Problem):
    status, slug, title = 404, "template-not-found", "Template not found"


class VersionNotFound(Problem):
    status, slug, title = 404, "version-not-found", "Template version not found"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(Problem):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class TemplateReadOnly(Problem):
    status, slug, title = 409, "template-read-only", "Template is read-only"


class StoreNotShared(Problem):
    status, slug, title = 409, "store-not-shared", "Template store is not shared by the fleet"


class InvalidIdempotencyKey(Problem):
    status, slug, title = 400, "invalid-idempotency-key", "Invalid Idempotency-Key"


class IdempotencyKeyInUse(Problem):
    status, slug, title = 409, "idempotency-key-in-use", "A request with this key is running"


class IdempotencyKeyReused(Problem):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency-Key used for another request"


class IdempotencyUnavailable(Problem):
    status, slug, title = 503, "idempotency-unavailable", "Idempotency keys cannot be checked"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class TemplateSyntaxProblem(Problem):
    status, slug, title = 422, "template-syntax-error", "Template syntax error"


class UndefinedVariables(Problem):
    status, slug, title = 422, "undefined-variables", "Template uses variables the data lacks"


class TemplateRenderProblem(Problem):
    status, slug, title = 422, "template-render-error", "Template could not be rendered"


class TemplateIncludeProblem(Problem):
    status, slug, title = 422, "template-include-error", "A sub-template cannot be included"


class InvalidFormatValue(Problem):
    status, slug, title = 422, "invalid-format-value", "A locale filter cannot format a value"


class TemplateSecurityProblem(Problem):
    status, slug, title = 422, "template-security-violation", "Template tried an unsafe operation"


class RenderTimeout(Problem):
    status, slug, title = 422, "render-time-limit", "Template took too long to render"


class RenderMemoryLimit(Problem):
    status, slug, title = 422, "render-memory-limit", "Template needed too much memory"


class FormatNotImplemented(Problem):
    status, slug, title = 501, "format-not-implemented", "Output format not available"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class DeadlineExceeded(Problem):
    status, slug, title = 503, "deadline-exceeded", "Deadline exceeded"


class ConverterUnavailable(Problem):
    status, slug, title = 503, "converter-unavailable", "PDF converter unavailable"


class ConversionFailed(Problem):
    status, slug, title = 422, "conversion-failed", "The document could not be converted"


class StoreUnavailable(Problem):
    status, slug, title = 503, "store-unavailable", "Template store unavailable"


def retry_after(seconds: float) -> dict[str, str]:
    """A Retry-After header value: whole seconds, at least 1 (RFC 9110 §10.2.3)."""
    return {"Retry-After": str(max(1, round(seconds)))}


class JobNotFound(Problem):
    status, slug, title = 404, "job-not-found", "Job not found"


class JobNotReady(Problem):
    status, slug, title = 409, "job-not-ready", "The job has not produced that yet"


class QueueUnavailable(Problem):
    status, slug, title = 503, "queue-unavailable", "Job queue unavailable"
