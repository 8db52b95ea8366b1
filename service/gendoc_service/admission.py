"""Admission control: a bounded queue in front of a fixed number of render slots.

The decision (admit, queue, or refuse) is made at once from counters and the
measured service time (`decide`, a pure function), so a refusal costs
microseconds: overload is answered 429 + Retry-After instead of growing a queue
nobody will wait for. The queue is bounded in count (`capacity`) and in time: a
request that would probably wait longer than `max_wait` is refused at once, as
is one whose own deadline would pass before its turn (503). A request waits for
a slot at most until its deadline, then gets 503 + Retry-After without using a
slot. A client that goes away cancels its waiting task, which leaves the queue
at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.datastructures import Headers

from gendoc import deadline as deadlines
from gendoc.deadline import Deadline

from .errors import BadRequest, DeadlineExceeded, TooManyRequests, retry_after
from .metrics import ServiceMetrics


def deadline_for(headers: Headers, default: float) -> Deadline:
    """The request's deadline: `Gendoc-Timeout` (or the deprecated `X-Request-Timeout`)
    may shorten the service's default, never lengthen it; a bad value is a 400."""
    try:
        return deadlines.from_headers(headers, default)
    except deadlines.InvalidTimeout as exc:
        raise BadRequest(str(exc)) from None


@dataclass(frozen=True)
class Refusal:
    status: int  # 429: come back later; 503: your deadline cannot be met
    reason: str  # metric label
    retry_after: float


def predicted_wait(waiting: int, drain_interval: float) -> float:
    """Seconds until a request joining behind `waiting` others gets a slot."""
    return (waiting + 1) * drain_interval


def decide(waiting: int, inflight: int, concurrency: int, capacity: int, drain_interval: float,
           max_wait: float, time_left: float, growing: bool = True) -> Refusal | None:
    """Admit (None) or refuse a new request.

    `drain_interval` is the measured time between two slots freeing while
    requests wait (1 / throughput when saturated): a new request at position
    `waiting + 1` gets a slot after about that many intervals. The time bound
    applies only while the queue is `growing` (requests arrive faster than
    slots free): a long but stable queue, such as a fixed number of clients
    each waiting for its answer, is load the service keeps up with, not overload.
    """
    if inflight < concurrency and waiting == 0:
        return None  # a slot is free now
    wait = predicted_wait(waiting, drain_interval)
    if waiting >= capacity:
        return Refusal(429, "queue_full", wait)
    if growing and wait > max_wait:
        return Refusal(429, "queue_wait", wait)
    if wait > time_left:
        return Refusal(503, "deadline", wait)
    return None


class Admission:
    def __init__(self, concurrency: int, capacity: int, metrics: ServiceMetrics,
                 max_wait: float = 2.0) -> None:
        self.concurrency = concurrency
        self.capacity = capacity
        self.max_wait = max_wait
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0
        self._inflight = 0
        self._metrics = metrics
        # Exponentially weighted time between slot releases while requests wait:
        # the queue's real drain rate, whatever the slots wait on downstream (the
        # converter's own pool). Starts at a guess of 0.2 s per slot-turn.
        self._drain_interval = 0.2 / max(concurrency, 1)
        self._last_release = time.monotonic()
        # The same for arrivals (every request asking for a slot, refused ones too).
        self._arrival_interval = 1.0
        self._last_arrival = time.monotonic()
        self._freed = asyncio.Event()  # set whenever a slot frees (background work waits on it)
        metrics.queue_limit.set(capacity)
        metrics.concurrency.set(concurrency)

    def retry_after(self) -> float:
        """Seconds until the current queue has probably drained."""
        return predicted_wait(self._waiting, self._drain_interval)

    def _admit(self, deadline: Deadline) -> None:
        """Refuse at once (429, or 503 for a deadline that cannot be met), or return."""
        now = time.monotonic()
        self._arrival_interval += 0.2 * (now - self._last_arrival - self._arrival_interval)
        self._last_arrival = now
        # Arrivals at least 15% faster than departures: the queue is growing.
        growing = self._arrival_interval * 1.15 < self._drain_interval
        refusal = decide(self._waiting, self._inflight, self.concurrency, self.capacity,
                         self._drain_interval, self.max_wait, deadline.at - now, growing)
        if refusal is None:
            return
        self._metrics.rejected.labels(refusal.reason).inc()
        wait = f"about {refusal.retry_after:.1f} s"
        if refusal.status == 429:
            raise TooManyRequests(f"The render queue is full ({self._waiting} waiting, {wait} "
                                  "to a free slot); retry later.",
                                  headers=retry_after(refusal.retry_after))
        raise DeadlineExceeded(f"The request's deadline would pass before its turn ({wait}).",
                               headers=retry_after(refusal.retry_after))

    async def _wait_for_slot(self, deadline: Deadline) -> None:
        """Queue until a slot frees, at most until `deadline` (then 503)."""
        self._waiting += 1
        self._metrics.queue_depth.set(self._waiting)
        try:
            if deadline.expired:
                raise TimeoutError
            async with asyncio.timeout(deadline.remaining()):
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

    def _release(self) -> None:
        self._inflight -= 1
        self._metrics.in_flight.set(self._inflight)
        self._slots.release()
        now = time.monotonic()
        if self._waiting:  # saturated: this gap is the drain rate, not idleness
            gap = now - self._last_release
            self._drain_interval += 0.2 * (gap - self._drain_interval)
        self._last_release = now
        self._freed.set()

    @asynccontextmanager
    async def slot(self, deadline: Deadline) -> AsyncIterator[None]:
        """Hold one render slot, waiting for it at most until `deadline`."""
        self._admit(deadline)
        await self._wait_for_slot(deadline)
        async with self._held():
            yield

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        """Count a slot just acquired as in flight until it is released."""
        self._inflight += 1
        self._metrics.in_flight.set(self._inflight)
        try:
            yield
        finally:
            self._release()

    @asynccontextmanager
    async def idle_slot(self) -> AsyncIterator[None]:
        """Hold one slot for background work (job items), taken only while no request
        waits for one: a request never queues behind background work that had not
        started, so jobs fill idle capacity and leave synchronous latency alone."""
        while self._waiting or self._slots.locked():
            self._freed.clear()
            await self._freed.wait()
        await self._slots.acquire()  # free (checked above, nothing awaited in between)
        async with self._held():
            yield
