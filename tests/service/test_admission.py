"""Admission control against a real service: one slot, one queue place.

A deliberately slow template holds the slot; the tests wait on the service's
own gauges (never a fixed sleep) before each step.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import SLOW_LOOP, make_docx

from gendoc.readiness import wait_until

# Holds the slot while each test takes its few steps, well inside the render
# limit even on a loaded machine (docx_helpers.SLOW_LOOP).
SLOW = make_docx(SLOW_LOOP)
FAST = make_docx("fast")


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_service(
        tmp_path_factory.mktemp("admission"),
        # The time bound on the queue (GENDOC_MAX_QUEUE_WAIT, tested in
        # test_admission_decide) is lifted: the slow render makes the measured
        # drain interval seconds long, and whether arrivals here count as a
        # growing queue depends on this machine's timing.
        env={"GENDOC_CONCURRENCY": "1", "GENDOC_QUEUE_CAPACITY": "1", "GENDOC_RENDER_WORKERS": "1",
             "GENDOC_RENDER_TIMEOUT": "60", "GENDOC_MAX_QUEUE_WAIT": "600"},
    )
    yield server
    server.stop()


def gauge(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


def post(server: ServerProcess, template: bytes, **kw: object) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/render", files={"template": ("t.docx", template)},
                      data={"data": json.dumps({}), "format": "docx"}, timeout=60, **kw)


def in_background(fn, *args, **kw) -> tuple[threading.Thread, list]:  # type: ignore[no-untyped-def]
    result: list = []
    t = threading.Thread(target=lambda: result.append(fn(*args, **kw)), daemon=True)
    t.start()
    return t, result


def test_full_queue_is_429_with_retry_after(one_slot: ServerProcess) -> None:
    t1, r1 = in_background(post, one_slot, SLOW)
    wait_until(lambda: gauge(one_slot, "gendoc_requests_in_flight") == 1, 10, what="slot taken")
    t2, r2 = in_background(post, one_slot, FAST)
    wait_until(lambda: gauge(one_slot, "gendoc_queue_depth") == 1, 10, what="queue place taken")
    refused = post(one_slot, FAST)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["type"].endswith("/too-many-requests")
    # Answered at once, not after the queue: the slow render and the queued one are
    # both still where they were.
    assert gauge(one_slot, "gendoc_requests_in_flight") == 1
    assert gauge(one_slot, "gendoc_queue_depth") == 1
    t1.join(60)
    t2.join(60)
    assert r1[0].status_code == 200, r1[0].text
    assert r2[0].status_code == 200, r2[0].text


@pytest.mark.parametrize("header", ["gendoc-timeout", "x-request-timeout"])
def test_deadline_passing_in_the_queue_is_503(one_slot: ServerProcess, header: str) -> None:
    t1, r1 = in_background(post, one_slot, SLOW)
    wait_until(lambda: gauge(one_slot, "gendoc_requests_in_flight") == 1, 10, what="slot taken")
    late = post(one_slot, FAST, headers={header: "0.3"})
    assert late.status_code == 503, late.text
    assert late.json()["type"].endswith("/deadline-exceeded")
    assert int(late.headers["retry-after"]) >= 1
    t1.join(60)
    assert r1[0].status_code == 200, r1[0].text


def test_a_disconnected_client_leaves_the_queue(one_slot: ServerProcess) -> None:
    t1, r1 = in_background(post, one_slot, SLOW)
    wait_until(lambda: gauge(one_slot, "gendoc_requests_in_flight") == 1, 10, what="slot taken")
    # This client gives up while it is still queued: its connection closes once the
    # service has queued it (a raw socket, so the test decides when, not a timeout).
    request = httpx.Request("POST", f"{one_slot.url}/v1/render",
                            files={"template": ("t.docx", FAST)}, data={"format": "docx"})
    body = request.read()
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    with socket.create_connection((request.url.host, request.url.port), timeout=10) as sock:
        sock.sendall(f"POST /v1/render HTTP/1.1\r\n{head}\r\n".encode() + body)
        wait_until(lambda: gauge(one_slot, "gendoc_queue_depth") == 1, 10,
                   what="the second request queued")
    wait_until(lambda: gauge(one_slot, "gendoc_queue_depth") == 0, 10, what="queue place freed")
    assert gauge(one_slot, "gendoc_requests_in_flight") == 1  # the slow one is still being served
    text = httpx.get(f"{one_slot.url}/metrics").text
    assert 'gendoc_rejected_total{reason="client_disconnected"} 1.0' in text
    t1.join(60)
    assert r1[0].status_code == 200, r1[0].text


@pytest.mark.parametrize("header", ["gendoc-timeout", "x-request-timeout"])
@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_bad_timeout_header_is_400(one_slot: ServerProcess, header: str, value: str) -> None:
    r = post(one_slot, FAST, headers={header: value})
    assert r.status_code == 400 and r.json()["type"].endswith("/bad-request")


def test_rate_limit_answers_429_with_ratelimit_headers(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    server = start_service(tmp_path_factory.mktemp("ratelimit"),
                           env={"GENDOC_RATE_LIMIT_PER_MINUTE": "6",
                                "GENDOC_RATE_LIMIT_BURST": "2"})
    try:
        first = post(server, FAST, headers={"x-api-key": "team-a"})
        assert first.status_code == 200
        assert first.headers["ratelimit-policy"] == '"client";q=2;w=20'
        assert first.headers["ratelimit"].startswith('"client";r=1;')
        assert post(server, FAST, headers={"x-api-key": "team-a"}).status_code == 200
        refused = post(server, FAST, headers={"x-api-key": "team-a"})
        assert refused.status_code == 429
        assert refused.headers["ratelimit"].startswith('"client";r=0;')
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        # Another client has its own bucket.
        assert post(server, FAST, headers={"x-api-key": "team-b"}).status_code == 200
        assert "team-a" not in server.logs()
    finally:
        server.stop()
