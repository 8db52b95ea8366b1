"""Table-driven tests of the pure scaling decision, including the HPA's edge cases."""

from __future__ import annotations

import pytest
from gendoc_operator.scaling import (
    Decision,
    FleetMetrics,
    History,
    Policy,
    Target,
    desired_replicas,
    learn_capacity,
)

TARGET = Target(p95_seconds=1.0, max_queue_per_pod=10, capacity_per_pod_rpm=300)
POLICY = Policy(min_replicas=1, max_replicas=10, scale_down_window_seconds=300)


def m(pods: int = 2, rpm: float = 0.0, **kw: float) -> FleetMetrics:
    done = kw.pop("done_rpm", rpm)
    return FleetMetrics(pods=pods, arrival_rps=rpm / 60, completion_rps=done / 60, **kw)


NO_HISTORY = History()


def decide(current: int, metrics: FleetMetrics | None, target: Target = TARGET,
           policy: Policy = POLICY, history: History = NO_HISTORY, now: float = 1000.0,
           missing: int = 0) -> Decision:
    return desired_replicas(current, metrics, target, policy, history, now,
                            pods_without_metrics=missing)


@pytest.mark.parametrize(
    ("name", "current", "metrics", "expected"),
    [
        ("rate rule sizes the fleet", 2, m(2, 600, p95_seconds=0.5), 3),  # 600/(300*0.8)=2.5
        ("within tolerance: no change", 10, m(10, 2300, p95_seconds=0.5), 10),  # wants 10 (9.6)
        ("scale-up bounded to 2x or +4", 1, m(1, 6000, p95_seconds=0.5), 5),
        ("clamped to max", 8, m(8, 6000, p95_seconds=0.5), 10),
        ("no metrics: hold", 3, None, 3),
        ("zero pods reporting: hold", 3, m(0), 3),
        ("spec floor: requestsPerMinute", 1, m(1, 0, p95_seconds=0.2), 1),
        ("latency violated, rate says enough: +1", 3, m(3, 600, p95_seconds=3.0), 4),
        ("queue violated, rate says enough: +1", 3, m(3, 600, p95_seconds=0.5, queue=90), 4),
    ],
)
def test_decisions(name: str, current: int, metrics: FleetMetrics | None, expected: int) -> None:
    d = decide(current, metrics)
    assert d.replicas == expected, (name, d.reason, d.rules)
    assert d.reason


def test_spec_floor_raises_the_fleet() -> None:
    target = Target(p95_seconds=1, max_queue_per_pod=10, capacity_per_pod_rpm=300,
                    requests_per_minute=1200)
    assert decide(2, m(2, 60, p95_seconds=0.1), target=target).replicas == 5


def test_below_min_is_raised_and_above_max_is_lowered() -> None:
    assert decide(0, m(0)).replicas == 1
    assert decide(12, m(12, 600, p95_seconds=0.1), history=History()).replicas == 10


def test_scale_down_waits_for_the_window() -> None:
    h = History(recommendations=((800.0, 5),))
    held = decide(5, m(5, 300, p95_seconds=0.2), history=h, now=1000.0)
    assert held.replicas == 5 and "window" in held.reason
    later = decide(5, m(5, 300, p95_seconds=0.2), history=held.history, now=1101.0)
    assert later.replicas == 2  # the 5 recommended at t=800 has left the window


def test_missing_metrics_never_cause_a_scale_down() -> None:
    old = History(recommendations=((500.0, 4),))  # the window has passed
    d = decide(4, m(2, 60, p95_seconds=0.1), history=old, missing=2)
    assert d.replicas == 4 and "pods without metrics" in d.reason
    # Within the window the window is the reason given.
    recent = History(recommendations=((900.0, 4),))
    assert "window" in decide(4, m(2, 60, p95_seconds=0.1), history=recent, missing=2).reason
    # ...but they do not block a scale-up.
    assert decide(2, m(1, 1200, p95_seconds=0.5), missing=1).replicas == 5


def test_pods_not_ready_hold_no_scale_down_but_silence_queue_and_latency() -> None:
    # Pending pods (unschedulable, or starting) get no traffic: the ready pods saw all of it.
    h = History(recommendations=((500.0, 4),))
    d = desired_replicas(4, m(2, 60, p95_seconds=0.1), TARGET, POLICY, h, 1000.0, pods_not_ready=2)
    assert d.replicas == 1, d.reason
    # While pods start, a violated queue or latency adds no further pod (the rate rule still acts).
    busy = m(3, 600, p95_seconds=3.0, queue=90)
    assert decide(3, busy).replicas == 4
    assert desired_replicas(3, busy, TARGET, POLICY, History(), 1000.0,
                            pods_not_ready=1).replicas == 3


def test_idle_fleet_goes_to_min_after_the_window() -> None:
    h = History(recommendations=((500.0, 3),))
    assert decide(3, m(3, 0), history=h, now=1000.0).replicas == 1


def test_capacity_is_learned_only_from_saturated_periods() -> None:
    assert learn_capacity(m(2, 600, done_rpm=600), None) is None  # not saturated
    saturated = m(2, 900, done_rpm=600, queue=40)
    assert learn_capacity(saturated, None) == pytest.approx(5.0)
    assert learn_capacity(saturated, 3.0) == pytest.approx(4.0)  # smoothed


