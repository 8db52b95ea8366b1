"""`gendoc jobs submit|status|wait|result` against a real service (embedded queue)."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import start_service
from jobs.jobs_support import store_template

from gendoc.jobclient import items_of, progress_line


def test_progress_line() -> None:
    assert progress_line(0, 0, 10, width=10) == "[..........]   0% 0/10"
    assert progress_line(4, 1, 10, width=10) == "[#####.....]  50% 5/10 (1 failed)"
    assert progress_line(10, 0, 10, width=10) == "[##########] 100% 10/10"
    assert items_of({"items": [{"a": 1}]}) == [{"a": 1}] and items_of([{}]) == [{}]
    with pytest.raises(ValueError):
        items_of([1, 2])


def gendoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gendoc", *args], capture_output=True,
                          text=True, timeout=600, check=False)


def test_submit_wait_status_result(tmp_path: Path) -> None:
    service = start_service(tmp_path)
    try:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            name = store_template(c, "Item {{ n }}")
        data = tmp_path / "items.json"
        data.write_text(json.dumps([{"n": i} for i in range(12)]))
        submitted = gendoc("jobs", "--url", service.url, "submit", name, str(data),
                           "--format", "docx", "--wait", "--interval", "0.2")
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        assert "100% 12/12" in submitted.stderr and f"{job_id} succeeded" in submitted.stderr

        shown = gendoc("jobs", "--url", service.url, "status", job_id)
        assert json.loads(shown.stdout)["done"] == 12

        out = tmp_path / "out.zip"
        got = gendoc("jobs", "--url", service.url, "result", job_id, "-o", str(out))
        assert got.returncode == 0, got.stderr
        assert len(zipfile.ZipFile(out).namelist()) == 12

        missing = gendoc("jobs", "--url", service.url, "wait", "nope")
        assert missing.returncode == 1 and "404" in missing.stderr
    finally:
        service.stop()
