"""The sender over a real outbox (SQLite, and a real redis-server) and a real receiver:
retries keep the webhook-id, every attempt is recorded, retries survive a restart of
the sender, and two senders sharing Redis deliver each event once."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gendoc_service.outbox import Outbox, Pending, open_outbox
from gendoc_service.queue import JobQueue, JobRecord
from gendoc_service.queue_redis import RedisQueue
from gendoc_service.queue_sqlite import SqliteQueue
from gendoc_service.webhooks import (
    AllowList,
    Attempt,
    Outcome,
    SenderConfig,
    WebhookSender,
    next_attempt_in,
    parse_secret,
)
from redis_server import RedisServer, running_redis
from standardwebhooks.webhooks import Webhook
from webhooks.receiver import Receiver, running_receiver

from gendoc.readiness import wait_until

SECRET = "whsec_" + base64.b64encode(b"gendoc-test-secret-32-bytes-long").decode()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def outbox_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return ""
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client().flushall()
    return server.url


def config(rx: Receiver, **kw: Any) -> SenderConfig:
    # Retries after 50-100 ms, so a test sees several without waiting for hours.
    kw.setdefault("allow", AllowList.parse(f"127.0.0.1:{rx.port}"))
    return SenderConfig(key=parse_secret(SECRET), retry_base=0.1, retry_cap=0.2,
                        poll_interval=0.2, **kw)


class Recorded:
    """The job's `deliveries`, as the sender records them."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, job: str, attempt: dict[str, Any]) -> None:
        self.attempts.append((job, attempt))

    async def until(self, count: int) -> None:
        async with asyncio.timeout(60):
            while len(self.attempts) < count:
                await asyncio.sleep(0.02)


def test_the_schedule_ends_on_delivery_refusal_or_the_last_attempt() -> None:
    ok = Outcome(Attempt("m", 1, "t", 0.1, 200), final=True)
    failed = Outcome(Attempt("m", 1, "t", 0.1, 500, "receiver answered 500"), final=False)
    assert next_attempt_in(1, ok, 0.5, max_attempts=10, base=10, cap=100) is None
    assert next_attempt_in(10, failed, 0.5, max_attempts=10, base=10, cap=100) is None
    assert next_attempt_in(2, failed, 0.5, max_attempts=10, base=10, cap=100) == 30


def test_a_receiver_failing_three_times_gets_the_same_event_again(
        outbox_url: str, tmp_path: Path) -> None:
    with running_receiver(500, 502, 503, 200) as rx:
        outbox = open_outbox(outbox_url, tmp_path)
        recorded = Recorded()

        async def scenario() -> str:
            sender = WebhookSender(config(rx), outbox, recorded)
            sender.start()
            try:
                msg_id = await sender.send("job1", rx.url, "job.succeeded", {"id": "job1"})
                await recorded.until(4)
            finally:
                await sender.stop()
            return msg_id

        msg_id = asyncio.run(scenario())
        outbox.close()
    assert [r.headers["webhook-id"] for r in rx.received] == [msg_id] * 4
    assert len({r.body for r in rx.received}) == 1
    for got in rx.received:  # each attempt signed afresh, each verified independently
        event = Webhook(SECRET).verify(got.body, got.headers)
        assert event["type"] == "job.succeeded" and event["data"] == {"id": "job1"}
    assert [job for job, _ in recorded.attempts] == ["job1"] * 4
    attempts = [a for _, a in recorded.attempts]
    assert [a["status"] for a in attempts] == [500, 502, 503, 200]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert all(a["webhook_id"] == msg_id and a["duration"] > 0 for a in attempts)
    assert attempts[0]["error"] == "receiver answered 500" and attempts[-1]["error"] is None
    assert attempts[0]["next_attempt"] is not None and attempts[-1]["next_attempt"] is None


def test_refusals_are_recorded_once_and_not_retried(outbox_url: str, tmp_path: Path) -> None:
    with running_receiver(200) as rx, running_receiver(("redirect", rx.url)) as redirecting:
        outbox = open_outbox(outbox_url, tmp_path)
        recorded = Recorded()

        async def scenario() -> None:
            sender = WebhookSender(config(rx, max_attempts=3, allow=AllowList.parse("127.0.0.1")),
                                   outbox, recorded)
            sender.start()
            try:
                await sender.send("j", "http://elsewhere.example/", "job.failed", {})
                await sender.send("j", redirecting.url, "job.failed", {})
                await recorded.until(2)
                # Nothing is left to send: both are removed, not rescheduled.
                await asyncio.to_thread(wait_until, lambda: outbox.next_due() is None, 30)
            finally:
                await sender.stop()

        asyncio.run(scenario())
        outbox.close()
        errors = sorted(a["error"] for _, a in recorded.attempts)
        assert "not followed" in errors[0] or "not followed" in errors[1]
        assert any("GENDOC_WEBHOOK_ALLOWED_HOSTS" in e for e in errors)
        assert rx.received == [] and len(redirecting.received) == 1


