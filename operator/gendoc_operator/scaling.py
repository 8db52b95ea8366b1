"""The scaling decision: fleet metrics + spec + history -> desired replicas and a reason.

Pure: no clock, no I/O; the caller passes `now` and keeps the returned history.
In the spirit of the Kubernetes HPA (tolerance band, bounded scale-up steps, a
scale-down stabilisation window, pods without metrics set aside), but with
rules that understand this workload:

* rate rule: the fleet must absorb the observed arrival rate λ (and at least the
  spec's requestsPerMinute). With per-pod capacity μ, it needs λ / (μ·u) pods,
  u being the target utilisation. μ comes from the spec, else is measured: when
  pods are saturated (refusals, or as many waiting as there are slots) their
  completion rate *is* their capacity. Before either, Little's law gives an optimistic
  bound: a pod with c slots and service time W completes at most c/W per second
  (in-flight = arrival rate x latency), so it never scales up too far; the
  queue and latency rules then push, and the first saturation teaches μ.
* queue rule: at most maxQueuePerPod requests waiting per pod.
* latency rule: p95 at or under the target.
* backlog rule: job items waiting in the fleet's shared queue (async jobs) are
  served within maxJobAgeSeconds T. Jobs take the capacity synchronous renders
  leave, so B items waiting, the oldest A seconds old, add B/(T-A) to the
  demand the fleet must absorb (they must be done before the oldest is T old):
  ceil((λ + B/(T-A)) / (μ·u)) pods, T-A at least T/10. And while the oldest item is older than T the
  backlog is not draining in time: one pod more (as the queue and latency
  rules), or, with μ unknown, one pod more than now. Every pod reports the
  same fleet-wide queue, so the collector takes the max, not the sum.
When μ is known the rate rule sizes the fleet and the other two only add one
pod at a time while they are violated (the transient backlog of a step drains
through the (1-u) headroom without overshooting). When μ is unknown they size
it as the HPA would, by the ratio of observed to target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class FleetMetrics:
    """What the collector derived from the ready pods' /metrics over one period."""

    pods: int  # pods that contributed metrics
    arrival_rps: float  # render requests answered per second, any status (the demand)
    completion_rps: float  # 2xx per second
    rejection_rps: float = 0.0  # 429/503 per second
    p95_seconds: float | None = None  # None: no request finished in the period
    mean_seconds: float | None = None
    queue: float = 0.0  # waiting, summed over pods
    inflight: float = 0.0  # being served, summed over pods
    slots_per_pod: float = 8.0  # gendoc_concurrency
    backlog: float | None = None  # job items waiting fleet-wide; None: no pod reports jobs
    oldest_seconds: float | None = None  # age of the oldest waiting item


@dataclass(frozen=True)
class Target:
    p95_seconds: float = 2.0
    max_queue_per_pod: float = 10.0
    requests_per_minute: float = 0.0  # a floor: the fleet must absorb at least this
    capacity_per_pod_rpm: float | None = None  # set when known; else measured
    utilization: float = 0.8
    max_job_age_seconds: float = 300.0  # a waiting job item is served within this


@dataclass(frozen=True)
class Policy:
    min_replicas: int = 1
    max_replicas: int = 10
    tolerance: float = 0.1
    scale_down_window_seconds: float = 300.0
    # Per period, scale up to at most max(factor * current, current + pods) (HPA's defaults).
    max_scale_up_factor: float = 2.0
    max_scale_up_pods: int = 4


@dataclass(frozen=True)
class History:
    recommendations: tuple[tuple[float, int], ...] = ()  # (time, replicas) within the window
    capacity_rps: float | None = None  # learned per-pod capacity
    last_scale_time: float | None = None


@dataclass(frozen=True)
class Decision:
    replicas: int
    reason: str
    rules: dict[str, int | None] = field(default_factory=dict)
    capacity_rps: float | None = None
    history: History = field(default_factory=History)
    capacity_source: str = "unknown"  # spec, measured, littles-law or unknown
    # Why a change the rules wanted was not made now, in the HPA's condition
    # reasons: held (AbleToScale) and cut (ScalingLimited); None when neither.
    held: str | None = None  # ScaleDownStabilized or MissingPodMetrics
    limited: str | None = None  # TooManyReplicas, TooFewReplicas or ScaleUpLimit


@dataclass(frozen=True)
class _Rules:
    """What each rule says (None: no opinion) and the one that wins."""

    opinions: dict[str, int | None]
    rule: str
    raw: int
    capacity: float | None
    source: str


