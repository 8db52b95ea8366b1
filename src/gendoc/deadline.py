"""One deadline type from the service's front door to the UNO call.

Inside a process a deadline is an absolute `time.monotonic()` instant; between
processes it travels as the seconds that are left, in one header
(`Gendoc-Timeout`), because two processes' monotonic clocks share no origin.
Callers may send the same header to the service to shorten its default.
RFC 6648 discourages `X-` names; `X-Request-Timeout`, the service's old name,
is still read for one release (DEPRECATED_HEADER).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

HEADER = "Gendoc-Timeout"
DEPRECATED_HEADER = "X-Request-Timeout"


class InvalidTimeout(ValueError):
    """A timeout header that is not a positive, finite number of seconds."""


@dataclass(frozen=True, slots=True)
class Deadline:
    """An absolute instant on this process's monotonic clock."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    def remaining(self) -> float:
        """Seconds left; never negative."""
        return max(self.at - time.monotonic(), 0.0)

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def within(self, seconds: float) -> Deadline:
        """The earlier of this deadline and `seconds` from now."""
        return self if self.at <= time.monotonic() + seconds else Deadline.after(seconds)

    def header_value(self) -> str:
        """What is left, for the `Gendoc-Timeout` header of the next hop."""
        return f"{self.remaining():.3f}"


def parse_timeout(value: str) -> float:
    """A header's seconds; InvalidTimeout when not a positive, finite number."""
    try:
        seconds = float(value)
    except ValueError:
        raise InvalidTimeout(f"{HEADER} must be a number of seconds, not {value[:40]!r}.") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidTimeout(f"{HEADER} must be a positive number of seconds.")
    return seconds


def from_headers(headers: Mapping[str, str], default: float) -> Deadline:
    """The deadline a request asks for (header, or the deprecated one), at most `default`.

    `headers` is a case-insensitive mapping such as Starlette's `Headers`.
    """
    raw = headers.get(HEADER)
    if raw is None:
        raw = headers.get(DEPRECATED_HEADER)
    seconds = default if raw is None else min(default, parse_timeout(raw))
    return Deadline.after(seconds)
