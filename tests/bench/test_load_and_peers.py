"""The bench's bookkeeping (rounds, medians, CPU shares) and its peer configurations."""

from __future__ import annotations

import asyncio
import os

import pytest

from gendoc.bench.load import Measured, Row, closed, open_model
from gendoc.bench.peers import GotenbergConfig


def test_a_row_is_the_median_of_its_rounds_with_latencies_pooled() -> None:
    row = Row("gendoc", "closed", "c=8")
    cores = os.cpu_count() or 1
    for per_min, latency in ((600, 0.1), (900, 0.2), (660, 0.3)):
        samples = [(200, latency)] * (per_min // 6) + [(429, 0.01)]
        row.add(Measured(samples, 10.0, client_cpu_s=cores * 1.0, machine_cpu_s=cores * 5.0,
                         peak_rss_kb=300 * 1024))
    assert row.rounds == [600, 900, 660]
    assert row.per_min == 660
    assert row.status == {"200": 360, "429": 3}
    assert row.ok_p95 == 0.3 and row.refused_p95 == 0.01
    assert row.client_cpu_share == 0.1  # 1 s of every core's 10 s
    assert row.client_cpu_of_busy == 0.2
    assert row.peak_rss_mb == 300


def test_closed_and_open_models_count_what_they_ran() -> None:
    async def call() -> int:
        await asyncio.sleep(0.01)
        return 200

    samples, seconds = asyncio.run(closed(call, 3, 10.0, max_requests=30))
    assert 30 <= len(samples) <= 32 and seconds < 5  # stopped by the count, not the time
    samples, seconds = asyncio.run(open_model(call, 1200, 0.5))  # one every 50 ms
    assert len(samples) == 10 and seconds >= 0.45


@pytest.mark.parametrize(("mode", "expected"), [
    ("gotenberg-1", GotenbergConfig(1, 10, None)),
    ("gotenberg-2-norestart", GotenbergConfig(2, 0, None)),
    ("gotenberg-cores-norestart-unoconv", GotenbergConfig(os.cpu_count() or 1, 0, "unoconv")),
    ("gotenberg-1-restart5-unoconverter", GotenbergConfig(1, 5, "unoconverter")),
])
def test_gotenberg_modes_name_their_configuration(mode: str, expected: GotenbergConfig) -> None:
    assert GotenbergConfig.parse(mode) == expected


def test_the_description_says_what_a_ratio_is_against() -> None:
    text = GotenbergConfig(2, 0).description("unoconverter")
    assert text == ("Gotenberg, 2 processes (one per core), each with its own temp directory, "
                    "restarts off, Gotenberg's own unoconverter")
    assert "(its default)" in GotenbergConfig(1).description("unoconv")