def _saturated(m: FleetMetrics) -> bool:
    """Whether the pods served all they could: only then are completions their capacity.

    Refusals, or at least as many requests waiting as there are slots. A short
    queue is not enough: requests arrive in bursts, so a pod at 60 % of its
    capacity already has one now and then, and its completion rate is then its
    arrival rate, not what it could do (the simulation learned half the real
    capacity that way and ran twice the pods needed).
    """
    slots = m.slots_per_pod * m.pods
    return m.rejection_rps > 0 or m.queue >= slots


def learn_capacity(m: FleetMetrics, previous: float | None) -> float | None:
    """Per-pod capacity (req/s) from a saturated period's completions, smoothed."""
    if m.pods == 0 or not _saturated(m) or m.completion_rps <= 0:
        return previous
    observed = m.completion_rps / m.pods
    return observed if previous is None else 0.5 * previous + 0.5 * observed


def _clamp(policy: Policy, n: int) -> int:
    return max(policy.min_replicas, min(policy.max_replicas, n))


def desired_replicas(
    current: int,
    metrics: FleetMetrics | None,
    target: Target,
    policy: Policy,
    history: History,
    now: float,
    *,
    pods_without_metrics: int = 0,
    pods_not_ready: int = 0,
) -> Decision:
    """The replicas the fleet should have now, and why.

    pods_without_metrics: ready pods (they receive traffic) whose metrics are
    missing: just started (no previous scrape to difference against) or the
    scrape failed. Their share of the load is unseen, so they hold any
    scale-down. pods_not_ready: pods that exist but are not ready (starting,
    Pending, unschedulable). They get no traffic, so the arrival rate seen on
    the ready pods is complete; they only make the queue and latency rules
    abstain, and never hold a scale-down (an unschedulable pod would hold it
    forever).
    """
    if metrics is None or metrics.pods == 0:
        kept = _clamp(policy, current)
        return Decision(kept, f"no pod reported metrics: holding {kept}", {},
                        history.capacity_rps, history, held="MissingPodMetrics")
    # Queue and latency judge the pods that serve now; while a change is still
    # starting pods (some are not ready or have no metrics yet) they abstain, or
    # every period of the start-up delay would add another pod for the same shortfall.
    settled = pods_without_metrics == 0 and pods_not_ready == 0
    rules = _rules(current, metrics, target, policy, history, settled=settled)
    raw = rules.raw
    # Tolerance band: ignore changes of 10% or less (never blocks a whole pod at small sizes).
    if current > 0 and abs(raw / current - 1) <= policy.tolerance:
        raw = current
    limited, recommendation, cut = _bounded(current, raw, policy)
    recent, desired = _stabilised(current, recommendation, policy, history, now)
    held = "ScaleDownStabilized" if recommendation < current and desired > recommendation \
        else None
    if desired < current and pods_without_metrics > 0:
        desired, held = current, "MissingPodMetrics"  # missing metrics never cause a scale-down
    reason = _reason(current, desired, rules, raw, limited, recommendation, metrics,
                     held == "MissingPodMetrics")
    new_history = replace(
        history,
        recommendations=recent,
        capacity_rps=rules.capacity if rules.source == "measured" else history.capacity_rps,
        last_scale_time=now if desired != current else history.last_scale_time,
    )
    return Decision(desired, reason, rules.opinions, rules.capacity, new_history, rules.source,
                    held=held, limited=cut)


def _rules(current: int, metrics: FleetMetrics, target: Target, policy: Policy,
           history: History, *, settled: bool) -> _Rules:
    """The rate, queue and latency rules' opinions, and the winner (idle: none)."""
    capacity, source = _capacity(metrics, target, history)
    demand = max(metrics.arrival_rps, target.requests_per_minute / 60.0)
    opinions: dict[str, int | None] = {}
    opinions["rate"] = (math.ceil(demand / (capacity * target.utilization) - 1e-9)
                        if capacity else None)
    queue_per_pod = metrics.queue / metrics.pods
    p95 = metrics.p95_seconds
    # As in the HPA, a metric within the tolerance band of its target is on target.
    slack = 1 + policy.tolerance
    queue_violated = settled and queue_per_pod > target.max_queue_per_pod * slack
    latency_violated = settled and p95 is not None and p95 > target.p95_seconds * slack
    if source in ("spec", "measured"):
        # μ known: the rate rule sizes; violations add one pod beyond what it says.
        nudge = current + 1 if (opinions["rate"] or 0) <= current else None
        opinions["queue"] = nudge if queue_violated else None
        opinions["latency"] = nudge if latency_violated else None
    else:
        ready = metrics.pods
        opinions["queue"] = (math.ceil(ready * queue_per_pod / target.max_queue_per_pod)
                             if queue_violated else None)
        opinions["latency"] = (math.ceil(ready * p95 / target.p95_seconds)
                               if latency_violated and p95 else None)
    opinions["backlog"] = _backlog_opinion(current, metrics, target, capacity, demand,
                                           slack=slack)
    said = {k: v for k, v in opinions.items() if v is not None}
    rule, raw = max(said.items(), key=lambda kv: kv[1]) if said else ("idle", policy.min_replicas)
    if demand == 0 and metrics.queue == 0 and metrics.inflight == 0 and not metrics.backlog:
        rule, raw = "idle", 0
    return _Rules(opinions, rule, raw, capacity, source)


