"""The bench's writers: README sections between markers, the tables, the size plot.

Pure functions over JSON shaped as the bench writes it; no processes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from gendoc.bench import output, report, stack

REPO = Path(__file__).resolve().parents[2]


def _row(mode: str, rounds: list[float], model: str = "closed", load: str = "c=8",
         **extra: Any) -> dict[str, Any]:
    row = {"mode": mode, "model": model, "load": load, "document": "invoice", "pages": 1,
           "rounds": rounds, "per_min": sorted(rounds)[len(rounds) // 2], "p50": 0.5,
           "p95": 0.8, "p99": 0.9, "ok_p95": 0.8, "refused_p95": 0.02,
           "status": {"200": 120}, "peak_rss_mb": 600, "client_cpu_share": 0.07}
    return row | extra


def _stack() -> dict[str, Any]:
    return {
        "date": "2026-11-28", "cores": 2, "cpu": "test CPU",
        "command": "gendoc bench", "gotenberg_unoconverter": "unoconverter",
        "settings": {"rounds": 3, "duration": 15.0, "warmup": 3.0, "concurrency": 8,
                     "size_concurrency": 4},
        "descriptions": {"gendoc": "the stack", "gotenberg-2-norestart":
                         "Gotenberg, 2 processes (one per core), restarts off",
                         "converter": "ours", "gotenberg-2": "Gotenberg, 2 processes"},
        "documents": {"invoice": {"label": "one-page invoice"},
                      "report": {"label": "60-page report"}},
        "rows": [_row("gotenberg-2-norestart", [350, 355, 362]),
                 _row("gendoc", [1100, 1130, 1150]),
                 _row("gendoc", [852], model="overload", load="2261/min",
                      status={"200": 299, "429": 454})],
        "sizes": [_row(peer, [rate / share], document=doc, pages=pages)
                  for peer, share in (("converter", 1), ("gotenberg-2", 4))
                  for doc, pages, rate in (("invoice", 1, 1300), ("report", 60, 160))],
        "ratios": {"gendoc/gotenberg-2-norestart": 3.18},
    }


def test_a_section_is_replaced_between_its_markers_only() -> None:
    begin, end = report._marker("stack")
    text = f"intro\n{begin}\nold table\n{end}\noutro\n"
    out = report.replace_section(text, "stack", "new table")
    assert out == f"intro\n{begin}\nnew table\n{end}\noutro\n"


@pytest.mark.parametrize("times", [0, 2])
def test_missing_or_doubled_markers_are_an_error(times: int) -> None:
    begin, end = report._marker("stack")
    with pytest.raises(ValueError, match="exactly one pair"):
        report.replace_section(f"{begin}\nx\n{end}\n" * times, "stack", "y")


def test_the_readme_has_each_section_once() -> None:
    text = (REPO / "README.md").read_text()
    for name in ("converter", "stack", "sizes"):
        assert report.replace_section(text, name, "checked") != text


def test_stack_table_gives_median_spread_and_the_peer_configuration_of_each_ratio() -> None:
    text = report.stack_section(_stack())
    assert "| 355 (350\N{EN DASH}362) |" in text
    assert "120 \N{MULTIPLICATION SIGN} 200" in text
    assert "admitted 800 ms; refused 20 ms" in text
    assert "299 \N{MULTIPLICATION SIGN} 200, 454 \N{MULTIPLICATION SIGN} 429" in text
    assert ("/ `gotenberg-2-norestart` (Gotenberg, 2 processes (one per core), restarts off): "
            "**3.18**") in text
    assert "| 7 % |" in text  # the load generator's CPU share


def test_sizes_table_and_plot() -> None:
    result = _stack()
    text = report.sizes_section(result, "sizes.svg")
    assert "| 60-page report | 60 | `gotenberg-2` | 40 |" in text
    assert ("`converter` / `gotenberg-2`, PDFs/min: one-page invoice **4.00**; "
            "60-page report **4.00**.") in text
    svg = ET.fromstring(report.sizes_svg(result))
    ns = "{http://www.w3.org/2000/svg}"
    lines = [p for p in svg.iter(f"{ns}path") if p.get("stroke-width") == "2"]
    assert len(lines) == 4  # two peers, two panels
    assert len(list(svg.iter(f"{ns}circle"))) == 8  # a point per peer, document and panel


def test_converter_table_labels_single_for_what_it_is() -> None:
    result = {"date": "2026-11-28", "cpus": 2, "rounds": 3, "ratios": {"http/single": 1.7},
              "results": [{"mode": "single", "instances": 1, "concurrency": 1,
                           "per_minute": 780, "rounds": [760, 780, 800], "p50_ms": 75,
                           "p95_ms": 98, "bench_cpu_share": 0.5}]}
    text = report.converter_section(result)
    assert "one warm LibreOffice of ours driven in-process over UNO" in text
    assert "| 1 | 1 | 780 (760\N{EN DASH}800) | 75 ms | 98 ms |  |" in text
    assert "Gotenberg" not in text
    assert "http / single = **1.70**" in text


def test_failed_runs_are_listed_with_the_results() -> None:
    result = _stack() | {"failures": ["gotenberg-2, round 2: HTTPStatusError: 503 |\nmore"]}
    text = report.stack_section(result)
    assert "- gotenberg-2, round 2: HTTPStatusError: 503 \\| more" in text


def test_a_long_failure_keeps_its_last_words() -> None:
    result = _stack() | {"failures": ["gotenberg exited with 1: " + "log line " * 200
                                      + "[FATAL] the cause"]}
    text = report.stack_section(result)
    assert text.rstrip().endswith("[FATAL] the cause")


def test_the_s3_store_is_compared_with_the_directory_in_the_same_run() -> None:
    rows = [_row("gendoc-docx", [5000, 5100, 5200]), _row("gendoc-docx-s3", [4900, 4950, 5000])]
    ratio = stack.store_ratio(rows)
    assert ratio == round(4950 / 5100, 3)
    assert stack.store_ratio(rows[:1]) is None  # a run without the S3 mode says nothing
    text = report.stack_section(_stack() | {"store_ratio": ratio})
    assert f"(`gendoc-docx-s3` over `gendoc-docx`, a hot template): **{ratio:.3f}**" in text
    assert "gendoc-docx-s3" not in report.stack_section(_stack())


def test_a_text_table_aligns_headers_with_their_columns() -> None:
    text = output.table([("mode", "<6"), ("per min", ">8.0f"), ("p95 s", ">6.2f")],
                        [("http", 1359.6, 0.1234), ("single", 766.0, 0.5)])
    assert text.splitlines() == ["mode    per min  p95 s",
                                 "http       1360   0.12",
                                 "single      766   0.50"]
