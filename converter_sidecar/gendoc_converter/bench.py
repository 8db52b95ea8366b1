"""`gendoc bench converter`: the HTTP converter against warm LibreOffice driven directly.

One invocation, three measurements on the same machine, one after the other:

- `raw`: N warm instances driven over UNO by the pool, no HTTP (the ceiling);
- `single`: one warm LibreOffice instance of ours driven in-process over UNO by
  the pool, one conversion at a time, no HTTP (not a peer: Gotenberg's figures
  come from `gendoc bench`, which runs the real Gotenberg);
- `http`: the converter as a real server process on a free 127.0.0.1 port,
  driven over HTTP at a fixed concurrency (closed model).

Each runs for a bounded time and/or count after a warm-up; rounds interleave the
modes and each round's rate is kept (the median and spread are reported); load
goes only to 127.0.0.1. Two more modes answer the design question "can threads of one
Python process drive N instances in parallel?" (docs/converter.md):
`threads` (N instances, one thread each, no pool, no asyncio) and `procs`
(N instances, each driven from its own worker process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gendoc.bench import output
from gendoc.bench.load import own_cpu_seconds

from . import profile
from .instance import Instance
from .options import ConversionOptions
from .pool import Pool
from .settings import ConverterSettings

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass
class Result:
    mode: str
    instances: int
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list, repr=False)
    errors: Counter[str] = field(default_factory=Counter)
    rounds: list[float] = field(default_factory=list)  # conversions/min, one per round
    # CPU of this process while timed: for `http` the load generator's own, for the
    # in-process modes the driving threads (part of what is measured).
    bench_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def per_minute(self) -> float:
        """The median of the rounds' rates (one round: its rate)."""
        if self.rounds:
            return statistics.median(self.rounds)
        return self.ok * 60 / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, object]:
        cores = os.cpu_count() or 1
        data = asdict(self)
        del data["latencies"]
        data.update(ok=self.ok, per_minute=round(self.per_minute, 1),
                    p50_ms=round(self.percentile(0.5) * 1000, 1),
                    p95_ms=round(self.percentile(0.95) * 1000, 1),
                    mean_ms=round(statistics.fmean(self.latencies) * 1000, 1)
                    if self.latencies else None,
                    errors=dict(self.errors),
                    bench_cpu_share=round(self.bench_cpu_s / (self.seconds * cores), 3)
                    if self.seconds else 0.0)
        return data


Call = Callable[[], Awaitable[str | None]]  # None, or what went wrong