def _backlog_opinion(current: int, m: FleetMetrics, target: Target, capacity: float | None,
                     demand: float, *, slack: float) -> int | None:
    """Pods that serve the synchronous demand and drain B waiting job items within T."""
    if not m.backlog:
        return None  # no jobs waiting, or no pod reports the job queue
    late = m.oldest_seconds is not None and \
        m.oldest_seconds > target.max_job_age_seconds * slack
    if not capacity:
        return current + 1 if late else max(current, 1)
    # What waits must be served before the oldest item is T old: within T minus its
    # age (at least a tenth of T). B/T alone, recomputed as B shrinks, drains
    # exponentially and never in time (the simulation test showed 360 s for T 300 s).
    left = target.max_job_age_seconds - (m.oldest_seconds or 0.0)
    drain = m.backlog / max(left, target.max_job_age_seconds / 10)
    pods = math.ceil((demand + drain) / (capacity * target.utilization) - 1e-9)
    return max(pods, current + 1) if late else pods


def _bounded(current: int, raw: int, policy: Policy) -> tuple[int, int, str | None]:
    """The step bound, then the min/max clamp: (after the step, after the clamp, what cut)."""
    ceiling = max(math.ceil(current * policy.max_scale_up_factor),
                  current + policy.max_scale_up_pods)
    limited = min(raw, ceiling)
    recommendation = _clamp(policy, limited)
    if recommendation < limited:
        return limited, recommendation, "TooManyReplicas"
    if recommendation > limited:
        return limited, recommendation, "TooFewReplicas"
    return limited, recommendation, "ScaleUpLimit" if limited < raw else None


def _stabilised(current: int, recommendation: int, policy: Policy, history: History,
                now: float) -> tuple[tuple[tuple[float, int], ...], int]:
    """Scale-down stabilisation: the highest recommendation of the last window wins.

    Returns the recommendations kept for the next round and the replicas wanted.
    """
    window_start = now - policy.scale_down_window_seconds
    # No history (a new fleet, or the operator restarted): the current size counts
    # as a recommendation made now, so nothing shrinks before a full window.
    past = history.recommendations or ((now, current),)
    recent = (*((t, r) for t, r in past if t > window_start), (now, recommendation))
    stabilised = max(r for _, r in recent) if recommendation < current else recommendation
    return recent, _clamp(policy, stabilised)


def _capacity(m: FleetMetrics, target: Target, history: History) -> tuple[float | None, str]:
    if target.capacity_per_pod_rpm:
        return target.capacity_per_pod_rpm / 60.0, "spec"
    learned = learn_capacity(m, history.capacity_rps)
    if learned:
        return learned, "measured"
    if m.mean_seconds:
        # Little's law bound: c slots, each busy W seconds per request.
        return m.slots_per_pod / m.mean_seconds, "littles-law"
    return None, "unknown"


def _reason(current: int, desired: int, rules: _Rules, raw: int, limited: int,
            recommendation: int, m: FleetMetrics, held_by_missing: bool) -> str:
    capacity, source = rules.capacity, rules.source
    facts = (f"arrivals {m.arrival_rps * 60:.0f}/min, "
             f"capacity {capacity * 60:.0f}/min per pod ({source})" if capacity else
             f"arrivals {m.arrival_rps * 60:.0f}/min, capacity unknown")
    p95 = m.p95_seconds
    facts += f", p95 {p95:.2f}s" if p95 is not None else ", p95 n/a"
    facts += f", queue {m.queue / m.pods:.1f}/pod"
    if m.backlog is not None:
        oldest = f", oldest {m.oldest_seconds:.0f}s" if m.oldest_seconds is not None else ""
        facts += f", job backlog {m.backlog:.0f}{oldest}"
    rule = rules.rule
    if desired == current:
        if recommendation < current:
            why = ("pods without metrics" if held_by_missing
                   else "waiting out the scale-down window")
            return f"holding {current} ({why}; {rule} rule says {recommendation}): {facts}"
        return f"holding {current} ({rule} rule within tolerance): {facts}"
    direction = "up" if desired > current else "down"
    bounded = f", step bounded from {raw}" if limited < raw else ""
    return f"scale {direction} {current}->{desired} by the {rule} rule{bounded}: {facts}"
