"""The service's Prometheus metrics (the operator reads them by name)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double the scrape size and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client

# Latency buckets resolve 50 ms to 30 s: a DOCX takes ~10 ms, a one-page PDF
# ~100 ms, a large document several seconds, and the operator's p95 target is
# usually between 0.3 s and 5 s, so most buckets sit there.
LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0,
)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gendoc_requests", "HTTP requests answered, by route and status code.",
            ["route", "code"], registry=r,
        )
        self.request_duration = Histogram(
            "gendoc_request_duration_seconds", "Time from request to response, by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.render_duration = Histogram(
            "gendoc_render_duration_seconds", "docxtpl render time per document.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.convert_duration = Histogram(
            "gendoc_convert_duration_seconds", "DOCX to PDF conversion time at the converter.",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge(
            "gendoc_queue_depth", "Render requests admitted and waiting for a slot.", registry=r
        )
        self.in_flight = Gauge(
            "gendoc_requests_in_flight", "Render requests being served now.", registry=r
        )
        self.queue_limit = Gauge(
            "gendoc_queue_limit", "How many requests may wait before 429.", registry=r
        )
        self.concurrency = Gauge(
            "gendoc_concurrency", "How many render requests are served at once.", registry=r
        )
        self.rejected = Counter(
            "gendoc_rejected", "Requests refused before being served, by reason.",
            ["reason"], registry=r,
        )
        self.batch_mode = Counter(
            "gendoc_batch_mode", "PDF batches and jobs by how they were converted: merged "
            "(items converted as one document, then split) or single (one conversion per item).",
            ["mode"], registry=r,
        )
        # The async jobs' queue, fleet-wide (every pod reports the same values; the
        # operator scales on them): items not yet done, and how long the oldest has waited.
        self.jobs_backlog = Gauge(
            "gendoc_jobs_backlog", "Job items waiting or being worked on, fleet-wide.",
            registry=r,
        )
        self.jobs_oldest = Gauge(
            "gendoc_jobs_oldest_seconds",
            "Age of the oldest unfinished job's items (0 when none wait), seconds.", registry=r,
        )