def test_measured_capacity_drives_the_rate_rule_without_a_spec_value() -> None:
    target = Target(p95_seconds=1.0, max_queue_per_pod=10)
    d = decide(1, m(1, 600, done_rpm=300, queue=50, p95_seconds=5), target=target)
    assert d.rules["rate"] == 3 and d.replicas == 3  # 600 / (300 * 0.8) = 2.5
    assert d.history.capacity_rps == pytest.approx(5.0)
    # The learned capacity is remembered once the fleet is no longer saturated.
    calm = decide(3, m(3, 600, p95_seconds=0.4), target=target, history=d.history, now=1015)
    assert calm.rules["rate"] == 3 and calm.replicas == 3


def test_unknown_capacity_uses_littles_law_and_ratios() -> None:
    target = Target(p95_seconds=1.0, max_queue_per_pod=10)
    d = decide(2, m(2, 600, p95_seconds=3.0, mean_seconds=0.5, inflight=5), target=target)
    assert d.capacity_rps == pytest.approx(8 / 0.5)
    assert d.rules["latency"] == 6 and d.replicas == 6  # 2 * 3.0 / 1.0


def test_reason_explains_the_change() -> None:
    d = decide(2, m(2, 1200, p95_seconds=0.5))
    assert d.reason.startswith("scale up 2->5 by the rate rule")
    assert "1200/min" in d.reason and "capacity 300/min per pod (spec)" in d.reason


# -- the backlog rule (async jobs) --------------------------------------------------------
JOBS = Target(p95_seconds=1.0, max_queue_per_pod=10, capacity_per_pod_rpm=300,
              max_job_age_seconds=300)


@pytest.mark.parametrize(
    ("name", "current", "metrics", "expected"),
    [
        # 600 sync/min + 3000 items within the 270 s the oldest has left (667/min):
        # 1267/(300*0.8) = 5.3 -> 6 pods
        ("backlog adds its drain rate to the demand", 2,
         m(2, 600, p95_seconds=0.5, backlog=3000, oldest_seconds=30), 6),
        ("the same backlog, all of it new", 2,
         m(2, 600, p95_seconds=0.5, backlog=3000, oldest_seconds=0), 5),
        ("an empty job queue says nothing", 3, m(3, 600, p95_seconds=0.5, backlog=0), 3),
        ("a pod without the job metrics says nothing", 3, m(3, 600, p95_seconds=0.5), 3),
        # a small backlog the rate rule's headroom drains: no change
        ("a small backlog fits the headroom", 3,
         m(3, 600, p95_seconds=0.5, backlog=30, oldest_seconds=10), 3),
        ("late items: one pod more than the drain rate says", 3,
         m(3, 600, p95_seconds=0.5, backlog=30, oldest_seconds=400), 4),
        ("late items within tolerance: on target", 3,
         m(3, 600, p95_seconds=0.5, backlog=30, oldest_seconds=320), 3),
    ],
)
def test_backlog_decisions(name: str, current: int, metrics: FleetMetrics,
                           expected: int) -> None:
    d = decide(current, metrics, target=JOBS)
    assert d.replicas == expected, (name, d.reason, d.rules)


def test_backlog_keeps_an_otherwise_idle_fleet_and_says_so() -> None:
    h = History(recommendations=((500.0, 3),))
    waiting = m(3, 0, backlog=1500, oldest_seconds=60)
    d = decide(3, waiting, target=JOBS, history=h)
    assert d.rules["backlog"] == 2 and d.replicas == 2  # 1500/300 s = 300/min: 1.25 -> 2
    assert "job backlog 1500, oldest 60s" in d.reason
    assert decide(3, m(3, 0, backlog=0), target=JOBS, history=h).replicas == 1


def test_backlog_with_unknown_capacity_holds_and_adds_when_late() -> None:
    target = Target(p95_seconds=1.0, max_queue_per_pod=10, max_job_age_seconds=300)
    h = History(recommendations=((500.0, 3),))
    assert decide(3, m(3, 0, backlog=10, oldest_seconds=5), target=target,
                  history=h).replicas == 3
    assert decide(3, m(3, 0, backlog=10, oldest_seconds=900), target=target).replicas == 4


def test_a_backlog_drains_within_its_target_age() -> None:
    """Periods of 15 s: the fleet runs what the decision says (new pods serve from the
    next period), serves the synchronous load first and jobs with what is left. 6,000
    items arrive at once: every one is served within maxJobAgeSeconds (+ the pods'
    start-up, one period here), then the fleet shrinks after its window."""
    capacity, sync_rps, period = 5.0, 5.0, 15.0  # 300/min per pod, 300/min synchronous
    replicas, backlog, history, now = 2, 6000.0, History(), 0.0
    oldest: float | None = 0.0
    policy = Policy(min_replicas=1, max_replicas=20, scale_down_window_seconds=60)
    drained_at = None
    for _ in range(200):
        metrics = FleetMetrics(pods=replicas, arrival_rps=sync_rps, completion_rps=sync_rps,
                               p95_seconds=0.5, backlog=backlog,
                               oldest_seconds=oldest if backlog else None)
        d = desired_replicas(replicas, metrics, JOBS, policy, history, now)
        spare = max(0.0, replicas * capacity - sync_rps) * period
        backlog = max(0.0, backlog - spare)
        now += period
        oldest = now if backlog else None  # all arrived at t=0
        if backlog == 0 and drained_at is None:
            drained_at = now
        replicas, history = d.replicas, d.history
    assert drained_at is not None and drained_at <= JOBS.max_job_age_seconds + period
    assert replicas == 2  # back to what the synchronous load needs (300/(300*0.8) -> 2)
