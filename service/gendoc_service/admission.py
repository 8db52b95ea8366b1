"""Admission control: a bounded queue in front of a fixed number of render slots.

The decision (admit, queue, or refuse) is made at once from two counters, so a
refusal costs microseconds: overload is answered 429 + Retry-After instead of
growing a queue nobody will wait for. A request waits for a slot at most until
its own deadline, then gets 503 + Retry-After without using a slot. A client
that goes away cancels its waiting task, which leaves the queue at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import DeadlineExceeded, TooManyRequests, retry_after
from .metrics import ServiceMetrics


class Admission:
    def __init__(self, concurrency: int, capacity: int, metrics: ServiceMetrics) -> None:
        self.concurrency = concurrency
        self.capacity = capacity
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._inflight = 0
        self._metrics = metrics
        # Exponentially weighted mean service time, to tell clients when to retry.
        self._mean_service = 0.2
        metrics.queue_capacity.set(capacity)
        metrics.concurrency.set(concurrency)

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def inflight(self) -> int:
        return self._inflight

    def retry_after(self) -> float:
        """Seconds until the current queue has probably drained by one slot's worth."""
        backlog = self._waiting + self._inflight
        return backlog * self._mean_service / max(self.concurrency, 1)

    @asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[None]:
        """Hold one render slot; `deadline` is a time.monotonic() value."""
        if self._inflight >= self.concurrency and self._waiting >= self.capacity:
            self._metrics.rejected.labels("queue_full").inc()
            raise TooManyRequests(
                f"The render queue is full ({self.capacity} waiting); retry later.",
                headers=retry_after(self.retry_after()),
            )
        self._waiting += 1
        self._metrics.queue_depth.set(self._waiting)
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                await self._slots.acquire()
        except TimeoutError:
            self._metrics.rejected.labels("deadline").inc()
            raise DeadlineExceeded(
                "The request's deadline passed while it waited in the queue.",
                headers=retry_after(self.retry_after()),
            ) from None
        finally:
            self._waiting -= 1
            self._metrics.queue_depth.set(self._waiting)
        self._inflight += 1
        self._metrics.inflight.set(self._inflight)
        started = time.monotonic()
        try:
            yield
        finally:
            self._inflight -= 1
            self._metrics.inflight.set(self._inflight)
            self._slots.release()
            elapsed = time.monotonic() - started
            self._mean_service += 0.1 * (elapsed - self._mean_service)
