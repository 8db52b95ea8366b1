"""Faults on a real converter: overload, crashes, hangs, restarts, shutdown. No fixed sleeps."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from converter.converter_docs import make_docx
from converter.converter_support import (
    CONVERT,
    INVOICE,
    children,
    converter_metrics,
    docx_file,
    metric,
    pool_whole,
    ready_instances,
    restarts,
    soffice_pids,
    start_converter,
)

from gendoc.procs import GendocProcess
from gendoc.readiness import wait_until

pytestmark = pytest.mark.libreoffice

LONG = make_docx(*[f"Paragraph {i} " * 60 for i in range(80)])  # about 15 pages


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GendocProcess]:
    """Two instances and a short conversion timeout (restarts only by the faults made here)."""
    server = start_converter(tmp_path_factory.mktemp("faults"), pool_size=2, queue_size=32,
                             conversion_timeout=3, monitor_interval=0.2)
    yield server
    server.stop()


def convert(url: str, doc: bytes = b"", headers: dict[str, str] | None = None
            ) -> httpx.Response:
    return httpx.post(url + CONVERT, files=[docx_file("d.docx", doc or INVOICE.read_bytes())],
                      headers=headers, timeout=60)


def wait_full(server: GendocProcess, timeout: float = 10.0) -> None:
    wait_until(lambda: pool_whole(server, 2), timeout, interval=0.1,
               what="pool back to full size")


def no_zombies(server: GendocProcess) -> None:
    zombies = [c for c in children(server.proc.pid) if c[1] == "Z"]
    assert zombies == []


def test_queue_full_is_429_with_retry_after(tmp_path: Path) -> None:
    server = start_converter(tmp_path, pool_size=1, queue_size=1)
    try:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: convert(server.url, LONG), range(8)))
        codes = sorted(r.status_code for r in responses)
        assert set(codes) == {200, 429}, codes
        assert codes.count(200) >= 2  # the one converting and the one waiting
        for response in responses:
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
        assert metric(converter_metrics(server), "gendoc_converter_rejected_total",
                      'reason="queue_full"') == codes.count(429)
    finally:
        server.stop()


def test_kill_9_during_a_burst_loses_no_request(faulty: GendocProcess) -> None:
    wait_full(faulty)
    crashes = restarts(faulty, "crash")
    victim = soffice_pids(faulty)[0]
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(convert, faulty.url, LONG) for _ in range(12)]
        wait_until(lambda: ready_instances(faulty) == 2 and metric(
            converter_metrics(faulty), "gendoc_converter_instances", 'state="busy"') == 2, 10,
            what="both instances busy")
        os.kill(victim, signal.SIGKILL)
        codes = [f.result().status_code for f in futures]
    assert codes == [200] * 12
    started = time.monotonic()
    wait_full(faulty)
    assert time.monotonic() - started < 10
    assert restarts(faulty, "crash") == crashes + 1
    assert victim not in soffice_pids(faulty)
    no_zombies(faulty)


def test_a_crashed_idle_instance_is_replaced(faulty: GendocProcess) -> None:
    wait_full(faulty)
    crashes = restarts(faulty, "crash")
    victim = soffice_pids(faulty)[1]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: restarts(faulty, "crash") == crashes + 1, 10, what="crash noticed")
    wait_full(faulty)
    assert victim not in soffice_pids(faulty)
    assert convert(faulty.url).status_code == 200
    no_zombies(faulty)


def test_a_hung_instance_times_out_and_is_replaced(faulty: GendocProcess) -> None:
    wait_full(faulty)
    timeouts = restarts(faulty, "timeout")
    victim = soffice_pids(faulty)[0]
    os.kill(victim, signal.SIGSTOP)
    try:
        # Sequential requests go round the idle instances: one lands on the stopped one,
        # waits out the 3 s conversion timeout, and is retried on the other instance.
        durations = []
        for _ in range(3):
            started = time.monotonic()
            assert convert(faulty.url).status_code == 200
            durations.append(time.monotonic() - started)
        assert max(durations) >= 3
        assert restarts(faulty, "timeout") == timeouts + 1
        wait_full(faulty)
        assert victim not in soffice_pids(faulty)
        no_zombies(faulty)
    finally:
        if victim in soffice_pids(faulty):
            os.kill(victim, signal.SIGCONT)


def test_a_hang_past_the_callers_deadline_is_503_with_retry_after(faulty: GendocProcess) -> None:
    wait_full(faulty)
    victims = soffice_pids(faulty)
    for pid in victims:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        response = convert(faulty.url, headers={"Gendoc-Timeout": "1.5"})
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert time.monotonic() - started < 3  # never past the caller's deadline (+ slack)
    finally:
        for pid in victims:
            if pid in soffice_pids(faulty):
                os.kill(pid, signal.SIGCONT)
    wait_full(faulty)
    assert convert(faulty.url).status_code == 200


def test_instances_restart_after_max_conversions_with_clean_profiles(tmp_path: Path) -> None:
    server = start_converter(tmp_path, pool_size=2, max_conversions_per_instance=3)
    try:
        check_restarts_after_max_conversions(server, tmp_path / "work")
    finally:
        server.stop()


def check_restarts_after_max_conversions(faulty: GendocProcess, work: Path) -> None:
    wait_full(faulty)
    started = time.time()
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda _: convert(faulty.url).status_code, range(12)))
    assert codes == [200] * 12
    assert restarts(faulty, "max_conversions") >= 2
    wait_full(faulty)
    pools = list(work.glob("pool-*"))
    assert [p.name for p in pools] == [f"pool-{faulty.proc.pid}"]
    # One directory per running instance (INDEX.GENERATION): predecessors' are gone.
    names = sorted(p.name for p in pools[0].iterdir())
    assert len(names) == 3 and names[2] == "template", names
    assert [n.partition(".")[0] for n in names[:2]] == ["instance-0", "instance-1"]
    assert all(int(n.partition(".")[2]) >= 1 for n in names[:2])
    for instance in pools[0].glob("instance-*"):
        # Each successor runs on a fresh copy of the template: the only lock is the
        # running instance's own, no document lock, nothing left from conversions.
        profile = instance / "profile"
        assert profile.stat().st_ctime >= started
        assert [p.name for p in profile.rglob("*lock*")] == [".lock"]
        # Marked as started by this version: no first-start graphics render tests ran.
        assert not (profile / "user" / "GraphicsRenderTests.log").exists()
        assert not list((instance / "scratch").iterdir())
    no_zombies(faulty)


def test_shutdown_stops_every_instance_and_cleans_up(tmp_path: Path) -> None:
    server = start_converter(tmp_path, pool_size=2)
    pids = soffice_pids(server)
    assert len(pids) == 2
    assert convert(server.url).status_code == 200
    assert server.stop() in (0, -signal.SIGTERM)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert list((tmp_path / "work").iterdir()) == []
    assert "pool stopped" in server.logs()


def test_health_is_down_while_no_instance_can_serve(faulty: GendocProcess) -> None:
    wait_full(faulty)
    for pid in soffice_pids(faulty):
        os.kill(pid, signal.SIGKILL)

    def down() -> bool:
        response = httpx.get(faulty.url + "/health", timeout=5)
        body = response.json()
        return (response.status_code == 503 and body["status"] == "down"
                and body["details"]["libreoffice"]["status"] == "down")

    wait_until(down, 5, interval=0.01, what="/health reports down")
    wait_full(faulty)
    assert httpx.get(faulty.url + "/health", timeout=5).status_code == 200
    no_zombies(faulty)


def test_an_instance_above_the_memory_limit_is_replaced(tmp_path: Path) -> None:
    server = start_converter(tmp_path, pool_size=1, max_instance_rss_mb=1)
    try:
        assert [convert(server.url).status_code for _ in range(2)] == [200, 200]
        wait_until(lambda: restarts(server, "memory") >= 2, 10, what="memory restarts")
    finally:
        server.stop()


def test_an_instance_that_never_answers_fails_its_start_and_leaves_nothing(
        tmp_path: Path) -> None:
    from gendoc_converter.errors import StartFailed
    from gendoc_converter.instance import Instance

    fake = tmp_path / "soffice"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")  # starts, never listens
    fake.chmod(0o755)
    template = tmp_path / "template"
    template.mkdir()
    instance = Instance(0, 0, soffice=str(fake), template=template, root=tmp_path,
                        start_timeout=1.0, stop_timeout=5, environment=dict(os.environ))
    started = time.monotonic()
    with pytest.raises(StartFailed, match="no UNO answer"):
        instance.start()
    assert 1.0 <= time.monotonic() - started < 5
    assert not instance.alive()
    assert instance.pid is not None and not Path(f"/proc/{instance.pid}").exists()
    assert not instance.dir.exists()


def test_a_killed_converter_takes_its_instances_along(tmp_path: Path) -> None:
    """soffice runs in its own session; the kernel still kills it with the converter
    (setpriv --pdeathsig), and the next converter removes what the dead one left."""
    from gendoc_converter.profile import PIPE_DIR

    server = start_converter(tmp_path, pool_size=1)
    pids = soffice_pids(server)
    dead_pid = server.proc.pid
    os.kill(dead_pid, signal.SIGKILL)
    server.proc.wait()

    def gone(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "Z"
        except OSError:
            return True

    wait_until(lambda: all(gone(pid) for pid in pids), 10, what="instances gone")
    assert (tmp_path / "work" / f"pool-{dead_pid}").exists()
    successor = start_converter(tmp_path, pool_size=1)
    try:
        assert not (tmp_path / "work" / f"pool-{dead_pid}").exists()
        assert not list(PIPE_DIR.glob(f"OSL_PIPE_*_gendoc-converter-{dead_pid}-*"))
    finally:
        successor.stop()
