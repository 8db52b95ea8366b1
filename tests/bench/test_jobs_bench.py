"""`gendoc bench jobs`: its arithmetic, and a small run on the real local stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gendoc.bench.jobs import batch_sizes, main, per_minute


def test_batches_and_rates() -> None:
    assert batch_sizes(250, 100) == [100, 100, 50]
    assert batch_sizes(100, 100) == [100]
    assert per_minute(300, 30.0) == 600.0 and per_minute(5, 0.0) == 0.0


@pytest.mark.libreoffice
def test_a_small_run_reports_both_rates_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "jobs.json"
    assert main(["--items", "60", "--sync-items", "60", "--batch-size", "20",
                 "--format", "docx", "--pool-size", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["job"]["done"] == 60 and result["job"]["status"] == "succeeded"
    assert result["sync"]["documents"] == 60
    assert result["sync"]["per_min"] > 0 and result["job"]["per_min"] > 0
    assert result["ratio"] > 0 and result["job"]["peak_rss_mb"] > 50
