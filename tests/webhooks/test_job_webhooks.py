"""Job webhooks through real service processes (embedded queue, and Redis): a job's
completion is signed and delivered, retried with its webhook-id, every attempt shown
in the job's `deliveries`, retries kept across a restart of the service; a URL the
allow list refuses is 422 at submission; a redirect is recorded and not followed."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServerProcess, start_service
from jobs.jobs_support import status, store_template, submit, wait_final
from redis_server import running_redis
from standardwebhooks.webhooks import Webhook
from webhooks.receiver import Receiver, running_receiver

from gendoc.readiness import wait_until

SECRET = "whsec_" + base64.b64encode(b"gendoc-job-webhooks-secret-32byt").decode()


@pytest.fixture(params=["embedded", "redis"])
def queue_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    if request.param == "embedded":
        yield {}
        return
    with running_redis(tmp_path / "redis") as server:
        yield {"GENDOC_QUEUE_URL": server.url}


def service_env(rx: Receiver, queue_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {"GENDOC_WEBHOOK_SECRET": SECRET, "GENDOC_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "GENDOC_WEBHOOK_RETRY_BASE": "0.2", "GENDOC_WEBHOOK_RETRY_CAP": "0.4",
            "GENDOC_WEBHOOK_POLL_INTERVAL": "0.5", **queue_env, **extra}


def deliveries(client: httpx.Client, job_id: str, count: int) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = status(client, job_id)["deliveries"]
        return found if len(found) >= count else None
    got = wait_until(enough, 120, interval=0.2, what=f"{count} deliveries on job {job_id}")
    assert isinstance(got, list)
    return got


def test_a_finished_job_is_delivered_again_until_the_receiver_takes_it(
        tmp_path: Path, queue_env: dict[str, str]) -> None:
    with running_receiver(500, 500, 503, 204) as rx:
        server = start_service(tmp_path, env=service_env(rx, queue_env))
        try:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                name = store_template(c, "Item {{ n }}")
                job = submit(c, name, [{"n": i} for i in range(3)],
                             webhook={"url": rx.url})
                assert job["webhook"] == {"url": rx.url, "items": False}
                final = wait_final(c, job["id"])
                assert final["status"] == "succeeded"
                attempts = deliveries(c, job["id"], 4)
        finally:
            server.stop()
    assert [a["status"] for a in attempts] == [500, 500, 503, 204]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert len({a["webhook_id"] for a in attempts}) == 1
    assert [r.headers["webhook-id"] for r in rx.received] == [attempts[0]["webhook_id"]] * 4
    for got in rx.received:
        event = Webhook(SECRET).verify(got.body, got.headers)
        assert event["type"] == "job.succeeded"
        assert event["data"]["id"] == job["id"] and event["data"]["done"] == 3


def test_refused_targets(tmp_path: Path, queue_env: dict[str, str]) -> None:
    with running_receiver(200) as target, running_receiver(("redirect", target.url)) as rx:
        server = start_service(tmp_path, env=service_env(rx, queue_env))
        try:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                name = store_template(c, "Item {{ n }}")
                for url in ("http://elsewhere.example/hook", "http://169.254.169.254/x",
                            "file:///etc/passwd"):
                    r = c.post("/v1/jobs", json={"template": name, "items": [{"n": 1}],
                                                 "format": "docx", "webhook": {"url": url}})
                    assert r.status_code == 422, (url, r.text)
                    assert r.json()["errors"][0]["field"] == "webhook.url"
                job = submit(c, name, [{"n": 1}], webhook={"url": rx.url})
                wait_final(c, job["id"])
                (attempt,) = deliveries(c, job["id"], 1)
                assert attempt["status"] == 302 and "not followed" in attempt["error"]
                assert attempt["next_attempt"] is None
        finally:
            server.stop()
    assert len(rx.received) == 1 and target.received == []


def test_retries_survive_a_restart_of_the_service(
        tmp_path: Path, queue_env: dict[str, str]) -> None:
    with running_receiver(503) as rx:
        # Retries 2-4 s apart: the service is stopped and started in between.
        env = service_env(rx, queue_env, GENDOC_WEBHOOK_RETRY_BASE="4",
                          GENDOC_WEBHOOK_RETRY_CAP="4")
        server: ServerProcess | None = start_service(tmp_path, env=env)
        try:
            assert server is not None
            with httpx.Client(base_url=server.url, timeout=60) as c:
                name = store_template(c, "Item {{ n }}")
                job = submit(c, name, [{"n": 1}], webhook={"url": rx.url})
                deliveries(c, job["id"], 1)
            server.stop()
            server = None
            rx.script[:] = [200]
            server = start_service(tmp_path, env=env)
            with httpx.Client(base_url=server.url, timeout=60) as c:
                attempts = deliveries(c, job["id"], 2)
        finally:
            if server is not None:
                server.stop()
    assert [a["status"] for a in attempts] == [503, 200]
    assert [r.headers["webhook-id"] for r in rx.received] == [attempts[0]["webhook_id"]] * 2


def test_an_event_per_item_when_asked(tmp_path: Path) -> None:
    with running_receiver(204) as rx:
        server = start_service(tmp_path, env=service_env(rx, {}))
        try:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                name = store_template(c, "Item {{ n.m }}")
                # Item 1 lacks n.m under strict mode: it fails alone, with its problem.
                job = submit(c, name, [{"n": {"m": 0}}, {"n": {}}, {"n": {"m": 2}}],
                             strict=True, webhook={"url": rx.url, "items": True})
                wait_final(c, job["id"])
                deliveries(c, job["id"], 4)
        finally:
            server.stop()
    events = {r.headers["webhook-id"]: Webhook(SECRET).verify(r.body, r.headers)
              for r in rx.received}
    jid = job["id"]
    assert set(events) == {f"msg_{jid}", f"msg_{jid}_0", f"msg_{jid}_1", f"msg_{jid}_2"}
    assert events[f"msg_{jid}_0"]["type"] == "job.item.succeeded"
    assert events[f"msg_{jid}_0"]["data"]["url"] == f"/v1/jobs/{jid}/items/0"
    failed = events[f"msg_{jid}_1"]
    assert failed["type"] == "job.item.failed"
    assert failed["data"]["problem"]["type"].endswith("/undefined-variables")
    assert events[f"msg_{jid}"]["type"] == "job.succeeded"