def test_retries_survive_a_restart_of_the_sender(outbox_url: str, tmp_path: Path) -> None:
    with running_receiver(503) as rx:
        recorded = Recorded()

        async def before_restart() -> str:
            outbox = open_outbox(outbox_url, tmp_path)
            # Hours between attempts, as in production: the sender stops meanwhile.
            sender = WebhookSender(SenderConfig(key=parse_secret(SECRET),
                                                allow=AllowList.parse(f"127.0.0.1:{rx.port}"),
                                                retry_base=3600, poll_interval=0.2),
                                   outbox, recorded, draw=lambda: 0.0)
            sender.start()
            try:
                msg_id = await sender.send("j", rx.url, "job.succeeded", {"n": 1})
                await recorded.until(1)
            finally:
                await sender.stop()
                outbox.close()
            return msg_id

        msg_id = asyncio.run(before_restart())
        rx.script[:] = [200]

        async def after_restart() -> None:
            outbox: Outbox = open_outbox(outbox_url, tmp_path)
            due = await asyncio.to_thread(outbox.next_due)
            assert due is not None
            # The retry is kept 30 min ahead; bring it due now (as time would).
            outbox.reschedule(msg_id, 1, 0.0)
            sender = WebhookSender(config(rx), outbox, recorded)
            sender.start()
            try:
                await recorded.until(2)
            finally:
                await sender.stop()
                outbox.close()

        asyncio.run(after_restart())
    assert [r.headers["webhook-id"] for r in rx.received] == [msg_id, msg_id]
    assert [a["status"] for _, a in recorded.attempts] == [503, 200]
    assert recorded.attempts[1][1]["attempt"] == 2


def test_two_senders_sharing_redis_deliver_each_event_once(
        redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.client().flushall()
    with running_receiver(200) as rx:
        recorded = Recorded()

        async def scenario() -> set[str]:
            a = WebhookSender(config(rx), open_outbox(redis_server.url, tmp_path), recorded)
            b = WebhookSender(config(rx), open_outbox(redis_server.url, tmp_path), recorded)
            a.start()
            b.start()
            try:
                ids = {await (a if i % 2 else b).send(f"j{i}", rx.url, "job.succeeded", {})
                       for i in range(30)}
                await recorded.until(30)
            finally:
                await a.stop()
                await b.stop()
            return ids

        ids = asyncio.run(scenario())
    assert sorted(r.headers["webhook-id"] for r in rx.received) == sorted(ids)


def test_a_finished_job_whose_event_was_lost_is_announced_once(
        outbox_url: str, tmp_path: Path) -> None:
    """A process killed between a job's last write and its event's: the sender finds the
    job (finished, a webhook, no delivery) and sends its event, once."""
    with running_receiver(204) as rx:
        async def scenario() -> tuple[str, int, list[dict[str, Any]]]:
            queue: JobQueue = (RedisQueue(outbox_url) if outbox_url
                               else SqliteQueue(tmp_path / "queue.sqlite3"))
            await queue.open()
            outbox = open_outbox(outbox_url, tmp_path)
            try:
                record = JobRecord(id="lostevent", total=1, spec={
                    "template": "t", "format": "docx", "webhook": {"url": rx.url}})
                await queue.create(record, [{}])
                await queue.create(JobRecord(id="nohook", total=1, spec={
                    "template": "t", "format": "docx"}), [{}])
                assert await queue.cancel("lostevent") is not None  # nobody announced it
                assert await queue.cancel("nohook") is not None
                sender = WebhookSender(config(rx), outbox, queue.add_delivery)
                sender.start(queue)
                try:
                    found = await asyncio.to_thread(
                        wait_until, lambda: len(rx.received) == 1, 30)
                    assert found
                    again = await sender.recover(queue)  # delivered: nothing to add
                finally:
                    await sender.stop()
                job = await queue.get("lostevent")
                assert job is not None
                return job.status, again, job.deliveries
            finally:
                outbox.close()
                await queue.close()

        status, again, deliveries = asyncio.run(scenario())
    assert status == "cancelled" and again == 0
    assert [d["status"] for d in deliveries] == [204]
    (got,) = rx.received
    assert got.headers["webhook-id"] == "msg_lostevent"
    event = Webhook(SECRET).verify(got.body, got.headers)
    assert event["type"] == "job.cancelled" and event["data"]["id"] == "lostevent"


def test_an_event_id_is_kept_once(outbox_url: str, tmp_path: Path) -> None:
    outbox = open_outbox(outbox_url, tmp_path)
    try:
        assert outbox.add(Pending("msg_x", "j", "http://h/", b"1"), 5.0) is True
        assert outbox.add(Pending("msg_x", "j", "http://h/", b"2"), 1.0) is False
        assert outbox.next_due() == 5.0
        (claimed,) = outbox.claim(10.0, 60.0, 10)
        assert claimed.body == b"1"
    finally:
        outbox.close()
