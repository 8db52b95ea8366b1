"""Every failure the converter reports, sorted into kinds once (STYLE.md #7).

Each kind carries its HTTP status; the API turns them into Gotenberg-style
plain-text responses, with Retry-After where the caller should come back.
"""

from __future__ import annotations

from typing import ClassVar


class ConverterError(Exception):
    status: ClassVar[int] = 500

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class BadForm(ConverterError):
    """The multipart form is malformed or an option has an invalid value."""

    status = 400


class UnreadableDocument(ConverterError):
    """LibreOffice could not load the document (or it is not a document at all)."""

    status = 400


class MacroDocument(ConverterError):
    """A macro-bearing package: refused rather than converted."""

    status = 400


class QueueFull(ConverterError):
    status = 429


class DeadlineExceeded(ConverterError):
    """The caller's time ran out before (or while) its conversion ran."""

    status = 503


class Unavailable(ConverterError):
    """No instance can serve: starting, restarting, shutting down, or two instances failed
    under the same request. The converter's own trouble, never the document's: 503."""

    status = 503


class InstanceFailed(Exception):
    """An instance, not the document, failed: the pool replaces it and may retry.

    `reason` is the restart reason (metrics.RESTART_REASONS): 'crash' (the process or its
    UNO bridge is gone), 'timeout' (hung), 'environment' (its own files: a directory
    missing or read-only, an I/O error, a full file system), 'probe' (it failed the
    known-good probe document after an unclear failure).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class StartFailed(Exception):
    """An instance did not become ready within its start timeout."""
