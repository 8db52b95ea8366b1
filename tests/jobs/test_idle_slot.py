"""Admission.idle_slot: background work (job chunks) never takes a slot a request waits for."""

from __future__ import annotations

import asyncio

from gendoc_service.admission import Admission
from gendoc_service.metrics import ServiceMetrics

from gendoc.deadline import Deadline


def test_a_waiting_request_gets_the_freed_slot_before_background_work() -> None:
    async def run() -> list[str]:
        admission = Admission(1, 8, ServiceMetrics(), max_wait=60)
        order: list[str] = []
        release_first = asyncio.Event()

        async def request(name: str, hold: asyncio.Event | None = None) -> None:
            async with admission.slot(Deadline.after(30)):
                order.append(name)
                if hold is not None:
                    await hold.wait()

        async def background() -> None:
            async with admission.idle_slot():
                order.append("job")

        first = asyncio.ensure_future(request("first", release_first))
        await asyncio.sleep(0)  # first holds the only slot
        job = asyncio.ensure_future(background())
        second = asyncio.ensure_future(request("second"))
        await asyncio.sleep(0.01)
        assert order == ["first"]  # the job waits, and so does the second request
        release_first.set()
        await asyncio.gather(first, second, job)
        return order

    assert asyncio.run(run()) == ["first", "second", "job"]


def test_idle_slot_counts_as_in_flight() -> None:
    async def run() -> None:
        metrics = ServiceMetrics()
        admission = Admission(2, 8, metrics)
        async with admission.idle_slot():
            assert metrics.in_flight._value.get() == 1  # type: ignore[attr-defined]
        assert metrics.in_flight._value.get() == 0  # type: ignore[attr-defined]
    asyncio.run(run())
