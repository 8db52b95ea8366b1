"""Per-client rate limiting: a token bucket per API key or client address.

Pure bookkeeping with the time passed in, so it is tested without sleeping.
The table of buckets is bounded: the least recently seen clients are dropped
first (a dropped client simply starts again with a full bucket).
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int  # bucket size (burst)
    remaining: int  # whole tokens left after this request
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one token is available (0 if allowed)

    def headers(self) -> dict[str, str]:
        """RateLimit-* headers (IETF httpapi draft, the widely implemented triple)."""
        h = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }
        if not self.allowed:
            h["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return h


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, time)

    def take(self, key: str, now: float, cost: int = 1) -> Decision:
        """Charge `cost` tokens (a batch costs one per document)."""
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        missing = self.burst - tokens
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=int(tokens),
            reset=missing / self.rate if self.rate else 0.0,
            retry_after=0.0 if allowed else (min(cost, self.burst) - tokens) / self.rate,
        )


def client_key(api_key: str | None, address: str | None) -> str:
    """Keys are hashed so that no API key is kept in memory or logs in clear."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    return f"addr:{address or 'unknown'}"
