"""Reading the service's Prometheus text exposition: a scrape, rates, the fleet.

Pure functions over the text a pod's /metrics answers; collector.py does the
HTTP. Counters are
turned into rates by their delta over the period (a counter that went down means
the pod restarted: its new value is the delta). p95 comes from histogram bucket
deltas, interpolated within the bucket as Prometheus' histogram_quantile does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from .scaling import FleetMetrics

RENDER_ROUTES = frozenset({"/v1/render", "/v1/render/batch"})
# The service's metric names the scaler reads (service/gendoc_service/metrics.py).
REQUESTS = "gendoc_requests_total"
DURATION = "gendoc_request_duration_seconds"
QUEUE = "gendoc_queue_depth"
IN_FLIGHT = "gendoc_requests_in_flight"
SLOTS = "gendoc_concurrency"
# Async jobs: items waiting in the fleet's one shared queue and the age of the oldest.
# Every pod reports the same fleet-wide values, so the fleet's is the max, never the sum.
JOBS_BACKLOG = "gendoc_jobs_backlog"
JOBS_OLDEST = "gendoc_jobs_oldest_seconds"


@dataclass(frozen=True)
class Scrape:
    """The parts of one pod's /metrics the scaler uses."""

    # Of the render routes: status code -> count, and le -> cumulative count.
    requests: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)
    duration_sum: float = 0.0
    duration_count: float = 0.0
    queue: float = 0.0
    inflight: float = 0.0
    slots: float = 0.0
    backlog: float | None = None  # None: the pod does not export the job queue
    oldest: float | None = None


def parse(text: str) -> Scrape:
    """The scaler's part of one /metrics answer (raises ValueError if it is not Prometheus text)."""
    requests: dict[str, float] = {}
    buckets: dict[float, float] = {}
    gauges = {QUEUE: 0.0, IN_FLIGHT: 0.0, SLOTS: 0.0}
    jobs: dict[str, float] = {}
    total_sum = total_count = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            if name in gauges:
                gauges[name] = sample.value
            elif name in (JOBS_BACKLOG, JOBS_OLDEST):
                jobs[name] = max(jobs.get(name, 0.0), sample.value)
            elif labels.get("route") not in RENDER_ROUTES:
                continue
            elif name == REQUESTS:
                requests[labels["code"]] = requests.get(labels["code"], 0.0) + sample.value
            elif name == f"{DURATION}_bucket":
                le = math.inf if labels["le"] in ("+Inf", "inf") else float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif name == f"{DURATION}_sum":
                total_sum += sample.value
            elif name == f"{DURATION}_count":
                total_count += sample.value
    return Scrape(requests, buckets, total_sum, total_count, gauges[QUEUE], gauges[IN_FLIGHT],
                  gauges[SLOTS], jobs.get(JOBS_BACKLOG), jobs.get(JOBS_OLDEST))


def _delta(new: float, old: float) -> float:
    return new if new < old else new - old  # a reset restarts the count


@dataclass(frozen=True)
class PodRates:
    arrivals: float  # per second, any status
    completions: float  # 2xx per second
    rejections: float  # 429 and 503 per second
    bucket_deltas: dict[float, float]
    duration_sum: float
    duration_count: float
    queue: float
    inflight: float
    slots: float
    backlog: float | None = None
    oldest: float | None = None


def rates(old: Scrape, new: Scrape, seconds: float) -> PodRates:
    codes = set(old.requests) | set(new.requests)
    delta = {c: _delta(new.requests.get(c, 0.0), old.requests.get(c, 0.0)) for c in codes}
    reset = new.duration_count < old.duration_count
    return PodRates(
        arrivals=sum(delta.values()) / seconds,
        completions=sum(v for c, v in delta.items() if c.startswith("2")) / seconds,
        rejections=sum(v for c, v in delta.items() if c in ("429", "503")) / seconds,
        bucket_deltas={le: (v if reset else v - old.buckets.get(le, 0.0))
                       for le, v in new.buckets.items()},
        duration_sum=new.duration_sum if reset else new.duration_sum - old.duration_sum,
        duration_count=new.duration_count if reset else new.duration_count - old.duration_count,
        queue=new.queue,
        inflight=new.inflight,
        slots=new.slots,
        backlog=new.backlog,
        oldest=new.oldest,
    )


def quantile(q: float, cumulative: dict[float, float]) -> float | None:
    """histogram_quantile over cumulative bucket counts; None without observations."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    total = cumulative[bounds[-1]]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le in bounds:
        count = cumulative[le]
        if count >= rank:
            if math.isinf(le):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return bounds[-1]


def fleet(pods: list[PodRates]) -> FleetMetrics:
    merged: dict[float, float] = {}
    for pod in pods:
        for le, v in pod.bucket_deltas.items():
            merged[le] = merged.get(le, 0.0) + v
    count = sum(p.duration_count for p in pods)
    slots = [p.slots for p in pods if p.slots]
    backlog = [p.backlog for p in pods if p.backlog is not None]
    oldest = [p.oldest for p in pods if p.oldest is not None]
    return FleetMetrics(
        pods=len(pods),
        arrival_rps=sum(p.arrivals for p in pods),
        completion_rps=sum(p.completions for p in pods),
        rejection_rps=sum(p.rejections for p in pods),
        p95_seconds=quantile(0.95, merged),
        mean_seconds=(sum(p.duration_sum for p in pods) / count) if count else None,
        queue=sum(p.queue for p in pods),
        inflight=sum(p.inflight for p in pods),
        slots_per_pod=sum(slots) / len(slots) if slots else 8.0,
        # The same fleet-wide queue seen from every pod (scraped a moment apart): max.
        backlog=max(backlog) if backlog else None,
        oldest_seconds=max(oldest) if oldest else None,
    )
