"""What both benches (`gendoc bench` and `gendoc bench converter`) share in how they report:
the --quick/--json options `make bench` passes to each, and a fixed-width text table."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path


def add_output_arguments(parser: argparse.ArgumentParser, quick: str) -> None:
    """--quick (described by `quick`: what a short run does) and --json PATH."""
    parser.add_argument("--quick", action="store_true",
                        help=f"a short check that everything runs: {quick}; its figures mean "
                        "nothing")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")


def table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]]) -> str:
    """Rows under headers, one column per (header, format spec) such as ("p95 ms", ">9.0f");
    a header takes its column's alignment and width. Columns are joined by one space."""
    head = " ".join(format(name, spec.split(".")[0].rstrip("dfs")) for name, spec in columns)
    lines = [head.rstrip()]
    for row in rows:
        lines.append(" ".join(format(value, spec)
                              for value, (_, spec) in zip(row, columns, strict=True)).rstrip())
    return "\n".join(lines)
