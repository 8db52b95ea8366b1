"""Leader election's decisions (lease.py), without an API server."""

from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any

import pytest
from gendoc_operator.lease import Elector, Lost, Record, held, may_acquire, micro_time, released
from gendoc_operator.objects import JSON
from gendoc_operator.settings import OperatorSettings
from pydantic import ValidationError


def record(holder: str, renew: str = "t0", duration: float = 8, transitions: int = 3) -> Record:
    return Record(holder=holder, duration=duration, renew_time=renew, acquire_time="t-1",
                  transitions=transitions, resource_version="7")


def test_a_free_or_own_lease_may_be_taken_at_once() -> None:
    assert may_acquire(None, "b", seen_since=0, now=0)
    assert may_acquire(record(""), "b", seen_since=0, now=0)
    assert may_acquire(record("b"), "b", seen_since=0, now=0)


def test_anothers_lease_only_once_unchanged_for_its_duration() -> None:
    other = record("a", duration=8)
    assert not may_acquire(other, "b", seen_since=100, now=107.9)
    assert may_acquire(other, "b", seen_since=100, now=108)


def test_taking_over_counts_a_transition_renewing_does_not() -> None:
    now = micro_time(datetime.datetime(2026, 11, 28, 12, 0, 1, 500, tzinfo=datetime.UTC))
    assert now == "2026-11-28T12:00:01.000500Z"
    taken = held(record("a", transitions=3), "b", duration=8, now=now)
    assert taken == {"holderIdentity": "b", "leaseDurationSeconds": 8, "renewTime": now,
                     "acquireTime": now, "leaseTransitions": 4}
    renewed = held(record("b"), "b", duration=8, now=now)
    assert renewed == {"holderIdentity": "b", "leaseDurationSeconds": 8, "renewTime": now,
                       "acquireTime": "t-1", "leaseTransitions": 3}
    assert held(None, "b", duration=8, now=now)["leaseTransitions"] == 0


def test_a_released_lease_has_no_holder() -> None:
    spec = released(record("a", transitions=5))
    assert "holderIdentity" not in spec and spec["leaseTransitions"] == 5
    assert Record.of({"spec": spec, "metadata": {"resourceVersion": "9"}}).holder == ""


def test_the_worst_takeover_fits_in_15_seconds() -> None:
    """A leader killed right after a renewal: the standby sees that renewal at most one
    retry period later, waits the duration from then, and looks once a retry period."""
    s = OperatorSettings()
    worst = s.lease_duration_seconds + 2 * s.lease_retry_period_seconds
    assert worst <= 12  # leaves 3 s for kopf's start-up within the 15 s promised
    # the leader gives up before anybody may take over
    assert s.lease_renew_deadline_seconds < s.lease_duration_seconds


def test_inconsistent_lease_timing_is_refused() -> None:
    with pytest.raises(ValidationError, match="lease_renew_deadline"):
        OperatorSettings(lease_duration_seconds=5, lease_renew_deadline_seconds=5)


def test_a_renewal_that_hangs_ends_at_the_deadline_not_after_it() -> None:
    """The API server takes a renewal and never answers: the leader stops when the renew
    deadline (counted from its last renewal) runs out, not a whole deadline after its
    last try began. The clock is ours: the deadline ran out while the leader slept."""
    hung = threading.Event()

    class HangingKube:
        def read_lease(self, namespace: str, name: str) -> JSON:
            return {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 900,
                             "renewTime": "t0"}, "metadata": {"resourceVersion": "1"}}

        def write_lease(self, *_: Any) -> JSON:
            hung.wait(300)  # set by the test once keep() is done
            raise OSError("never answered")

    # The last renewal, then each look at the clock: 0.1 s of the deadline left.
    times = iter([0.0, 599.9, 600.1, 600.1])
    elector = Elector(HangingKube(), namespace="ns", name="lease",  # type: ignore[arg-type]
                      identity="me", duration=900, renew_deadline=600, retry_period=0.01,
                      clock=lambda: next(times))

    async def keep() -> None:
        try:
            # Not a time limit on the answer, a guard: the old code waited its try's
            # whole deadline, 600 s of asyncio's own clock.
            await asyncio.wait_for(elector.keep(), timeout=30)
        finally:
            hung.set()  # the hanging write's thread ends, so asyncio.run can

    with pytest.raises(Lost, match="not renewed for 600 s"):
        asyncio.run(keep())
