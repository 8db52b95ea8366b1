"""The pool's decisions as pure functions: numbers in, a decision out (STYLE.md #2)."""

from __future__ import annotations

import math


def recycle_reason(conversions: int, max_conversions: int, rss_mb: float | None,
                   max_rss_mb: int) -> str | None:
    """Why a healthy instance should be replaced after a conversion, or None to keep it."""
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


def conversion_budget(conversion_timeout: float, remaining: float | None) -> float:
    """Time one conversion may take: the configured limit, capped by the caller's deadline."""
    return conversion_timeout if remaining is None else min(conversion_timeout, remaining)


def may_retry(attempt: int, remaining: float | None, min_seconds: float = 0.05) -> bool:
    """A conversion lost to a crash or a hang is retried once, if the caller still has time."""
    return attempt < 2 and (remaining is None or remaining > min_seconds)
