"""The converter's Prometheus metrics (names in docs/converter.md), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STATES = ("starting", "idle", "busy", "restarting", "stopping")
# Why an instance was replaced: recycled ('max_conversions', 'memory', 'failures': too many
# failed conversions in a row), or failed ('crash', 'timeout', 'environment', 'probe';
# errors.InstanceFailed says what each means).
RESTART_REASONS = ("max_conversions", "memory", "failures", "crash", "timeout", "environment",
                   "probe")
# Whose fault a failed conversion was: the document's (a 4xx) or the instance's (replaced,
# the conversion retried; never a 4xx).
CAUSES = ("document", "instance")

# From a one-page invoice (0.07 s) to the longest conversion allowed by default (30 s).
CONVERSION_BUCKETS = (0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
                      7.5, 10.0, 15.0, 20.0, 30.0)


class ConverterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.instances = Gauge(
            "gendoc_converter_instances", "LibreOffice instances by state.", ["state"],
            registry=self.registry)
        self.queue_depth = Gauge(
            "gendoc_converter_queue_depth", "Conversions waiting for a free instance.",
            registry=self.registry)
        self.queue_limit = Gauge(
            "gendoc_converter_queue_limit", "Conversions that may wait before 429.",
            registry=self.registry)
        self.restarts = Counter(
            "gendoc_converter_restarts_total", "Instances replaced, by reason.", ["reason"],
            registry=self.registry)
        self.failures = Counter(
            "gendoc_converter_failures_total",
            "Conversions that failed, by cause: the document's (4xx) or the instance's "
            "(replaced and retried).", ["cause"], registry=self.registry)
        self.conversion_duration = Histogram(
            "gendoc_converter_conversion_duration_seconds",
            "Time LibreOffice spent on one document (load, export, close).",
            buckets=CONVERSION_BUCKETS, registry=self.registry)
        self.rejected = Counter(
            "gendoc_converter_rejected_total", "Conversions refused, by reason.", ["reason"],
            registry=self.registry)
        for state in STATES:
            self.instances.labels(state)
        for reason in RESTART_REASONS:
            self.restarts.labels(reason)
        for cause in CAUSES:
            self.failures.labels(cause)
        for reason in ("queue_full", "deadline", "unavailable"):
            self.rejected.labels(reason)
