"""Load models and what is measured around them: latencies, statuses, peak RSS, CPU shares.

A load is an async `Call` returning a status code; the closed model runs a fixed number
of clients back to back, the open model starts calls at a fixed rate whatever happens
to the earlier ones. Every measured run is preceded by the same untimed warm-up: the
same closed load for `warmup` seconds.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import resource
import statistics
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from gendoc.procs import tree_rss_kb

Call = Callable[[], Awaitable[int]]
Sample = tuple[int, float]  # (status, seconds)
TRANSPORT_ERROR = 599  # counted, never hidden
NOT_A_PDF = 598  # a 200 whose body is not the document asked for


# -- load models ------------------------------------------------------------------
async def _timed(call: Call) -> Sample:
    started = time.perf_counter()
    try:
        code = await call()
    except httpx.HTTPError:
        code = TRANSPORT_ERROR
    return code, time.perf_counter() - started


async def closed(call: Call, concurrency: int, duration: float,
                 max_requests: int = 1_000_000) -> tuple[list[Sample], float]:
    """`concurrency` clients call back to back until `duration` or `max_requests`."""
    samples: list[Sample] = []
    started = time.perf_counter()
    stop_at = started + duration

    async def client() -> None:
        while time.perf_counter() < stop_at and len(samples) < max_requests:
            samples.append(await _timed(call))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


async def open_model(call: Call, per_minute: float,
                     duration: float) -> tuple[list[Sample], float]:
    """Calls start every 60/per_minute s for `duration`, whatever the earlier ones do."""
    interval = 60.0 / per_minute
    count = max(1, int(duration / interval))
    started = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = started + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the arrival schedule itself, not a wait for readiness
        tasks.append(asyncio.ensure_future(_timed(call)))
    samples = list(await asyncio.gather(*tasks))
    return samples, max(time.perf_counter() - started, count * interval)


def http_call(clients: list[httpx.AsyncClient], request: dict[str, Any],
              pdfs: list[bytes] | None) -> Call:
    """One request per call, round-robin over `clients` (one per peer process, as a
    Kubernetes Service spreads connections over pods). With `pdfs` (a list), an answer
    must be a PDF, and the first one is kept there (for its page count)."""
    turn = itertools.cycle(clients)

    async def call() -> int:
        response = await next(turn).request(**request)
        if response.status_code == 200 and pdfs is not None:
            if not response.content.startswith(b"%PDF"):
                return NOT_A_PDF
            if not pdfs:
                pdfs.append(response.content)
        return response.status_code

    return call


def batch_call(clients: list[httpx.AsyncClient], request: dict[str, Any], items: int,
               pdfs: list[bytes]) -> Call:
    """One batch per call: a 200 counts only if its zip holds `items` PDFs (a conversion
    that failed after the answer started is an .error.json entry); the first PDF is kept in
    `pdfs` (for its page count)."""
    turn = itertools.cycle(clients)

    async def call() -> int:
        response = await next(turn).request(**request)
        if response.status_code != 200:
            return response.status_code
        try:
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                names = archive.namelist()
                entries = [archive.read(n) for n in names[:1]]
        except zipfile.BadZipFile:
            return NOT_A_PDF
        if len(names) != items or not all(n.endswith(".pdf") for n in names):
            return NOT_A_PDF
        if not pdfs:
            pdfs.extend(entries)
        return response.status_code

    return call


def http_clients(urls: list[str]) -> list[httpx.AsyncClient]:
    """Clients for every model: a closed load opens as many connections as it has clients,
    an open one as many as are outstanding (up to 1,000 a peer)."""
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
    return [httpx.AsyncClient(base_url=url, limits=limits, timeout=300) for url in urls]


# -- CPU and memory ----------------------------------------------------------------
def own_cpu_seconds() -> float:
    """CPU of this process (the load generator, every thread), not of its children."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class PeakRss:
    """Samples the resident memory of process trees every 0.25 s while a run lasts."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak_kb = pids, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_kb = max(self.peak_kb, tree_rss_kb(self.pids))

    def __enter__(self) -> PeakRss:
        self.peak_kb = tree_rss_kb(self.pids) if self.pids else 0
        if self.pids:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


@dataclass
class Measured:
    """One timed run: its samples and what it cost."""

    samples: list[Sample]
    seconds: float
    client_cpu_s: float
    machine_cpu_s: float
    peak_rss_kb: int


async def measure(load: Awaitable[tuple[list[Sample], float]], pids: list[int]) -> Measured:
    """Run `load`, with the CPU it and the machine used and the peak RSS of `pids`' trees."""
    cpu0, busy0 = own_cpu_seconds(), _machine_busy_seconds()
    with PeakRss(pids) as rss:
        samples, seconds = await load
    return Measured(samples, seconds, own_cpu_seconds() - cpu0,
                    _machine_busy_seconds() - busy0, rss.peak_kb)


# -- summaries ------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Row:
    """One mode at one load, over every round: the unit of the JSON and of the tables."""

    mode: str
    model: str  # closed | open | overload
    load: str  # "c=8" or "600/min"
    document: str = "invoice"
    pages: int = 0
    items: int = 1  # documents per request (a batch's items)
    rounds: list[float] = field(default_factory=list)  # 200s per minute, one per round
    per_min: float = 0.0  # the median of `rounds`
    requests: int = 0
    seconds: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    ok_p95: float = 0.0  # latency of 200s only
    refused_p95: float = 0.0  # latency of 429s only
    status: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = 0.0  # the highest of the rounds
    client_cpu_share: float = 0.0  # the load generator's CPU / all the machine's cores
    client_cpu_of_busy: float = 0.0  # the load generator's CPU / the CPU busy meanwhile
    _samples: list[Sample] = field(default_factory=list, repr=False)
    _client_cpu: float = 0.0
    _busy_cpu: float = 0.0

    def add(self, run: Measured) -> None:
        ok = sum(1 for code, _ in run.samples if code == 200)
        self.rounds.append(round(ok * self.items / run.seconds * 60, 1) if run.seconds else 0.0)
        self._samples += run.samples
        self.seconds = round(self.seconds + run.seconds, 2)
        self._client_cpu += run.client_cpu_s
        self._busy_cpu += run.machine_cpu_s
        self.peak_rss_mb = max(self.peak_rss_mb, round(run.peak_rss_kb / 1024))
        self._summarise()

    def _summarise(self) -> None:
        lat = [s for _, s in self._samples]
        self.requests = len(self._samples)
        self.per_min = round(statistics.median(self.rounds), 1)
        self.p50, self.p95, self.p99 = (round(percentile(lat, q), 4) for q in (0.5, 0.95, 0.99))
        self.ok_p95 = round(percentile([s for c, s in self._samples if c == 200], 0.95), 4)
        self.refused_p95 = round(percentile([s for c, s in self._samples if c == 429], 0.95), 4)
        self.status = {str(k): v for k, v in sorted(Counter(c for c, _ in self._samples).items())}
        cores = os.cpu_count() or 1
        self.client_cpu_share = round(self._client_cpu / (self.seconds * cores), 3) \
            if self.seconds else 0.0
        self.client_cpu_of_busy = round(self._client_cpu / self._busy_cpu, 3) \
            if self._busy_cpu else 0.0

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