async def _closed_loop(result: Result, call: Call, concurrency: int, seconds: float,
                       count: int | None, warmup: int) -> None:
    """`concurrency` workers call `call()` back to back until time or count runs out."""
    for _ in range(warmup):
        await call()
    cpu = own_cpu_seconds()
    started = time.monotonic()
    end = started + seconds
    issued = 0

    async def worker() -> None:
        nonlocal issued
        while time.monotonic() < end and (count is None or issued < count):
            issued += 1
            t0 = time.monotonic()
            try:
                error = await call()
            except Exception as exc:  # a benchmark counts failures, it does not stop on them
                error = type(exc).__name__
            if error:
                result.errors[error] += 1
            else:
                result.latencies.append(time.monotonic() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    result.bench_cpu_s = own_cpu_seconds() - cpu


async def _uno(mode: str, document: bytes, instances: int, args: argparse.Namespace,
               work_dir: Path) -> Result:
    settings = ConverterSettings(pool_size=instances, queue_size=instances * 4, work_dir=work_dir,
                                 log_level="warning")
    pool = Pool(settings)
    await pool.start()
    result = Result(mode, instances, instances)
    options = ConversionOptions()

    async def call() -> str | None:
        await pool.convert(document, ".docx", options)
        return None

    try:
        await _closed_loop(result, call, instances, args.seconds, args.count, args.warmup)
    finally:
        await pool.close()
    return result


async def _http(document: bytes, name: str, instances: int, args: argparse.Namespace,
                work_dir: Path, log_dir: Path) -> Result:
    from gendoc.procs import free_port, spawn_gendoc

    port = free_port()
    concurrency = args.concurrency or 2 * instances
    server = spawn_gendoc(
        ["converter", "--port", str(port), "--pool-size", str(instances), "--log-level", "warning"],
        port, "/health", log=log_dir / "bench-converter.log",
        env={"GENDOC_CONVERTER_WORK_DIR": str(work_dir),
             "GENDOC_CONVERTER_QUEUE_SIZE": str(max(32, concurrency * 2))},
        timeout=120,
    )
    result = Result("http", instances, concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    try:
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:

            async def call() -> str | None:
                response = await client.post("/forms/libreoffice/convert",
                                             files={"files": (name, document, DOCX)})
                if response.status_code != 200 or not response.content.startswith(b"%PDF"):
                    return str(response.status_code)
                return None

            await _closed_loop(result, call, concurrency, args.seconds, args.count,
                               args.warmup)
    finally:
        server.stop()
    return result


def _drive(index: int, settings: ConverterSettings, template: Path, root: Path,
           document: bytes, seconds: float, count: int | None, warmup: int, *,
           wait_start: Callable[[], object]) -> list[float]:
    """One instance driven directly over UNO, back to back; returns its latencies."""
    instance = Instance(index, 0, soffice=settings.soffice, template=template, root=root,
                        start_timeout=settings.start_timeout, stop_timeout=settings.stop_timeout,
                        environment=settings.soffice_environment)
    instance.start()
    options = ConversionOptions()
    latencies: list[float] = []
    try:
        for _ in range(warmup):
            instance.convert(document, ".docx", options)
        wait_start()
        end = time.monotonic() + seconds
        while time.monotonic() < end and (count is None or len(latencies) < count):
            t0 = time.monotonic()
            instance.convert(document, ".docx", options)
            latencies.append(time.monotonic() - t0)
    finally:
        instance.stop()
    return latencies


def _drive_process(out: Any, go: Any, *args: Any) -> None:
    """Worker process of the `procs` mode: report ready, wait for the start, send latencies."""
    def wait_start() -> None:
        out.put("ready")
        go.wait()

    out.put(_drive(*args, wait_start=wait_start))


def _direct(mode: str, document: bytes, instances: int, args: argparse.Namespace,
            work_dir: Path) -> Result:
    """N instances without the pool: one thread each (`threads`) or one process each (`procs`)."""
    settings = ConverterSettings(pool_size=instances, work_dir=work_dir)
    template = work_dir / "template"
    profile.make_template(settings.soffice, template, dict(os.environ), settings.start_timeout)
    per_instance = None if args.count is None else -(-args.count // instances)
    common = (settings, template, work_dir, document, args.seconds, per_instance, args.warmup)
    result = Result(mode, instances, instances)
    started = 0.0
    if mode == "threads":
        barrier = threading.Barrier(instances + 1)
        with ThreadPoolExecutor(instances) as pool:
            futures = [pool.submit(_drive, i, *common, wait_start=barrier.wait)
                       for i in range(instances)]
            barrier.wait()
            started = time.monotonic()
            latencies = [f.result() for f in futures]
    else:
        ctx = multiprocessing.get_context("spawn")
        out, go = ctx.Queue(), ctx.Event()
        workers = [ctx.Process(target=_drive_process, args=(out, go, i, *common))
                   for i in range(instances)]
        for worker in workers:
            worker.start()
        for _ in workers:
            assert out.get(timeout=120) == "ready"
        go.set()
        started = time.monotonic()
        latencies = [out.get(timeout=args.seconds + 120) for _ in workers]
        for worker in workers:
            worker.join()
    result.seconds = time.monotonic() - started
    result.latencies = [x for chunk in latencies for x in chunk]
    return result


def _table(results: list[Result]) -> str:
    return output.table(
        [("mode", "<8"), ("inst", ">4"), ("conc", ">5"), ("ok", ">6"), ("errors", ">7"),
         ("conv/min", ">9.0f"), ("p50 ms", ">8.0f"), ("p95 ms", ">8.0f")],
        [(r.mode, r.instances, r.concurrency, r.ok, sum(r.errors.values()), r.per_minute,
          r.percentile(0.5) * 1000, r.percentile(0.95) * 1000) for r in results])


def ratios(results: list[Result]) -> dict[str, float]:
    by_mode = {r.mode: r.per_minute for r in results}
    out = {}
    for base in ("raw", "single"):
        if by_mode.get("http") and by_mode.get(base):
            out[f"http/{base}"] = round(by_mode["http"] / by_mode[base], 3)
    return out


def build_parser() -> argparse.ArgumentParser:
    from gendoc.cli import EXAMPLES

    parser = argparse.ArgumentParser(prog="gendoc bench converter", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("document", nargs="?", type=Path, default=EXAMPLES / "invoice.docx",
                        help="the .docx to convert (default: the bundled invoice)")
    parser.add_argument("--instances", type=int, default=os.cpu_count() or 1,
                        help="instances for raw and http (default: CPU count)")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="HTTP requests in flight (default: 2 x instances)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each run")
    parser.add_argument("--count", type=int, help="stop each run after this many conversions")
    parser.add_argument("--warmup", type=int, default=4, help="untimed conversions first")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat the modes in turn this many times (each run --seconds); "
                        "the rate reported is the median of the rounds")
    output.add_output_arguments(parser, "3 s runs, 1 warm-up conversion")
    parser.add_argument("--modes", default="raw,single,http",
                        help="comma-separated, run in this order: raw, single, http "
                        "(default) and threads, procs (how to drive N instances)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.quick:
        args.seconds, args.warmup = 3.0, 1
    document = args.document.read_bytes()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - {"raw", "single", "http", "threads", "procs"}
    if unknown:
        print(f"gendoc bench converter: unknown mode(s) {', '.join(sorted(unknown))}",
              file=sys.stderr)
        return 2
    merged: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="gendoc-bench-", dir=_scratch_root()) as tmp:
        work_dir = Path(tmp)
        # Rounds interleave the modes, so that load from elsewhere on a shared
        # machine falls on all of them alike rather than on whichever ran then.
        for round_ in range(args.rounds):
            for mode in modes:
                print(f"bench: round {round_ + 1}/{args.rounds}: {mode} ...", file=sys.stderr,
                      flush=True)
                result = _run_mode(mode, document, args, work_dir / f"{mode}-{round_}")
                _merge_into(merged, result)
    results = [merged[m] for m in modes]
    print(_table(results))
    for name, value in ratios(results).items():
        print(f"{name} = {value:.2f}")
    if args.json:
        args.json.write_text(json.dumps(
            {"command": shlex.join(["gendoc", "bench", "converter", *argv]),
             "date": time.strftime("%Y-%m-%d"),
             "document": args.document.name, "cpus": os.cpu_count(), "rounds": args.rounds,
             "seconds_per_run": args.seconds,
             "load_average": os.getloadavg(),
             "results": [r.summary() for r in results], "ratios": ratios(results)}, indent=2))
    return 0 if all(not r.errors for r in results) else 1


def _run_mode(mode: str, document: bytes, args: argparse.Namespace, work_dir: Path) -> Result:
    if mode == "http":
        return asyncio.run(_http(document, args.document.name, args.instances, args,
                                 work_dir, work_dir.parent))
    if mode in ("threads", "procs"):
        return _direct(mode, document, args.instances, args, work_dir)
    return asyncio.run(_uno(mode, document, args.instances if mode == "raw" else 1, args,
                            work_dir))


def _merge_into(merged: dict[str, Result], result: Result) -> None:
    total = merged.setdefault(result.mode, Result(result.mode, result.instances,
                                                  result.concurrency))
    total.seconds += result.seconds
    total.bench_cpu_s += result.bench_cpu_s
    total.rounds.append(round(result.per_minute, 1))
    total.latencies += result.latencies
    total.errors.update(result.errors)


def _scratch_root() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


if __name__ == "__main__":
    raise SystemExit(main())
