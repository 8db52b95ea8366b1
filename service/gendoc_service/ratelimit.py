"""Per-client rate limiting: a token bucket per API key or client address.

`RateLimiter` is pure bookkeeping with the time passed in, so it is tested
without sleeping. The table of buckets is bounded: the least recently seen
clients are dropped first (a dropped client simply starts again with a full
bucket). `charge` is its edge to HTTP: one request's cost, 429 when short.

The limit is advertised as in draft-ietf-httpapi-ratelimit-headers-11 (the two
Structured Fields that replaced RateLimit-Limit/-Remaining/-Reset):

    RateLimit-Policy: "client";q=<burst>;w=<seconds to refill the whole bucket>
    RateLimit: "client";r=<whole tokens left>;t=<seconds until the bucket is full>

A client that spends no more than `r` documents over the next `t` seconds is
never refused (tokens only accrue meanwhile).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request

from .errors import TooManyRequests
from .metrics import ServiceMetrics
from .middleware import presented_key

POLICY = "client"  # the one quota policy: per API key, else per client address


@dataclass
class Decision:
    allowed: bool
    limit: int  # bucket size (burst): the policy's quota
    window: int  # seconds to refill an empty bucket: the policy's window
    remaining: int  # whole tokens left after this request
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until the refused cost is available (0 if allowed)

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy and RateLimit (and Retry-After when refused)."""
        h = {
            "RateLimit-Policy": f'"{POLICY}";q={self.limit};w={self.window}',
            "RateLimit": f'"{POLICY}";r={self.remaining};t={math.ceil(self.reset)}',
        }
        if not self.allowed:
            h["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return h


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = burst
        self.max_clients = max_clients
        # key -> (tokens, time)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.window = max(1, math.ceil(burst / self.rate)) if self.rate else 1

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
            window=self.window,
            remaining=int(tokens),
            reset=missing / self.rate if self.rate else 0.0,
            retry_after=0.0 if allowed else (min(cost, self.burst) - tokens) / self.rate,
        )


def client_key(api_key: str | None, address: str | None) -> str:
    """Keys are hashed so that no API key is kept in memory or logs in clear."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    return f"addr:{address or 'unknown'}"


def charge(limiter: RateLimiter | None, metrics: ServiceMetrics, request: Request,
           cost: int = 1) -> dict[str, str]:
    """Charge `cost` documents to the request's client; 429 when its bucket is short.

    Returns the RateLimit headers for the response (none when no limit is set).
    """
    if limiter is None:
        return {}
    # The same key the API-key check reads (a non-Bearer Authorization is no key).
    api_key = presented_key(dict(request.scope["headers"])).decode("latin-1") or None
    address = request.client.host if request.client else None
    decision = limiter.take(client_key(api_key, address), time.monotonic(), cost)
    if not decision.allowed:
        metrics.rejected.labels("rate_limit").inc()
        raise TooManyRequests("This client has used its request rate; retry later.",
                              headers=decision.headers())
    return decision.headers()
