"""Which pods count, what is set aside, and scraping over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gendoc_operator.collector import (
    Census,
    PodEndpoint,
    ScrapeMemory,
    census,
    is_ready,
    metrics_url,
    scrape,
)
from gendoc_operator.exposition import Scrape

from gendoc.procs import free_port


def pod(name: str, *, phase: str = "Running", ready: bool = True, ip: str | None = "10.1.0.7",
        deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-24T10:00:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"metadata": meta, "status": status}


def test_only_running_ready_pods_with_an_ip_are_scraped() -> None:
    seen = census([
        pod("serving"),
        pod("pending", phase="Pending", ready=False, ip=None),  # unschedulable, or starting
        pod("starting", ready=False),  # running, readiness probe not passed yet
        pod("no-ip", ip=None),
        pod("terminating", deleting=True),  # out of the endpoints already
        pod("v6", ip="fd00::7"),
    ], port=8080)
    assert [p.name for p in seen.ready] == ["serving", "v6"]
    assert seen.ready[0] == PodEndpoint("uid-serving", "serving", "http://10.1.0.7:8080/metrics")
    assert seen.ready[1].url == "http://[fd00::7]:8080/metrics"
    assert seen.not_ready == 4


def test_ready_needs_the_ready_condition_itself() -> None:
    no_conditions = pod("x")
    no_conditions["status"]["conditions"] = []
    assert not is_ready(no_conditions)
    assert is_ready(pod("x"))
    assert metrics_url("127.0.0.2", 8080) == "http://127.0.0.2:8080/metrics"


def scrape_of(requests: float, queue: float = 0.0) -> Scrape:
    return Scrape(requests={"200": requests}, buckets={0.1: requests, float("inf"): requests},
                  duration_sum=requests * 0.05, duration_count=requests, queue=queue, slots=8)


A, B = PodEndpoint("a", "a", "http://a"), PodEndpoint("b", "b", "http://b")


def test_a_pod_counts_from_its_second_scrape() -> None:
    memory = ScrapeMemory()
    first = memory.update(Census((A, B), not_ready=1), {"a": scrape_of(0), "b": scrape_of(10)}, 0.0)
    assert (first.fleet, first.measured, first.without_metrics, first.not_ready) == (None, 0, 2, 1)
    second = memory.update(Census((A, B), 0), {"a": scrape_of(30), "b": scrape_of(40, 3)}, 15.0)
    assert (second.measured, second.without_metrics, second.not_ready) == (2, 0, 0)
    assert second.fleet is not None
    assert second.fleet.arrival_rps == pytest.approx(60 / 15)
    assert second.fleet.queue == 3


def test_a_failed_scrape_sets_the_pod_aside_and_keeps_its_last_sample() -> None:
    memory = ScrapeMemory()
    memory.update(Census((A, B), 0), {"a": scrape_of(0), "b": scrape_of(0)}, 0.0)
    missed = memory.update(Census((A, B), 0), {"a": scrape_of(15), "b": None}, 15.0)
    assert (missed.measured, missed.without_metrics) == (1, 1)
    # Back: its delta spans both periods, so its rate is right.
    back = memory.update(Census((A, B), 0), {"a": scrape_of(30), "b": scrape_of(60)}, 30.0)
    assert back.measured == 2 and back.fleet is not None
    assert back.fleet.arrival_rps == pytest.approx(15 / 15 + 60 / 30)


def test_pods_that_leave_are_forgotten_and_start_afresh_when_back() -> None:
    memory = ScrapeMemory()
    memory.update(Census((A, B), 0), {"a": scrape_of(0), "b": scrape_of(0)}, 0.0)
    memory.update(Census((A,), 1), {"a": scrape_of(15)}, 15.0)  # b no longer ready
    assert set(memory.last) == {"a"}
    again = memory.update(Census((A, B), 0), {"a": scrape_of(30), "b": scrape_of(99)}, 30.0)
    assert (again.measured, again.without_metrics) == (1, 1)  # b is "just started" again


def test_no_time_passed_is_no_rate() -> None:
    memory = ScrapeMemory()
    memory.update(Census((A,), 0), {"a": scrape_of(0)}, 5.0)
    assert memory.update(Census((A,), 0), {"a": scrape_of(3)}, 5.0).without_metrics == 1


METRICS = b"""# TYPE gendoc_requests_total counter
gendoc_requests_total{route="/v1/render",code="200"} 42.0
# TYPE gendoc_queue_depth gauge
gendoc_queue_depth 3.0
# TYPE gendoc_concurrency gauge
gendoc_concurrency 8.0
"""


@pytest.fixture
def metrics_server() -> Iterator[str]:
    """A real HTTP server on loopback: /metrics answers, /broken answers 500."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/metrics"
            self.send_response(200 if ok else 500)
            self.end_headers()
            self.wfile.write(METRICS if ok else b"oops")

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_scrape_reads_every_pod_at_once_and_sets_failures_aside(metrics_server: str) -> None:
    pods = [PodEndpoint("ok", "ok", metrics_server + "/metrics"),
            PodEndpoint("err", "err", metrics_server + "/broken"),
            PodEndpoint("down", "down", f"http://127.0.0.1:{free_port()}/metrics")]

    async def run() -> dict[str, Scrape | None]:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await scrape(client, pods, timeout=2.0)

    found = asyncio.run(run())
    assert found["err"] is None and found["down"] is None
    ok = found["ok"]
    assert ok is not None
    assert (ok.requests, ok.queue, ok.slots) == ({"200": 42.0}, 3.0, 8.0)
