"""The stack bench: every mode in turn, round after round, each after the same warm-up.

Rounds interleave the modes, so that anything else running on the machine falls on all
of them alike; each round starts the mode's processes afresh. A row's throughput is the
median of its rounds (the JSON keeps each round), its latencies are pooled.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader

from . import documents, peers
from .load import (
    Call,
    Measured,
    Row,
    Sample,
    batch_call,
    closed,
    http_call,
    http_clients,
    measure,
    open_model,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
CONVERT = "/forms/libreoffice/convert"
Load = Callable[[Call], Awaitable[tuple[list[Sample], float]]]


@dataclass
class Settings:
    """What one invocation measures; `gendoc bench --help` documents each."""

    modes: list[str]
    rounds: int
    concurrency: int
    duration: float
    warmup: float
    open_duration: float
    rates: list[float]
    overload: bool
    pool_size: int
    sizes: list[str]
    size_peers: list[str]
    size_concurrency: int
    unoconverter: str  # Gotenberg's, where a mode does not name one
    batch_invoices: int = 200  # one-page invoices per batch request (gendoc-batch)
    batch_contracts: int = 50  # three-page contracts per batch request (gendoc-batch)
    batch_concurrency: int = 2  # clients posting batches at once


class Bench:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.s = settings
        self.workdir = workdir
        self.rows: dict[tuple[str, str, str], Row] = {}  # the invoice, every mode
        self.size_rows: dict[tuple[str, str], Row] = {}  # (peer, document)
        self.descriptions: dict[str, str] = {}
        self.pages: dict[str, int] = {}
        self.overload_rate = 0.0
        self.failures: list[str] = []
        batch = ["contract3"] if "gendoc-batch" in settings.modes else []
        self.docs = {name: documents.ALL[name]() for name in
                     dict.fromkeys(["invoice", *settings.sizes, *batch])}
        self.rendered = {name: doc.rendered() for name, doc in self.docs.items()}

    # -- one measured run ---------------------------------------------------------------
    def _row(self, mode: str, model: str, load: str) -> Row:
        return self.rows.setdefault((mode, model, load), Row(mode, model, load))

    def _size_row(self, peer: str, document: str, load: str) -> Row:
        return self.size_rows.setdefault((peer, document), Row(peer, "closed", load, document))

    def _record(self, row: Row, run: Measured) -> None:
        row.add(run)
        print(f"  {row.mode} {row.model} {row.load} {row.document}: round "
              f"{len(row.rounds)}: {row.rounds[-1]:.0f}/min ok, {_codes(run)}",
              file=sys.stderr, flush=True)

    def _http(self, target: peers.Target, request: dict[str, Any], pdfs: list[bytes] | None,
              runs: list[tuple[Row, Load]], concurrency: int = 0, items: int = 0) -> None:
        """The warm-up (the closed load of `concurrency` clients), then each (row, load) in
        turn, on one event loop and its clients; PDF answers must be PDFs (see http_call),
        a batch's (`items`) a zip of that many PDFs (see batch_call)."""
        async def go() -> None:
            clients = http_clients(target.urls)
            try:
                call = batch_call(clients, request, items, pdfs if pdfs is not None else []) \
                    if items else http_call(clients, request, pdfs)
                await closed(call, concurrency or self.s.concurrency, self.s.warmup)
                for row, load in runs:
                    self._record(row, await measure(load(call), target.pids))
            finally:
                for client in clients:
                    await client.aclose()

        asyncio.run(go())

    # -- the modes ----------------------------------------------------------------------
    def cold(self) -> None:
        self.descriptions["cold"] = "one `soffice --convert-to pdf` per document, fresh profile"
        call = peers.cold_call(self.rendered["invoice"], self.workdir)
        for clients in dict.fromkeys((1, os.cpu_count() or 1)):
            async def go(c: int = clients) -> Measured:
                await closed(call, c, self.s.warmup)  # the same warm-up as every mode
                return await measure(closed(call, c, self.s.duration), [])

            self._record(self._row("cold", "closed", f"c={clients}"), asyncio.run(go()))

    def converter_mode(self, mode: str, target: peers.Target, document: str = "invoice",
                       size: bool = False) -> None:
        """DOCX in, PDF out, straight to a converter (ours or Gotenberg)."""
        c = self.s.size_concurrency if size else self.s.concurrency
        request = {"method": "POST", "url": CONVERT,
                   "files": {"files": (f"{document}.docx", self.rendered[document], DOCX)}}
        row = self._size_row(mode, document, f"c={c}") if size else \
            self._row(mode, "closed", f"c={c}")
        pdfs: list[bytes] = []
        self._http(target, request, pdfs, [(row, _closed_load(c, self.s.duration))], c)
        if pdfs:
            # Each peer's own count of pages: the table shows it if two layouts differ.
            row.pages = len(PdfReader(io.BytesIO(pdfs[0])).pages)
            self.pages.setdefault(document, row.pages)

    def gendoc(self) -> None:
        with peers.running(peers.stack(self.workdir, self.s.pool_size)) as target:
            self.descriptions["gendoc"] = target.description + ", render + convert, PDF out"
            self.descriptions["gendoc-docx"] = target.description + ", render only, DOCX out"
            self._upload_invoice(target)
            for mode, fmt in (("gendoc", "pdf"), ("gendoc-docx", "docx")):
                if mode in self.s.modes:
                    self._gendoc_format(target, mode, fmt)
            if "gendoc-batch" in self.s.modes:
                self._gendoc_batches(target)

    def _gendoc_batches(self, target: peers.Target) -> None:
        """Batches through POST /v1/render/batch (items converted as merged documents),
        beside the same documents one request each: `gendoc` for the invoice,
        `gendoc-contract3` for the contract, in the same stack and round."""
        contract = self.docs["contract3"]
        httpx.put(f"{target.urls[0]}/v1/templates/contract3", content=contract.template,
                  headers={"content-type": DOCX}).raise_for_status()
        single = {"method": "POST", "url": "/v1/render",
                  "json": {"template": "contract3", "data": contract.data, "format": "pdf"}}
        self.descriptions["gendoc-contract3"] = "the full stack, one 3-page contract a request"
        single_row = self._row("gendoc-contract3", "closed", f"c={self.s.concurrency}")
        single_row.document = "contract3"
        pdfs: list[bytes] = []
        self._http(target, single, pdfs,
                   [(single_row, _closed_load(self.s.concurrency, self.s.duration))])
        if pdfs:
            single_row.pages = len(PdfReader(io.BytesIO(pdfs[0])).pages)
            self.pages.setdefault("contract3", single_row.pages)
        for mode, name, count in (("gendoc-batch", "invoice", self.s.batch_invoices),
                                  ("gendoc-batch-contract3", "contract3",
                                   self.s.batch_contracts)):
            self.descriptions[mode] = (f"the full stack, {count} {self.docs[name].label}s a "
                                       "batch request (POST /v1/render/batch), zip of PDFs")
            request = {"method": "POST", "url": "/v1/render/batch",
                       "json": {"template": name, "items": [self.docs[name].data] * count}}
            c = self.s.batch_concurrency
            row = self._row(mode, "closed", f"c={c}")
            row.items, row.document = count, name
            pdfs = []
            self._http(target, request, pdfs, [(row, _closed_load(c, self.s.duration))], c,
                       items=count)
            if pdfs:
                row.pages = len(PdfReader(io.BytesIO(pdfs[0])).pages)
                self.pages.setdefault(name, row.pages)

    def gendoc_s3(self) -> None:
        """DOCX out of a hot template kept in S3, to compare with `gendoc-docx` (the
        directory store): rendering is where the store is read, conversion never is."""
        with peers.running(peers.s3_stack(self.workdir, self.s.pool_size)) as target:
            self.descriptions["gendoc-docx-s3"] = target.description + \
                ", render only, DOCX out"
            self._upload_invoice(target)
            self._gendoc_format(target, "gendoc-docx-s3", "docx")

    def _upload_invoice(self, target: peers.Target) -> None:
        httpx.put(f"{target.urls[0]}/v1/templates/invoice",
                  content=self.docs["invoice"].template,
                  headers={"content-type": DOCX}).raise_for_status()

    def _gendoc_format(self, target: peers.Target, mode: str, fmt: str) -> None:
        request = {"method": "POST", "url": "/v1/render",
                   "json": {"template": "invoice", "data": self.docs["invoice"].data,
                            "format": fmt}}
        closed_row = self._row(mode, "closed", f"c={self.s.concurrency}")
        runs: list[tuple[Row, Load]] = [
            (closed_row, _closed_load(self.s.concurrency, self.s.duration))]
        if mode == "gendoc":
            for rate in self.s.rates:
                runs.append((self._row(mode, "open", f"{rate:.0f}/min"),
                             _open_load(rate, self.s.open_duration)))
        self._http(target, request, [] if fmt == "pdf" else None, runs)
        if mode == "gendoc" and self.s.overload:
            # Twice the capacity of the first round, the same rate in every round.
            self.overload_rate = self.overload_rate or round(2 * closed_row.rounds[0])
            if self.overload_rate:
                row = self._row(mode, "overload", f"{self.overload_rate:.0f}/min")
                self._http(target, request, [],
                           [(row, _open_load(self.overload_rate, self.s.open_duration))])

    def gotenberg(self, mode: str) -> None:
        config = peers.GotenbergConfig.parse(mode)
        with peers.running(peers.gotenberg(self.workdir, config, self.s.unoconverter)) as t:
            self.descriptions[mode] = t.description
            self.converter_mode(mode, t)

    def single(self) -> None:
        with peers.running(peers.converter(self.workdir, 1)) as target:
            self.descriptions["single"] = "one warm LibreOffice of ours: " + \
                target.description + ", over HTTP"
            self.converter_mode("single", target)

    def sizes(self, peer: str) -> None:
        if peer == "converter":
            target = peers.converter(self.workdir, self.s.pool_size)
        else:
            target = peers.gotenberg(self.workdir, peers.GotenbergConfig.parse(peer),
                                     self.s.unoconverter)
        with peers.running(target):
            self.descriptions[peer] = target.description
            for document in self.s.sizes:
                self.converter_mode(peer, target, document, size=True)

    # -- the whole run ---------------------------------------------------------------------
    def _runner(self, mode: str) -> Callable[[], None]:
        if mode == "cold":
            return self.cold
        if mode == "single":
            return self.single
        if mode.startswith("gotenberg"):
            return lambda: self.gotenberg(mode)
        family = [m for m in self.s.modes if m in ("gendoc", "gendoc-docx", "gendoc-batch")]
        if family and mode == family[0]:
            return self.gendoc  # the first of them runs all of them, on one stack
        if mode == "gendoc-docx-s3":
            return self.gendoc_s3
        return lambda: None  # gendoc-docx and gendoc-batch run with gendoc

    def _guarded(self, what: str, round_: int, step: Callable[[], None]) -> None:
        """One mode's round; if it breaks (a peer that will not start, say), the failure is
        recorded and shown with the results, and the other modes still run."""
        try:
            step()
        except Exception as exc:
            failure = f"{what}, round {round_ + 1}: {type(exc).__name__}: {exc}"
            self.failures.append(failure)
            print(f"  FAILED {failure}", file=sys.stderr, flush=True)

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        for round_ in range(self.s.rounds):
            print(f"bench: round {round_ + 1}/{self.s.rounds}", file=sys.stderr, flush=True)
            for mode in self.s.modes:
                self._guarded(mode, round_, self._runner(mode))
            for peer in self.s.size_peers if self.s.sizes else []:
                self._guarded(f"sizes {peer}", round_, functools.partial(self.sizes, peer))
        rows = [r.public() for r in self.rows.values()]
        sizes = [r.public() for r in self.size_rows.values()]
        return {
            "date": time.strftime("%Y-%m-%d"),
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "seconds_total": round(time.monotonic() - started),
            "load_average_end": os.getloadavg(),
            "settings": {k: v for k, v in self.s.__dict__.items()},
            "gotenberg_unoconverter": self.s.unoconverter,
            "descriptions": self.descriptions,
            "documents": {name: {"label": doc.label, "pages": self.pages.get(name)}
                          for name, doc in self.docs.items()},
            "rows": rows,
            "sizes": sizes,
            "ratios": ratios(rows),
            "store_ratio": store_ratio(rows),
            "batch_ratios": batch_ratios(rows),
            "failures": self.failures,
        }


