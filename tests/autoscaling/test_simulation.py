"""A discrete-time queueing simulation driving the real decision function period by period.

Each pod serves μ requests/s; a pod created in one period is ready in the next.
Per period (fluid model): served = min(backlog + arrivals, ready·μ·dt); the
rest waits, up to 64 per pod (the service's queue), beyond which it is refused
with 429. Latency follows an M/M/1-like curve, p95 = s / (1 - ρ) plus the wait
for the backlog, so with s = 0.2 s the 1.0 s target holds exactly while
utilisation ρ ≤ 0.8: the fewest pods that meet the target are ceil(λ / (0.8·μ)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from gendoc_operator.scaling import FleetMetrics, History, Policy, Target, desired_replicas

DT = 15.0  # seconds per period (the spec's default)
MU = 5.0  # requests/s one pod completes (300/min): a pod busy with multi-page PDFs
SERVICE = 0.2  # seconds of service per request
SLOTS = 8
QUEUE_PER_POD = 64
WINDOW = 300.0
TARGET = Target(p95_seconds=1.0, max_queue_per_pod=10)  # capacity is learned, not given
POLICY = Policy(min_replicas=1, max_replicas=20, scale_down_window_seconds=WINDOW)


@dataclass
class Step:
    period: int
    rpm: float
    ready: int
    desired: int
    p95: float
    queue: float
    rejected: float
    reason: str


def fewest(rpm: float) -> int:
    return max(1, math.ceil(rpm / 60 / (TARGET.utilization * MU) - 1e-9))


def simulate(curve: list[float]) -> list[Step]:
    replicas, ready, backlog = 1, 1, 0.0
    history = History()
    steps: list[Step] = []
    for period, rpm in enumerate(curve):
        lam = rpm / 60
        capacity = ready * MU
        offered = lam * DT + backlog
        served = min(offered, capacity * DT)
        backlog = offered - served
        rejected = max(0.0, backlog - QUEUE_PER_POD * ready)
        backlog -= rejected
        rho = lam / capacity if capacity else math.inf
        wait = backlog / capacity if capacity else math.inf
        p95 = SERVICE / (1 - min(rho, 0.95)) + wait
        mean = 0.4 * p95
        metrics = FleetMetrics(
            pods=ready, arrival_rps=lam, completion_rps=served / DT, rejection_rps=rejected / DT,
            p95_seconds=p95 if lam else None, mean_seconds=mean if lam else None,
            queue=backlog, inflight=min(lam * mean, SLOTS * ready), slots_per_pod=SLOTS,
        )
        decision = desired_replicas(replicas, metrics, TARGET, POLICY, history, now=period * DT,
                                    pods_not_ready=replicas - ready)
        history = decision.history
        steps.append(Step(period, rpm, ready, decision.replicas, p95, backlog, rejected, decision.reason))
        ready = min(replicas, decision.replicas)  # pods that existed last period are ready now
        replicas = decision.replicas
    return steps


def table(steps: list[Step]) -> str:
    lines = [f"{'t':>4} {'rpm':>6} {'ready':>5} {'desired':>7} {'p95 s':>7} {'queue':>6}  reason"]
    for s in steps:
        lines.append(f"{s.period:>4} {s.rpm:>6.0f} {s.ready:>5} {s.desired:>7} {s.p95:>7.2f} {s.queue:>6.0f}  "
                     f"{s.reason[:90]}")
    return "\n".join(lines)


def segments(curve: list[float]) -> list[tuple[int, int]]:
    """(start, end) of each constant-rate stretch."""
    bounds = [0] + [i for i in range(1, len(curve)) if curve[i] != curve[i - 1]] + [len(curve)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def direction_changes(values: list[int]) -> int:
    moves = [b - a for a, b in zip(values, values[1:], strict=False) if b != a]
    return sum(1 for a, b in zip(moves, moves[1:], strict=False) if (a > 0) != (b > 0))


CURVES = {
    "steps 60 -> 300 -> 600 -> 0": [60] * 8 + [300] * 30 + [600] * 30 + [0] * 30,
    "spike 600 -> 1800 -> 600": [600] * 10 + [1800] * 3 + [600] * 30,
    "slow ramp to 1200 and back": [60 * k for k in range(1, 21)] + [1200] * 6 + [60 * k for k in range(20, 0, -1)] + [60] * 25,
}


@pytest.mark.parametrize("name", list(CURVES))
def test_fleet_follows_the_load(name: str) -> None:
    curve = CURVES[name]
    steps = simulate(curve)
    print(f"\n{name}\n{table(steps)}")  # shown with pytest -s; the trajectory is the evidence
    desired = [s.desired for s in steps]
    for start, end in segments(curve):
        rpm = curve[start]
        needed = fewest(rpm)
        stretch = desired[start:end]
        # Never more than one change of direction inside a constant-rate stretch.
        assert direction_changes(desired[max(start - 1, 0):end]) <= 1, (name, start)
        if start and rpm > curve[start - 1] and end - start > 3:
            # A step up reaches exactly the fewest pods that meet the target within
            # three periods, and stays there (no overshoot to pay for later).
            assert needed in stretch[:4], (name, start, stretch[:4], needed)
            settled = stretch[stretch.index(needed):]
            assert all(d == needed for d in settled), (name, start, settled)
        if start and rpm < curve[start - 1] and name != "slow ramp to 1200 and back":
            # After a drop, nothing shrinks before the stabilisation window has
            # passed since the last higher recommendation (the period before the drop).
            within = int(WINDOW // DT) - 1
            assert min(stretch[:within]) >= desired[start - 1], (name, start, stretch[:within])
            if end - start > within + 2:
                assert stretch[-1] == needed, (name, start, stretch[-1], needed)


@pytest.mark.parametrize("name", list(CURVES))
def test_every_scale_down_follows_a_full_window_of_lower_need(name: str) -> None:
    curve = CURVES[name]
    desired = [s.desired for s in simulate(curve)]
    periods = int(WINDOW // DT)
    for p in range(1, len(desired)):
        if desired[p] < desired[p - 1]:
            recent = curve[max(0, p - periods + 1): p + 1]
            assert max(fewest(rpm) for rpm in recent) <= desired[p], (name, p)
            assert p >= periods - 1


def test_no_request_is_refused_on_the_step_curve() -> None:
    steps = simulate(CURVES["steps 60 -> 300 -> 600 -> 0"])
    assert sum(s.rejected for s in steps) == 0
    # Once settled after each step, the p95 target holds.
    late = [s for s in steps if s.period in (20, 50, 66)]
    assert all(s.p95 <= TARGET.p95_seconds + 1e-9 for s in late), table(late)
