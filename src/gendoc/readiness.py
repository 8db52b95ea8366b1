"""Waiting for things to become true, never for a fixed time (STYLE.md #6)."""

from __future__ import annotations

import time
from collections.abc import Callable


class NotReady(TimeoutError):
    """The predicate did not hold before the deadline."""


class Abort(Exception):
    """Raised by a predicate to stop waiting at once (the thing will never be ready)."""


def wait_until(
    predicate: Callable[[], object],
    timeout: float,
    *,
    interval: float = 0.05,
    what: str = "condition",
) -> object:
    """Poll `predicate` until it returns a truthy value and return that value.

    Exceptions raised by the predicate count as "not yet" (a port that refuses
    connections is the common case); the last one is chained to the timeout.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Abort:
            raise
        except Exception as exc:  # "not ready yet" is any failure
            last_exc = exc
        if time.monotonic() >= deadline:
            raise NotReady(f"{what} not true after {timeout:.1f}s") from last_exc
        time.sleep(interval)

