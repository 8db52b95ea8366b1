"""Failing parts under load: nothing accepted is lost (docs/security.md).

Each request either succeeds or gets a retryable 429/503 with Retry-After; a
client that retries as told gets every document; the stack recovers by itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, start_service
from converter.converter_support import (
    Load,
    converter_metrics,
    empty_temp_dirs,
    metric,
    pool_whole,
    soffice_pids,
    start_converter,
)
from docx_helpers import make_docx

from gendoc.procs import spawn_gendoc
from gendoc.readiness import wait_until

pytestmark = pytest.mark.libreoffice
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEMPLATE = make_docx("Document {{ n }} for {{ who }}",
                     "{% for i in range(40) %}line {{ i }} {% endfor %}")


@dataclass
class Outcome:
    ok: int = 0
    retries: int = 0
    refusals: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def fetch_with_retries(url: str, n: int, outcome: Outcome, deadline: float) -> None:
    """A well-behaved client: on 429/503 wait Retry-After and try again."""
    body = {"template": "letter", "data": {"n": n, "who": "x"}, "format": "pdf"}
    while time.monotonic() < deadline:
        try:
            r = httpx.post(f"{url}/v1/render", json=body, timeout=30)
        except httpx.TransportError as exc:
            outcome.failures.append(f"{n}: transport {exc!r}")
            return
        if r.status_code == 200 and r.content.startswith(b"%PDF"):
            outcome.ok += 1
            return
        if r.status_code in (429, 503) and r.headers.get("retry-after", "").isdigit():
            outcome.retries += 1
            outcome.refusals[r.status_code] = outcome.refusals.get(r.status_code, 0) + 1
            time.sleep(min(int(r.headers["retry-after"]), 3))
            continue
        outcome.failures.append(f"{n}: {r.status_code} {r.text[:200]}")
        return
    outcome.failures.append(f"{n}: gave up at the test's deadline")


def burst(url: str, count: int, during: object = None, workers: int = 8) -> Outcome:
    outcome = Outcome()
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fetch_with_retries, url, i, outcome, deadline)
                   for i in range(count)]
        if callable(during):
            during()
        for f in futures:
            f.result()
    return outcome


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess, Path]]:
    converter = start_converter(tmp_path, pool_size=2, whole=True, conversion_timeout=6)
    try:
        service = start_service(tmp_path, converter_url=converter.url)
    except BaseException:
        converter.stop()
        raise
    httpx.put(f"{service.url}/v1/templates/letter", content=TEMPLATE,
              headers={"content-type": DOCX}).raise_for_status()
    yield service, converter, tmp_path
    service.stop()
    converter.stop()


def busy(converter: ServerProcess) -> bool:
    return metric(converter_metrics(converter), "gendoc_converter_instances", 'state="busy"') > 0


def test_kill_9_of_an_instance_under_load(stack: tuple[ServerProcess, ServerProcess, Path]) -> None:
    service, converter, _ = stack
    victim = soffice_pids(converter)[0]

    def kill() -> None:
        wait_until(lambda: busy(converter), 30, interval=0.02, what="the burst at the converter")
        os.kill(victim, signal.SIGKILL)

    outcome = burst(service.url, 40, during=kill)
    assert outcome.failures == [] and outcome.ok == 40, outcome
    started = time.monotonic()
    wait_until(lambda: pool_whole(converter, 2), 10, what="pool back to full size")
    assert victim not in soffice_pids(converter)
    assert time.monotonic() - started < 10


def test_sigstop_of_an_instance_under_load(
        stack: tuple[ServerProcess, ServerProcess, Path]) -> None:
    service, converter, _ = stack
    victim = soffice_pids(converter)[0]

    def stop() -> None:
        wait_until(lambda: busy(converter), 30, interval=0.02, what="the burst at the converter")
        os.kill(victim, signal.SIGSTOP)

    try:
        outcome = burst(service.url, 30, during=stop)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
    assert outcome.failures == [] and outcome.ok == 30, outcome
    wait_until(lambda: pool_whole(converter, 2) and victim not in soffice_pids(converter), 15,
               what="hung instance replaced")


def test_converter_stopped_and_restarted(stack: tuple[ServerProcess, ServerProcess, Path]) -> None:
    service, converter, tmp = stack
    port = int(converter.url.rsplit(":", 1)[1])
    converter.stop()
    down = httpx.post(f"{service.url}/v1/render",
                      json={"template": "letter", "data": {}, "format": "pdf"})
    assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1
    assert httpx.get(f"{service.url}/readyz").status_code == 503

    outcome = Outcome()
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(fetch_with_retries, service.url, i, outcome, deadline)
                   for i in range(12)]
        wait_until(lambda: outcome.refusals.get(503, 0) >= 1, 30, what="clients refused")
        restarted = spawn_gendoc(["converter", "--port", str(port), "--pool-size", "2"], port,
                                 "/health",
                                 log=tmp / "converter-restarted.log",
                                 env={"GENDOC_CONVERTER_WORK_DIR": str(tmp / "work2")}, timeout=90)
        up_at = time.monotonic()
        wait_until(lambda: httpx.get(f"{service.url}/readyz").status_code == 200, 10,
                   what="service ready again")
        assert time.monotonic() - up_at < 10
        for f in futures:
            f.result()
    try:
        assert outcome.failures == [] and outcome.ok == 12, outcome
        assert outcome.refusals.get(503, 0) >= 1
    finally:
        restarted.stop()


def test_store_becoming_read_only(stack: tuple[ServerProcess, ServerProcess, Path]) -> None:
    service, _, tmp = stack
    store = tmp / "store"
    # chattr +i refuses writes even to root (CI runs as root): a read-only store.
    subprocess.run(["chattr", "+i", str(store), str(store / "letter")], check=True)
    try:
        put = httpx.put(f"{service.url}/v1/templates/letter", content=make_docx("new"),
                        headers={"content-type": DOCX})
        assert put.status_code == 503 and put.json()["type"].endswith("/store-unavailable")
        assert int(put.headers["retry-after"]) >= 1
        fresh = httpx.put(f"{service.url}/v1/templates/other", content=make_docx("new"),
                          headers={"content-type": DOCX})
        assert fresh.status_code == 503
        # Rendering from what is stored goes on.
        outcome = burst(service.url, 6)
        assert outcome.ok == 6 and outcome.failures == []
    finally:
        subprocess.run(["chattr", "-i", str(store), str(store / "letter")], check=True)
    again = httpx.put(f"{service.url}/v1/templates/letter", content=make_docx("new {{ n }}"),
                      headers={"content-type": DOCX})
    assert again.status_code == 201


def render(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/render", json={"template": "letter", "data": {"n": 1, "who": "x"},
                                           "format": "pdf"})


def test_instances_temp_files_removed_under_load(
        stack: tuple[ServerProcess, ServerProcess, Path]) -> None:
    """Issue 13 through the whole stack: what a real Gotenberg (or tmpreaper) does to a
    shared temp directory, done to each instance's own: LibreOffice's lu*.tmp removed.
    The converter replaces both instances and retries; the service's clients see no 4xx
    and lose no document."""
    service, converter, tmp = stack
    pool = tmp / "work" / f"pool-{converter.proc.pid}"
    old = set(soffice_pids(converter))
    with Load(service.url, render, clients=6) as load:
        load.delivered(10)
        empty_temp_dirs(list(pool.glob("instance-*")))
        made = time.monotonic()
        wait_until(lambda: pool_whole(converter, 2) and old.isdisjoint(soffice_pids(converter)),
                   10, interval=0.05, what="both instances replaced, pool whole")
        healed = time.monotonic() - made
        load.delivered(load.outcome.ok + 10)
    assert load.outcome.failures == [], load.outcome
    assert healed < 10
    text = httpx.get(f"{converter.url}/metrics").text
    assert metric(text, "gendoc_converter_failures_total", 'cause="document"') == 0
    assert metric(text, "gendoc_converter_restarts_total", 'reason="environment"') + metric(
        text, "gendoc_converter_restarts_total", 'reason="probe"') >= 2
    print(f"\nMEASURED stack, temp files removed: healed in {healed:.1f}s, {load.outcome}")
