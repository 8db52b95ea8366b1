"""`gendoc bench`: the load benchmark, with its baselines measured in the same run.

Modes (README.md, "Performance"):
  cold         the old way: one `soffice --convert-to pdf` process per request, fresh profile
  single       one warm LibreOffice (our converter with a pool of 1), DOCX -> PDF over HTTP
  gendoc       the full local stack over HTTP: render + convert, PDF out
  gendoc-docx  the full stack, DOCX out
  gotenberg    a real Gotenberg 8 (LibreOffice variant) as the peer, same load as `single`;
               not in the default --modes: add it with `--modes ...,gotenberg` (it is built
               once by scripts/gotenberg.sh, see docs/gotenberg.md)
Each HTTP mode runs a closed model (fixed concurrency, for a bounded time) and
gendoc also an open model (fixed arrival rates, for a bounded time), plus an
overload run at twice its measured capacity. Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gendoc.procs import GendocProcess, free_port, spawn_gendoc, tree_rss_kb

EXAMPLES = Path(__file__).parent / "examples"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass
class Run:
    mode: str
    model: str  # closed | open | overload
    load: str  # "c=20" or "600/min"
    requests: int = 0
    seconds: float = 0.0
    per_min: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    status: dict[str, int] = field(default_factory=dict)
    ok_p95: float = 0.0  # latency of 200s only
    refused_p95: float = 0.0  # latency of 429s only
    peak_rss_mb: float = 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summarise(run: Run, samples: list[tuple[int, float]], seconds: float) -> Run:
    lat = [s for _, s in samples]
    ok = [s for c, s in samples if c == 200]
    refused = [s for c, s in samples if c == 429]
    run.requests = len(samples)
    run.seconds = round(seconds, 2)
    run.per_min = round(len(ok) / seconds * 60, 1) if seconds else 0.0
    run.p50, run.p95, run.p99 = (round(_pct(lat, q), 4) for q in (0.5, 0.95, 0.99))
    run.ok_p95 = round(_pct(ok, 0.95), 4)
    run.refused_p95 = round(_pct(refused, 0.95), 4)
    run.status = {str(k): v for k, v in sorted(Counter(c for c, _ in samples).items())}
    return run


# -- load models ------------------------------------------------------------------
async def _one(client: httpx.AsyncClient, request: dict[str, Any]) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        response = await client.request(**request)
        code = response.status_code
    except httpx.HTTPError:
        code = 599  # transport error: counted, never hidden
    return code, time.perf_counter() - started


async def closed(url: str, request: dict[str, Any], concurrency: int, duration: float,
                 max_requests: int) -> tuple[list[tuple[int, float]], float]:
    samples: list[tuple[int, float]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        stop_at = started + duration

        async def user() -> None:
            while time.perf_counter() < stop_at and len(samples) < max_requests:
                samples.append(await _one(client, request))

        await asyncio.gather(*(user() for _ in range(concurrency)))
        return samples, time.perf_counter() - started


async def open_model(url: str, request: dict[str, Any], per_minute: float,
                     duration: float) -> tuple[list[tuple[int, float]], float]:
    interval = 60.0 / per_minute
    count = int(duration / interval)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = started + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(_one(client, request)))
        samples = list(await asyncio.gather(*tasks))
        return samples, max(time.perf_counter() - started, count * interval)


# -- memory ----------------------------------------------------------------------
class PeakRss:
    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak_kb = pids, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pids))

    def __enter__(self) -> PeakRss:
        self.peak_kb = tree_rss_kb(self.pids)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# -- the modes ---------------------------------------------------------------------
def cold_run(template_docx: Path, concurrency: int, requests: int) -> Run:
    """The old service: a fresh soffice process and profile per document."""
    soffice = shutil.which("soffice") or "/usr/bin/soffice"
    samples: list[tuple[int, float]] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        for _ in counter:
            with tempfile.TemporaryDirectory(prefix="gendoc-cold-") as tmp:
                started = time.perf_counter()
                done = subprocess.run(
                    [soffice, f"-env:UserInstallation=file://{tmp}/profile", "--headless",
                     "--convert-to", "pdf", "--outdir", tmp, str(template_docx)],
                    capture_output=True, timeout=120,
                )
                ok = done.returncode == 0 and (Path(tmp) / f"{template_docx.stem}.pdf").exists()
                with lock:
                    samples.append((200 if ok else 500, time.perf_counter() - started))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summarise(Run("cold", "closed", f"c={concurrency}"), samples, time.perf_counter() - started)


def _rendered_example(template: Path, data: dict[str, Any]) -> bytes:
    """The example rendered once, so that `single` measures conversion alone."""
    from gendoc_service.rendering import Renderer

    return Renderer(16 << 20).render(template.read_bytes(), data)


def _start_converter(workdir: Path, pool_size: int | None) -> GendocProcess:
    port = free_port()
    args = ["converter", "--port", str(port)] + (["--pool-size", str(pool_size)] if pool_size else [])
    return spawn_gendoc(args, port, "/health", log=workdir / f"converter-{port}.log", timeout=180)


def _start_gotenberg(workdir: Path) -> GendocProcess:
    """A real Gotenberg 8 (LibreOffice variant) on 127.0.0.1, built once by scripts/gotenberg.sh.

    Run as shipped (one LibreOffice, restarted every 10 conversions), except that it
    binds loopback only and starts LibreOffice before it reports healthy.
    """
    from gendoc.readiness import Abort, wait_until

    script = Path(__file__).resolve().parents[2] / "scripts" / "gotenberg.sh"
    if not script.exists():
        raise RuntimeError(f"gotenberg mode needs the repository's {script}")
    built = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, check=True, timeout=1800)
    launcher = built.stdout.decode().strip().splitlines()[-1]
    port = free_port()
    log = workdir / f"gotenberg-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [launcher, "--api-port", str(port), "--api-bind-ip", "127.0.0.1",
             "--libreoffice-auto-start", "--gotenberg-hide-banner",
             "--gotenberg-graceful-shutdown-duration", "10s"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            detail = log.read_text(errors="replace")[-4000:]
            raise Abort(f"gotenberg exited with {proc.returncode}:\n{detail}")
        health = httpx.get(url + "/health", timeout=2)
        return health.status_code == 200 and \
            health.json()["details"]["libreoffice"]["status"] == "up"

    try:
        wait_until(ready, 120, interval=0.1, what=f"gotenberg on {url}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return GendocProcess(url, proc, log)


def _start_service(workdir: Path, converter_url: str) -> GendocProcess:
    port = free_port()
    return spawn_gendoc(
        ["serve", "--port", str(port), "--converter-url", converter_url,
         "--store-dir", str(workdir / "store"), "--log-level", "warning"],
        port, "/readyz", log=workdir / f"service-{port}.log", timeout=120,
    )


def _print_table(runs: list[Run]) -> None:
    head = f"{'mode':<12} {'model':<9} {'load':<10} {'n':>6} {'ok/min':>8} {'p50 s':>7} {'p95 s':>7} " \
           f"{'p99 s':>7} {'429 p95':>8} {'RSS MB':>7}  status"
    print(head)
    print("-" * len(head))
    for r in runs:
        print(f"{r.mode:<12} {r.model:<9} {r.load:<10} {r.requests:>6} {r.per_min:>8.0f} {r.p50:>7.3f} "
              f"{r.p95:>7.3f} {r.p99:>7.3f} {r.refused_p95:>8.3f} {r.peak_rss_mb:>7.0f}  {r.status}")


def run_stack_bench(args: argparse.Namespace) -> dict[str, Any]:
    template = Path(args.template)
    data = json.loads(Path(args.data).read_text())
    modes = args.modes.split(",")
    runs: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="gendoc-bench-"))
    try:
        if "cold" in modes:
            # The old way needs a plain .docx (no tags): render it once here.
            plain = workdir / "invoice.docx"
            plain.write_bytes(_rendered_example(template, data))
            for c in (1, 2):
                runs.append(cold_run(plain, c, args.cold_requests))
                _progress(runs[-1])

        if "single" in modes:
            converter = _start_converter(workdir, 1)
            try:
                docx = _rendered_example(template, data)
                request = {"method": "POST", "url": "/forms/libreoffice/convert",
                           "files": {"files": ("invoice.docx", docx, DOCX)}}
                samples, secs = asyncio.run(closed(converter.url, request, args.concurrency,
                                                   args.duration, args.max_requests))
                runs.append(_summarise(Run("single", "closed", f"c={args.concurrency}"), samples, secs))
                _progress(runs[-1])
            finally:
                converter.stop()

        if "gotenberg" in modes:
            gotenberg = _start_gotenberg(workdir)
            try:
                docx = _rendered_example(template, data)
                request = {"method": "POST", "url": "/forms/libreoffice/convert",
                           "files": {"files": ("invoice.docx", docx, DOCX)}}
                with PeakRss([gotenberg.proc.pid]) as rss:
                    samples, secs = asyncio.run(closed(gotenberg.url, request, args.concurrency,
                                                       args.duration, args.max_requests))
                run = _summarise(Run("gotenberg", "closed", f"c={args.concurrency}"), samples, secs)
                run.peak_rss_mb = round(rss.peak_kb / 1024)
                runs.append(run)
                _progress(run)
            finally:
                gotenberg.stop()

        if {"gendoc", "gendoc-docx"} & set(modes):
            converter = _start_converter(workdir, args.pool_size)
            service = _start_service(workdir, converter.url)
            try:
                httpx.put(f"{service.url}/v1/templates/invoice", content=template.read_bytes(),
                          headers={"content-type": DOCX}).raise_for_status()
                pids = [converter.proc.pid, service.proc.pid]
                for mode, fmt in (("gendoc", "pdf"), ("gendoc-docx", "docx")):
                    if mode not in modes:
                        continue
                    request = {"method": "POST", "url": "/v1/render",
                               "json": {"template": "invoice", "data": data, "format": fmt}}
                    # Warm-up: compiled templates, connections, LibreOffice caches.
                    asyncio.run(closed(service.url, request, 4, 3, 40))
                    with PeakRss(pids) as rss:
                        samples, secs = asyncio.run(closed(service.url, request, args.concurrency,
                                                           args.duration, args.max_requests))
                    run = _summarise(Run(mode, "closed", f"c={args.concurrency}"), samples, secs)
                    run.peak_rss_mb = round(rss.peak_kb / 1024)
                    runs.append(run)
                    _progress(run)
                    if mode != "gendoc":
                        continue
                    capacity = run.per_min
                    rates = [float(r) for r in args.rates.split(",") if r]
                    if args.overload and capacity:
                        rates.append(round(2 * capacity))
                    for rate in rates:
                        with PeakRss(pids) as rss:
                            samples, secs = asyncio.run(open_model(service.url, request, rate,
                                                                   args.open_duration))
                        model = "overload" if rate == rates[-1] and args.overload else "open"
                        r = _summarise(Run(mode, model, f"{rate:.0f}/min"), samples, secs)
                        r.peak_rss_mb = round(rss.peak_kb / 1024)
                        runs.append(r)
                        _progress(r)
            finally:
                service.stop()
                converter.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "runs": [asdict(r) for r in runs],
        "ratios": _ratios(runs),
    }
    return result


def _closed_rate(runs: list[Run], mode: str) -> float:
    rates = [r.per_min for r in runs if r.mode == mode and r.model == "closed"]
    return max(rates) if rates else 0.0


def _ratios(runs: list[Run]) -> dict[str, float]:
    gendoc = _closed_rate(runs, "gendoc")
    out = {}
    for base in ("cold", "single", "gotenberg"):
        if (b := _closed_rate(runs, base)) and gendoc:
            out[f"gendoc/{base}"] = round(gendoc / b, 2)
    return out


def _progress(run: Run) -> None:
    print(f"  {run.mode} {run.model} {run.load}: {run.per_min:.0f}/min ok, p95 {run.p95:.3f}s, {run.status}",
          file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gendoc bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", default="cold,single,gendoc,gendoc-docx")
    p.add_argument("--template", default=str(EXAMPLES / "invoice.docx"))
    p.add_argument("--data", default=str(EXAMPLES / "invoice.json"))
    p.add_argument("--concurrency", type=int, default=20, help="closed model: clients at once")
    p.add_argument("--duration", type=float, default=20.0, help="closed model: seconds per run")
    p.add_argument("--max-requests", type=int, default=5000, help="closed model: bound per run")
    p.add_argument("--rates", default="300,600", help="open model: arrivals per minute, comma-separated")
    p.add_argument("--open-duration", type=float, default=20.0, help="open model: seconds per rate")
    p.add_argument("--no-overload", dest="overload", action="store_false",
                   help="skip the run at twice the measured capacity")
    p.add_argument("--cold-requests", type=int, default=12, help="cold: documents per concurrency level")
    p.add_argument("--pool-size", type=int, help="converter pool size for the gendoc modes")
    p.add_argument("--json", help="write the results here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = run_stack_bench(args)
    print()
    _print_table([Run(**r) for r in result["runs"]])
    print(f"\nratios (closed-model PDFs/min): {result['ratios']}   "
          f"date {result['date']}, {result['cores']} cores")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
