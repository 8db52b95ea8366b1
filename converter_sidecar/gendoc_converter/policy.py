"""The pool's decisions as pure functions: numbers in, a decision out (STYLE.md #2)."""

from __future__ import annotations

import math
import re
from typing import Literal

# LibreOffice reports a failed load or store with its ErrCode, printed as
# "0xc10(Error Area:Io Class:Write Code:16)" (comphelper/source/misc/errcode.cxx).
_ERRCODE_CLASS = re.compile(r"\bClass:(\w+)")
# Classes that say the file system refused LibreOffice something: a file or
# directory of the instance's own is missing, read-only, locked or full. A
# document cannot cause these: it is read from and written to the instance's
# private scratch directory, and nothing in it may reach another file.
INSTANCE_CLASSES = frozenset({"NotExists", "AlreadyExists", "Access", "Path", "Locking",
                              "Space", "Write", "Create"})


def blame(error: str) -> Literal["instance", "unsure"]:
    """Whose fault a failed load or store is, from LibreOffice's message alone.

    'unsure' (a format error, a refused password, a filter that gave up, no code at
    all) is settled by the probe document: if the same instance converts it, the
    document was at fault.
    """
    found = _ERRCODE_CLASS.search(error)
    return "instance" if found and found.group(1) in INSTANCE_CLASSES else "unsure"


def recycle_reason(conversions: int, max_conversions: int, rss_mb: float | None,
                   max_rss_mb: int, failures_in_a_row: int = 0,
                   max_failures: int = 0) -> str | None:
    """Why a working instance should be replaced after a conversion, or None to keep it."""
    if max_failures and failures_in_a_row >= max_failures:
        return "failures"
    if conversions >= max_conversions:
        return "max_conversions"
    if max_rss_mb and rss_mb is not None and rss_mb > max_rss_mb:
        return "memory"
    return None


def may_wait(waiting: int, queue_size: int) -> bool:
    """Whether one more request may join the queue of those waiting for an instance."""
    return waiting < queue_size


def retry_after(waiting: int, ready_instances: int, mean_seconds: float) -> int:
    """Seconds a rejected caller should wait: the time to drain the current queue, at least 1."""
    per_instance = (waiting + 1) / max(ready_instances, 1)
    return max(1, math.ceil(per_instance * mean_seconds))


def conversion_budget(conversion_timeout: float, remaining: float) -> float:
    """Time one conversion may take: the configured limit, capped by the caller's deadline."""
    return min(conversion_timeout, remaining)


def may_retry(attempt: int, remaining: float, min_seconds: float = 0.05) -> bool:
    """A conversion lost to its instance is retried once, if the caller still has time."""
    return attempt < 2 and remaining > min_seconds
