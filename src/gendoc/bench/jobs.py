"""`gendoc bench jobs`: one large async job against synchronous batches, in the same run.

On the local stack (converter + service on 127.0.0.1, the embedded queue), with
the bench's one-page invoice: `--sync-items` documents through
POST /v1/render/batch (`--batch-size` items a request, `--concurrency` clients,
429s waited out as Retry-After says), half before and half after one job of
`--items` items through POST /v1/jobs, polled until it is finished. Reports each one's documents per
minute, their ratio (the target: the job at least 0.9x the batches), the job's
time to complete, and the peak resident memory of the stack's processes
(service, render workers, converter, LibreOffice) during each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from . import documents, peers
from .load import PeakRss

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def per_minute(documents_done: int, seconds: float) -> float:
    return 60.0 * documents_done / seconds if seconds > 0 else 0.0


def batch_sizes(total: int, size: int) -> list[int]:
    """`total` items cut into batches of at most `size`."""
    return [min(size, total - start) for start in range(0, total, size)]


def _sync_batches(url: str, data: dict[str, Any], fmt: str, total: int, size: int,
                  concurrency: int) -> tuple[int, int]:
    """Documents rendered through POST /v1/render/batch; (documents, 429s waited out)."""
    refusals = 0

    def one(n: int) -> int:
        nonlocal refusals
        body = {"template": "invoice", "items": [data] * n, "format": fmt}
        with httpx.Client(base_url=url, timeout=600) as client:
            while True:
                r = client.post("/v1/render/batch", json=body)
                if r.status_code in (429, 503) and "retry-after" in r.headers:
                    refusals += 1
                    time.sleep(float(r.headers["retry-after"]))
                    continue
                r.raise_for_status()
                return n
    with ThreadPoolExecutor(concurrency) as pool:
        return sum(pool.map(one, batch_sizes(total, size))), refusals


def _timed_batches(url: str, data: dict[str, Any], fmt: str, total: int, size: int,
                   concurrency: int) -> tuple[int, int, float]:
    started = time.monotonic()
    done, refusals = _sync_batches(url, data, fmt, total, size, concurrency)
    return done, refusals, time.monotonic() - started


def _job(url: str, data: dict[str, Any], fmt: str, items: int) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=600) as client:
        r = client.post("/v1/jobs", json={"template": "invoice", "items": [data] * items,
                                          "format": fmt})
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return dict(job)
            time.sleep(1.0)


def run(items: int, sync_items: int, fmt: str, batch_size: int, concurrency: int,
        pool_size: int) -> dict[str, Any]:
    invoice = documents.invoice()
    with tempfile.TemporaryDirectory(prefix="gendoc-bench-jobs-") as tmp, \
            peers.running(peers.stack(Path(tmp), pool_size)) as target:
        url = target.urls[0]
        httpx.put(f"{url}/v1/templates/invoice", content=invoice.template,
                  headers={"content-type": DOCX}).raise_for_status()
        _sync_batches(url, invoice.data, fmt, batch_size, batch_size, 1)  # warm-up
        # The batches run half before and half after the job, so that whatever else the
        # machine does while the long job runs falls on both alike.
        first, second = sync_items // 2, sync_items - sync_items // 2
        with PeakRss(target.pids) as sync_rss:
            done, refusals, sync_seconds = _timed_batches(url, invoice.data, fmt, first,
                                                          batch_size, concurrency)
        with PeakRss(target.pids) as job_rss:
            started = time.monotonic()
            job = _job(url, invoice.data, fmt, items)
            job_seconds = time.monotonic() - started
        with PeakRss(target.pids) as after_rss:
            more, more_refusals, more_seconds = _timed_batches(
                url, invoice.data, fmt, second, batch_size, concurrency)
        done, refusals, sync_seconds = done + more, refusals + more_refusals, \
            sync_seconds + more_seconds
        sync_rss.peak_kb = max(sync_rss.peak_kb, after_rss.peak_kb)
        description = target.description
    sync_rate = per_minute(done, sync_seconds)
    job_rate = per_minute(job["done"], job_seconds)
    return {
        "stack": description, "format": fmt, "cpus": os.cpu_count(),
        "sync": {"documents": done, "batch_size": batch_size, "concurrency": concurrency,
                 "seconds": round(sync_seconds, 1), "per_min": round(sync_rate),
                 "refusals_429": refusals, "peak_rss_mb": sync_rss.peak_kb // 1024},
        "job": {"items": items, "done": job["done"], "failed": job["failed"],
                "status": job["status"], "seconds": round(job_seconds, 1),
                "per_min": round(job_rate), "peak_rss_mb": job_rss.peak_kb // 1024},
        "ratio": round(job_rate / sync_rate, 3) if sync_rate else None,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gendoc bench jobs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=10_000, help="items of the job")
    p.add_argument("--sync-items", type=int, default=2_000,
                   help="documents of the synchronous batches (the same rate is compared)")
    p.add_argument("--format", choices=["pdf", "docx"], default="pdf")
    p.add_argument("--batch-size", type=int, default=100, help="items per batch request")
    p.add_argument("--concurrency", type=int, default=4, help="batch requests at once")
    p.add_argument("--pool-size", type=int, default=os.cpu_count() or 1,
                   help="converter pool size")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    result = run(args.items, args.sync_items, args.format, args.batch_size, args.concurrency,
                 args.pool_size)
    print(f"sync batches: {result['sync']['documents']} {args.format} in "
          f"{result['sync']['seconds']} s = {result['sync']['per_min']}/min, peak RSS "
          f"{result['sync']['peak_rss_mb']} MB")
    print(f"job: {result['job']['done']}/{args.items} {args.format} in "
          f"{result['job']['seconds']} s = {result['job']['per_min']}/min, peak RSS "
          f"{result['job']['peak_rss_mb']} MB ({result['job']['status']})")
    print(f"job / sync: {result['ratio']}x (target >= 0.9)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["job"]["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