def _codes(run: Measured) -> dict[int, int]:
    return dict(sorted(Counter(code for code, _ in run.samples).items()))


def _closed_load(concurrency: int, duration: float) -> Load:
    return lambda call: closed(call, concurrency, duration)


def _open_load(rate: float, duration: float) -> Load:
    return lambda call: open_model(call, rate, duration)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def closed_rate(rows: list[dict[str, Any]], mode: str) -> float:
    rates = [r["per_min"] for r in rows if r["mode"] == mode and r["model"] == "closed"]
    return max(rates) if rates else 0.0


def ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """gendoc's closed-model PDFs/min over each baseline's (the better cold run)."""
    gendoc = closed_rate(rows, "gendoc")
    out = {}
    for base in dict.fromkeys(r["mode"] for r in rows):
        if base.startswith("gendoc"):
            continue
        if (b := closed_rate(rows, base)) and gendoc:
            out[f"gendoc/{base}"] = round(gendoc / b, 2)
    return out


def batch_ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """PDFs/min of each batch mode over the same document one request each."""
    out = {}
    for batch, single in (("gendoc-batch", "gendoc"), ("gendoc-batch-contract3",
                                                       "gendoc-contract3")):
        if (b := closed_rate(rows, batch)) and (s := closed_rate(rows, single)):
            out[f"{batch}/{single}"] = round(b / s, 2)
    return out


def store_ratio(rows: list[dict[str, Any]]) -> float | None:
    """DOCX/min with templates in S3 over the same with the directory store (issue: within
    5 %), or None when the run had not both."""
    directory, s3 = closed_rate(rows, "gendoc-docx"), closed_rate(rows, "gendoc-docx-s3")
    return round(s3 / directory, 3) if directory and s3 else None


def run(settings: Settings) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="gendoc-bench-"))
    try:
        return Bench(settings, workdir).run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
