"""`gendoc jobs submit|status|wait|result`: a client of the service's async jobs (POST /v1/jobs)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

FINAL = ("succeeded", "failed", "cancelled")


def progress_line(done: int, failed: int, total: int, width: int = 30) -> str:
    """`[#####.....]  52% 1040/2000 (3 failed)`: items answered (done or failed) of total."""
    answered = done + failed
    filled = width * answered // total if total else width
    percent = 100 * answered // total if total else 100
    line = f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {answered}/{total}"
    return line + (f" ({failed} failed)" if failed else "")


def items_of(raw: Any) -> list[dict[str, Any]]:
    """The items of a data file: a JSON list of objects, or an object with `items`."""
    items = raw.get("items") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("the data file must hold a JSON list of objects, or {\"items\": [...]}")
    return items


def _fail(response: httpx.Response, what: str) -> int:
    try:
        problem = response.json()
        print(f"gendoc jobs {what}: {response.status_code} {problem.get('title')}: "
              f"{problem.get('detail')}", file=sys.stderr)
    except ValueError:
        print(f"gendoc jobs {what}: {response.status_code}: {response.text[:500]}",
              file=sys.stderr)
    return 1


def submit(args: argparse.Namespace, client: httpx.Client) -> int:
    text = Path(args.data).read_text() if args.data != "-" else sys.stdin.read()
    body: dict[str, Any] = {"template": args.template, "items": items_of(json.loads(text)),
                            "format": args.format, "merge": args.merge}
    for field in ("version", "locale", "timezone", "filename"):
        if getattr(args, field, None):
            body[field] = getattr(args, field)
    if args.webhook:
        body["webhook"] = {"url": args.webhook}
    response = client.post("/v1/jobs", json=body)
    if response.status_code != 202:
        return _fail(response, "submit")
    job = response.json()
    print(job["id"])
    print(f"gendoc jobs: {job['total']} items queued: {response.headers['location']}",
          file=sys.stderr)
    return wait(args, client, job["id"]) if args.wait else 0


def status(args: argparse.Namespace, client: httpx.Client) -> int:
    response = client.get(f"/v1/jobs/{args.job}")
    if response.status_code != 200:
        return _fail(response, "status")
    print(json.dumps(response.json(), indent=2))
    return 0


def wait(args: argparse.Namespace, client: httpx.Client, job_id: str | None = None) -> int:
    """Poll until the job is final, drawing a progress bar on stderr; 0 when it succeeded."""
    job_id = job_id or args.job
    deadline = time.monotonic() + args.timeout
    tty = sys.stderr.isatty()
    while True:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code != 200:
            return _fail(response, "wait")
        job = response.json()
        line = progress_line(job["done"], job["failed"], job["total"])
        print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
        if job["status"] in FINAL:
            print(f"{chr(10) if tty else ''}gendoc jobs: {job_id} {job['status']}", file=sys.stderr)
            return 0 if job["status"] == "succeeded" else 1
        if time.monotonic() >= deadline:
            print(f"\ngendoc jobs: {job_id} still {job['status']} after {args.timeout:g} s",
                  file=sys.stderr)
            return 1
        time.sleep(args.interval)


def result(args: argparse.Namespace, client: httpx.Client) -> int:
    # An S3-backed service answers with a redirect to a presigned URL.
    response = client.get(f"/v1/jobs/{args.job}/result", follow_redirects=True)
    if response.status_code != 200:
        return _fail(response, "result")
    extension = "pdf" if response.headers.get("content-type") == "application/pdf" else "zip"
    output = Path(args.output or f"{args.job}.{extension}")
    output.write_bytes(response.content)
    print(f"gendoc jobs: wrote {output.resolve()} ({len(response.content)} bytes)")
    return 0


def run(args: argparse.Namespace) -> int:
    commands = {"submit": submit, "status": status, "wait": wait, "result": result}
    try:
        with httpx.Client(base_url=args.url.rstrip("/"), timeout=args.http_timeout) as client:
            return commands[args.jobs_command](args, client)
    except httpx.HTTPError as exc:
        print(f"gendoc jobs: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"gendoc jobs: {exc}", file=sys.stderr)
        return 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], url: str) -> None:
    p = sub.add_parser("jobs", help="async jobs through a running service: "
                       "submit, status, wait (with a progress bar), result")
    p.add_argument("--url", default=url, help="the service (GENDOC_URL)")
    p.add_argument("--http-timeout", type=float, default=120.0)
    p.set_defaults(func=run)
    jobs = p.add_subparsers(dest="jobs_command", required=True)

    s = jobs.add_parser("submit", help="queue a job: TEMPLATE (a stored template's name) and "
                        "ITEMS.json (a list of data objects); prints the job id")
    s.add_argument("template")
    s.add_argument("data", help="JSON file with the items, or - for standard input")
    s.add_argument("--format", choices=["pdf", "docx"], default="pdf")
    s.add_argument("--merge", action="store_true", help="one merged PDF instead of a zip")
    s.add_argument("--version", help="template version (default: the current one)")
    s.add_argument("--locale")
    s.add_argument("--timezone")
    s.add_argument("--filename", help="stem of the documents' names in the result")
    s.add_argument("--webhook", help="URL told when the job finishes")
    s.add_argument("--wait", action="store_true", help="then wait for it, as `jobs wait`")
    _add_wait_options(s)

    s = jobs.add_parser("status", help="print a job's status as JSON")
    s.add_argument("job")
    s = jobs.add_parser("wait", help="wait for a job, with a progress bar; exit 0 if it succeeded")
    s.add_argument("job")
    _add_wait_options(s)
    s = jobs.add_parser("result", help="download a job's result (zip, or merged PDF)")
    s.add_argument("job")
    s.add_argument("-o", "--output", help="file to write (default: JOB.zip or JOB.pdf)")


def _add_wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
