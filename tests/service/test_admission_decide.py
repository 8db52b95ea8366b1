"""The admission decision as a pure function."""

from __future__ import annotations

import pytest
from gendoc_service.admission import decide


@pytest.mark.parametrize(
    ("waiting", "inflight", "interval", "time_left", "expected"),
    [
        (0, 3, 0.1, 30, None),  # a slot is free
        (0, 4, 0.1, 30, None),  # queue: predicted 0.1 s
        (9, 4, 0.1, 30, None),  # predicted 1.0 s
        (10, 4, 0.01, 30, (429, "queue_full")),  # capacity reached
        (5, 4, 0.5, 30, (429, "queue_wait")),  # 6 * 0.5 = 3 s > 2 s
        (1, 4, 0.25, 0.3, (503, "deadline")),  # 0.5 s to wait, 0.3 s left
    ],
)
def test_decide(waiting: int, inflight: int, interval: float, time_left: float,
                expected: tuple[int, str] | None) -> None:
    refusal = decide(waiting, inflight, concurrency=4, capacity=10, drain_interval=interval,
                     max_wait=2.0, time_left=time_left)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None and (refusal.status, refusal.reason) == expected
        assert refusal.retry_after == pytest.approx((waiting + 1) * interval)


def test_a_long_but_stable_queue_is_not_refused_for_time() -> None:
    """A fixed number of clients waiting for their answers: kept up with, not overload."""
    args = dict(waiting=9, inflight=4, concurrency=4, capacity=10, drain_interval=0.5,
                max_wait=2.0, time_left=30)
    assert decide(**args, growing=False) is None
    refused = decide(**args, growing=True)
    assert refused is not None and refused.reason == "queue_wait"
    full = decide(**{**args, "waiting": 10}, growing=False)
    assert full is not None and full.reason == "queue_full"  # the count bound always holds
