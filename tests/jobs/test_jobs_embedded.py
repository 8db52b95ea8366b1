"""Async jobs on the embedded queue (SQLite on disk): real service processes on 127.0.0.1."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
from conftest import start_service
from jobs.jobs_support import (
    metric,
    numbers_in,
    result_zip,
    status,
    store_template,
    submit,
    wait_final,
)

from gendoc.readiness import wait_until

# `client`: tests/conftest.py's, on the suite's shared service (default settings, the
# embedded queue under its store); the tests below that restart a service start their own.


def test_a_job_renders_every_item_and_a_bad_item_fails_alone(client: httpx.Client) -> None:
    name = store_template(client, "Item {{ n }} for {{ who.name }}")
    items = [{"n": i, "who": {"name": f"p{i}"}} for i in range(40)]
    items[7] = {"n": 7}  # who.name missing: strict mode fails this item only
    job = submit(client, name, items, strict=True, filename="letters")
    assert job["status"] in ("queued", "running") and job["total"] == 40
    final = wait_final(client, job["id"])
    assert final["status"] == "succeeded", final
    assert (final["done"], final["failed"]) == (39, 1)
    assert final["finished"] and final["created"] and final["deliveries"] == []
    [error] = final["errors"]
    assert error["type"].endswith("/undefined-variables") and error["item"] == 7
    assert final["result"]["url"] == f"/v1/jobs/{job['id']}/result"

    archive = result_zip(client, job["id"])
    names = archive.namelist()
    assert names[7] == "letters-0008.error.json"
    assert names[:2] == ["letters-0001.docx", "letters-0002.docx"] and len(names) == 40
    assert numbers_in(archive, "letters") == [i for i in range(40) if i != 7]
    assert final["result"]["size"] == len(client.get(f"/v1/jobs/{job['id']}/result").content)

    item = client.get(f"/v1/jobs/{job['id']}/items/3")
    assert item.status_code == 200 and item.content[:2] == b"PK"
    assert 'filename="letters-0004.docx"' in item.headers["content-disposition"]
    bad = client.get(f"/v1/jobs/{job['id']}/items/7")
    assert bad.status_code == 422 and bad.json()["item"] == 7
    assert bad.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/jobs/{job['id']}/items/40").status_code == 404


def test_job_requests_are_checked_before_they_are_queued(client: httpx.Client) -> None:
    name = store_template(client, "x")
    cases = [
        ({"template": name, "items": [], "format": "docx"}, 422, "invalid-request"),
        ({"template": name, "items": [{}], "format": "docx", "merge": True}, 422,
         "invalid-request"),
        ({"template": name, "items": [{}], "format": "docx", "color": "red"}, 422,
         "invalid-request"),
        ({"template": "no-such-template", "items": [{}], "format": "docx"}, 404,
         "template-not-found"),
        ({"template": name, "items": [{}], "format": "pdf"}, 501, "format-not-implemented"),
        ({"template": name, "items": [{}], "format": "docx", "locale": "xx_YY_ZZ"}, 422,
         "invalid-request"),
        ({"template": name, "items": [{}], "format": "docx", "pdf": {"ua": True}}, 422,
         "invalid-request"),
    ]
    for body, code, slug in cases:
        r = client.post("/v1/jobs", json=body)
        assert (r.status_code, r.json()["type"].rsplit("/", 1)[1]) == (code, slug), body
    missing = client.get("/v1/jobs/0123456789abcdef")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/job-not-found")


def test_cancel_leaves_items_not_started_unrendered(client: httpx.Client) -> None:
    name = store_template(client, "Item {{ n }}")
    job = submit(client, name, [{"n": i} for i in range(3000)])
    r = client.delete(f"/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # Chunks already in a worker finish; nothing else starts.
    wait_until(lambda: metric(client, "gendoc_jobs_backlog") == 0, 60, what="backlog drained")
    first = status(client, job["id"])
    assert first["status"] == "cancelled" and first["done"] + first["failed"] < 3000
    assert "result" not in first
    late = client.get(f"/v1/jobs/{job['id']}/result")
    assert late.status_code == 409 and late.json()["job_status"] == "cancelled"
    assert client.delete(f"/v1/jobs/{job['id']}").json()["done"] == first["done"]


def test_the_embedded_queue_survives_restarts_of_the_service(tmp_path: Path) -> None:
    """Graceful stop (SIGTERM) and kill -9 mid-job: the job completes, each item once."""
    env = {"GENDOC_JOB_VISIBILITY_TIMEOUT": "4", "GENDOC_JOB_CHUNK_ITEMS": "10"}
    server = start_service(tmp_path, env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            name = store_template(c, "Item {{ n }}")
            job = submit(c, name, [{"n": i} for i in range(600)])
            wait_until(lambda: status(c, job["id"])["done"] > 50, 120, what="first items done")
        server.stop()
        server = start_service(tmp_path, env=env)
        with httpx.Client(base_url=server.url, timeout=30) as c:
            wait_until(lambda: status(c, job["id"])["done"] > 300, 120, what="more items")
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server = start_service(tmp_path, env=env)
        with httpx.Client(base_url=server.url, timeout=30) as c:
            final = wait_final(c, job["id"])
            assert (final["status"], final["done"], final["failed"]) == ("succeeded", 600, 0)
            assert sorted(numbers_in(result_zip(c, job["id"]), "x")) == list(range(600))
    finally:
        server.stop()


def test_retention_deletes_finished_jobs_and_their_results(tmp_path: Path) -> None:
    server = start_service(tmp_path, env={"GENDOC_JOB_RETENTION": "2"})
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            name = store_template(c, "Item {{ n }}")
            job = submit(c, name, [{"n": i} for i in range(5)])
            assert wait_final(c, job["id"])["status"] == "succeeded"
            results = tmp_path / "store" / ".jobs" / "results" / job["id"]
            assert (results / "result.zip").is_file()
            wait_until(lambda: c.get(f"/v1/jobs/{job['id']}").status_code == 404, 60,
                       what="job deleted after its retention")
            assert not results.exists()
    finally:
        server.stop()


def test_documents_that_cannot_be_stored_are_delivered_again(tmp_path: Path) -> None:
    """A chunk's documents are written after its slot is released: when the results
    cannot be written, its items go back to the queue and are done again later."""
    results = tmp_path / "store" / ".jobs" / "results"
    results.parent.mkdir(parents=True)
    results.write_text("a file where the results directory should be")
    server = start_service(tmp_path, env={"GENDOC_JOB_CHUNK_ITEMS": "10"})
    try:
        assert server.log is not None
        log = server.log
        with httpx.Client(base_url=server.url, timeout=30) as c:
            name = store_template(c, "Item {{ n }}")
            job = submit(c, name, [{"n": i} for i in range(30)])
            wait_until(lambda: "Job results cannot be written" in log.read_text(), 60,
                       what="a failed write logged")
            assert status(c, job["id"])["done"] == 0
            results.unlink()
            final = wait_final(c, job["id"], timeout=120)
            assert (final["status"], final["done"], final["failed"]) == ("succeeded", 30, 0)
            assert sorted(numbers_in(result_zip(c, job["id"]), "x")) == list(range(30))
    finally:
        server.stop()
