"""SIGTERM: the service stops accepting and lets admitted requests finish for
GENDOC_SHUTDOWN_TIMEOUT seconds (uvicorn's graceful shutdown), then stops."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from pathlib import Path

import httpx
from conftest import ServerProcess, start_service
from docx_helpers import ENDLESS_LOOP, SLOW_LOOP, make_docx

from gendoc.readiness import wait_until

SLOW = make_docx(SLOW_LOOP)
ENDLESS = make_docx(ENDLESS_LOOP)  # only the end of the drain (or a limit) stops it


def in_flight(server: ServerProcess) -> bool:
    text = httpx.get(f"{server.url}/metrics").text
    return re.search(r"^gendoc_requests_in_flight 1\.0$", text, re.M) is not None


def render_during_sigterm(server: ServerProcess, template: bytes) -> tuple[list[object], float]:
    """Start a render, SIGTERM once it holds its slot; (its response or error, seconds to exit)."""
    outcome: list[object] = []

    def post() -> None:
        try:
            outcome.append(httpx.post(f"{server.url}/v1/render", timeout=120,
                                      files={"template": ("t.docx", template)},
                                      data={"data": json.dumps({}), "format": "docx"}))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    client = threading.Thread(target=post, daemon=True)
    client.start()
    wait_until(lambda: in_flight(server), 30, what="render admitted")
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(120)
    client.join(120)
    return outcome, time.monotonic() - started


def test_an_admitted_request_finishes_after_sigterm(tmp_path: Path) -> None:
    server = start_service(tmp_path, env={"GENDOC_SHUTDOWN_TIMEOUT": "60",
                                          "GENDOC_RENDER_WORKERS": "1",
                                          "GENDOC_RENDER_TIMEOUT": "60"})
    outcome, _ = render_during_sigterm(server, SLOW)
    # uvicorn re-raises the signal once shut down, so the exit is "killed by SIGTERM".
    assert server.proc.returncode == -signal.SIGTERM, server.logs()
    assert isinstance(outcome[0], httpx.Response) and outcome[0].status_code == 200, outcome


def test_the_drain_ends_after_the_shutdown_timeout(tmp_path: Path) -> None:
    server = start_service(tmp_path, env={"GENDOC_SHUTDOWN_TIMEOUT": "1",
                                          "GENDOC_RENDER_WORKERS": "1",
                                          "GENDOC_RENDER_TIMEOUT": "600"})
    outcome, took = render_during_sigterm(server, ENDLESS)
    # Cut after the 1 s drain: well before the default drain (the request
    # timeout, 30 s) or the 600 s render limit; the worker is stopped with it.
    assert took < 8, (took, server.logs())
    assert not isinstance(outcome[0], httpx.Response) or outcome[0].status_code != 200
