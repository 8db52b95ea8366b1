"""`gendoc bench`: the load benchmark, with its baselines and peers measured in the same run.

Modes (--modes, run in turn, every round):
  cold                  the old way: one `soffice --convert-to pdf` process per document
  single                one warm LibreOffice of ours: the converter with a pool of 1, over HTTP
  gotenberg-P[-norestart][-unoconverter|-unoconv]
                        Gotenberg 8 (LibreOffice variant, built once by scripts/gotenberg.sh) as
                        P processes (`cores`: one per core), each with its own temp directory,
                        LibreOffice restarted every 10 conversions (its default) or never; with
                        its own unoconverter or PyPI's unoconv standing in (docs/gotenberg.md)
  gendoc                the full local stack over HTTP: render + convert, PDF out; also an
                        open model at --rates and at twice its capacity (--no-overload: not)
  gendoc-docx           the full stack, DOCX out
  gendoc-batch          the full stack, batches (POST /v1/render/batch, merged conversion):
                        --batch-invoices one-page invoices, then --batch-contracts 3-page
                        contracts a request, beside the contract one request a time
                        (gendoc-contract3); PDFs/min counts every PDF of the zips
  gendoc-docx-s3        the same with the templates in S3-compatible object storage (versitygw
                        on 127.0.0.1, built once by scripts/s3-server.sh): the S3 store's cost
Document size (--sizes): the one-page invoice, a 12-page contract and a 60-page report with a
1,000-row table, converted by each of --size-peers (`converter`: our sidecar over HTTP).
Every request goes to 127.0.0.1. `gendoc bench report` writes the README's tables and the
SVG plot from the JSON files; `make bench` runs it all (QUICK=1: a short check run).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from . import output, report, stack

DEFAULT_MODES = "cold,single,gotenberg-1,gotenberg-1-norestart,gotenberg-cores," \
    "gotenberg-cores-norestart,gendoc,gendoc-docx,gendoc-docx-s3,gendoc-batch"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gendoc bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", default=DEFAULT_MODES,
                   help="comma-separated, in this order (default: these, and "
                   "gotenberg-1-norestart-unoconv when Gotenberg's own unoconverter is installed)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of every mode (median, spread)")
    p.add_argument("--concurrency", type=int, default=8, help="closed model: clients at once")
    p.add_argument("--duration", type=float, default=15.0,
                   help="closed model: seconds per mode and round")
    p.add_argument("--warmup", type=float, default=3.0,
                   help="seconds of the same closed load, untimed, before every measured run")
    p.add_argument("--rates", default="300,600",
                   help="gendoc's open model: arrivals per minute, comma-separated")
    p.add_argument("--open-duration", type=float, default=10.0,
                   help="open model: seconds per rate and round")
    p.add_argument("--no-overload", dest="overload", action="store_false",
                   help="skip the open run at twice gendoc's measured capacity")
    p.add_argument("--pool-size", type=int, default=0,
                   help="converter pool size for gendoc (default: CPU count)")
    p.add_argument("--sizes", default="invoice,contract,report",
                   help="documents of the size dimension (empty: none)")
    p.add_argument("--size-peers", default="converter,gotenberg-cores",
                   help="who converts them: `converter` (ours) and Gotenberg modes")
    p.add_argument("--size-concurrency", type=int, default=4,
                   help="clients in the size runs (Gotenberg answers 503 after 30 s queued)")
    p.add_argument("--batch-invoices", type=int, default=200,
                   help="gendoc-batch: one-page invoices per batch request")
    p.add_argument("--batch-contracts", type=int, default=50,
                   help="gendoc-batch: 3-page contracts per batch request")
    p.add_argument("--batch-concurrency", type=int, default=2,
                   help="gendoc-batch: clients posting batches at once")
    p.add_argument("--unoconverter", choices=("unoconverter", "unoconv"),
                   help="Gotenberg's unoconverter: its own (the default when scripts/gotenberg.sh "
                   "installed it) or PyPI's unoconv standing in (docs/gotenberg.md); a mode's "
                   "-unoconverter/-unoconv suffix overrides it")
    output.add_output_arguments(p, "1 s warm-up, 3 s runs, 3 rounds")
    return p


def settings_from(args: argparse.Namespace) -> stack.Settings:
    import os

    from .peers import default_unoconverter

    if args.quick:
        args.warmup, args.duration, args.open_duration = 1.0, 3.0, 3.0
    modes = [m for m in args.modes.split(",") if m]
    size_peers = [m for m in args.size_peers.split(",") if m]
    unoconverter = args.unoconverter or ""
    if not unoconverter and any(m.startswith("gotenberg") for m in modes + size_peers):
        unoconverter = default_unoconverter()
    if args.modes == DEFAULT_MODES and unoconverter == "unoconverter":
        # Beside Gotenberg's own unoconverter, the stand-in a clone installs by itself, so
        # the tables show whether it is as fast.
        modes.insert(modes.index("gotenberg-1-norestart") + 1, "gotenberg-1-norestart-unoconv")
    return stack.Settings(
        modes=modes, rounds=args.rounds, concurrency=args.concurrency,
        duration=args.duration, warmup=args.warmup, open_duration=args.open_duration,
        rates=[float(r) for r in args.rates.split(",") if r], overload=args.overload,
        pool_size=args.pool_size or os.cpu_count() or 1,
        sizes=[d for d in args.sizes.split(",") if d], size_peers=size_peers,
        size_concurrency=args.size_concurrency, unoconverter=unoconverter,
        batch_invoices=args.batch_invoices, batch_contracts=args.batch_contracts,
        batch_concurrency=args.batch_concurrency,
    )


def report_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gendoc bench report",
                                description="Write the README's performance tables (between "
                                "their marker comments) and the size plot from the JSON files.")
    p.add_argument("--converter-json", type=Path, help="from `gendoc bench converter --json`")
    p.add_argument("--stack-json", type=Path, help="from `gendoc bench --json`")
    p.add_argument("--readme", type=Path, default=Path("README.md"))
    p.add_argument("--svg", type=Path, help="the size plot (default: beside --stack-json)")
    args = p.parse_args(argv)
    converter = _load(args.converter_json)
    result = _load(args.stack_json)
    svg = args.svg or (args.stack_json.with_name("sizes.svg") if args.stack_json else None)
    if result and result.get("sizes") and svg:
        svg.write_text(report.sizes_svg(result))
    report.write_readme(args.readme, converter, result, svg.name if svg else "sizes.svg")
    print(f"wrote {args.readme}" + (f" and {svg}" if svg and result else ""), file=sys.stderr)
    return 0


def _load(path: Path | None) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    args = build_parser().parse_args(argv)
    result = stack.run(settings_from(args))
    result["command"] = shlex.join(["gendoc", "bench", *argv])
    for row in result["rows"] + result["sizes"]:
        print(f"{row['mode']:<26} {row['model']:<8} {row['load']:<10} {row['document']:<9} "
              f"{row['per_min']:>8.0f}/min  p95 {row['p95']:.3f}s  {row['status']}")
    print(f"ratios: {result['ratios']}")
    if args.json:
        stack.write_json(result, args.json)
    return 0
