"""Render workers: resource exhaustion is bounded and the worker that hit it is replaced."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import ENDLESS_LOOP, make_docx, part_texts


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_service(
        tmp_path_factory.mktemp("workers"),
        env={"GENDOC_RENDER_WORKERS": "2", "GENDOC_RENDER_TIMEOUT": "2",
             "GENDOC_RENDER_MEMORY_MB": "600"},
    )
    yield server
    server.stop()


def render(server: ServerProcess, text: str, data: dict | None = None) -> httpx.Response:
    import json

    return httpx.post(f"{server.url}/v1/render", timeout=30,
                      files={"template": ("t.docx", make_docx(text))},
                      data={"data": json.dumps(data or {}), "format": "docx"})


def worker_pids(server: ServerProcess) -> set[int]:
    import subprocess

    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_endless_loop_hits_the_time_limit_and_the_worker_is_replaced(
        bounded: ServerProcess) -> None:
    before = worker_pids(bounded)
    started = time.monotonic()
    r = render(bounded, ENDLESS_LOOP)
    assert r.status_code == 422 and r.json()["type"].endswith("/render-time-limit")
    assert time.monotonic() - started < 10
    ok = render(bounded, "still {{ fine }}", {"fine": "working"})
    assert ok.status_code == 200 and "still working" in part_texts(ok.content)["word/document.xml"]
    after = worker_pids(bounded)
    assert len(after) == len(before) and after != before


def test_huge_string_hits_the_memory_limit(bounded: ServerProcess) -> None:
    r = render(bounded, "{{ 'x' * 2000000000 }}")
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/render-memory-limit")
    assert render(bounded, "ok").status_code == 200


def test_huge_range_is_refused_by_the_sandbox(bounded: ServerProcess) -> None:
    r = render(bounded, "{% for i in range(10**9) %}x{% endfor %}")
    assert r.status_code == 422 and r.json()["type"].endswith("/template-render-error")


def test_deep_nesting_is_a_clear_422(bounded: ServerProcess) -> None:
    deep = "{% if true %}" * 400 + "x" + "{% endif %}" * 400
    r = render(bounded, deep)
    assert r.status_code == 422, r.text
    assert httpx.get(f"{bounded.url}/healthz").status_code == 200
