"""Rates and p95 from two real scrapes of a real service's /metrics."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import ServerProcess
from docx_helpers import make_docx
from gendoc_operator import exposition
from gendoc_operator.exposition import PodRates, Scrape, fleet, parse, quantile, rates
from prometheus_client.parser import text_string_to_metric_families


def test_quantile_interpolates_like_prometheus() -> None:
    cumulative = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert quantile(0.5, cumulative) == pytest.approx(0.1)
    assert quantile(0.95, cumulative) == pytest.approx(0.75)
    assert quantile(0.95, {0.1: 0.0, float("inf"): 0.0}) is None
    assert quantile(0.99, {1.0: 10.0, float("inf"): 20.0}) == 1.0


def test_counter_reset_counts_the_new_value() -> None:
    old = Scrape(requests={"200": 100.0}, duration_count=100.0, buckets={float("inf"): 100.0})
    new = Scrape(requests={"200": 30.0}, duration_count=30.0, buckets={float("inf"): 30.0})
    r = rates(old, new, 15.0)
    assert r.arrivals == pytest.approx(2.0) and r.bucket_deltas[float("inf")] == 30.0


def test_fleet_sums_pods_and_merges_histograms() -> None:
    def pod(arr: float, q: float) -> PodRates:
        buckets = {0.5: 10.0, 1.0: 20.0, float("inf"): 20.0}
        return PodRates(arr, arr, 0.0, buckets, 10.0, 20.0, q, 1.0, 8.0)

    f = fleet([pod(2.0, 1.0), pod(3.0, 4.0)])
    assert f.pods == 2 and f.arrival_rps == 5.0 and f.queue == 5.0
    assert f.p95_seconds == pytest.approx(0.95) and f.mean_seconds == pytest.approx(0.5)


def test_rates_from_a_real_service(service: ServerProcess) -> None:
    url = service.url
    before = parse(httpx.get(f"{url}/metrics").text)
    files = {"template": ("t.docx", make_docx("{{ x }}"))}
    for _ in range(6):
        data = {"data": json.dumps({"x": 1}), "format": "docx"}
        assert httpx.post(f"{url}/v1/render", files=files, data=data).status_code == 200
    httpx.post(f"{url}/v1/render", files=files, data={"data": "{bad", "format": "docx"})
    after = parse(httpx.get(f"{url}/metrics").text)
    r = rates(before, after, 2.0)
    assert r.arrivals == pytest.approx(3.5)  # 7 answered in "2 s"
    assert r.completions == pytest.approx(3.0)
    assert r.duration_count == 7 and r.slots > 0
    f = fleet([r])
    assert f.p95_seconds is not None and 0 < f.p95_seconds < 5
    # Every name the scaler reads is one the service writes: a rename on either
    # side fails here, not silently as a fleet that never scales.
    text = httpx.get(f"{url}/metrics").text
    written = {s.name for family in text_string_to_metric_families(text) for s in family.samples}
    read = {exposition.REQUESTS, f"{exposition.DURATION}_bucket", f"{exposition.DURATION}_sum",
            f"{exposition.DURATION}_count", exposition.QUEUE, exposition.IN_FLIGHT,
            exposition.SLOTS, exposition.JOBS_BACKLOG, exposition.JOBS_OLDEST}
    assert read <= written, read - written


def test_the_job_backlog_is_the_max_over_pods_never_the_sum() -> None:
    text = ("# TYPE gendoc_jobs_backlog gauge\ngendoc_jobs_backlog 1200\n"
            "# TYPE gendoc_jobs_oldest_seconds gauge\ngendoc_jobs_oldest_seconds 42.5\n")
    scrape = parse(text)
    assert (scrape.backlog, scrape.oldest) == (1200.0, 42.5)
    assert parse("# TYPE gendoc_queue_depth gauge\ngendoc_queue_depth 3\n").backlog is None
    older = parse(text.replace("1200", "1150").replace("42.5", "44"))
    f = fleet([rates(scrape, scrape, 15.0), rates(older, older, 15.0)])
    assert (f.backlog, f.oldest_seconds) == (1200.0, 44.0)
    assert fleet([rates(Scrape(), Scrape(), 15.0)]).backlog is None
