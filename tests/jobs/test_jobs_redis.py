"""Async jobs through Redis Streams: Debian's redis-server (AOF on, a unix socket in a temp
directory) and real service processes sharing it, killed and restarted mid-job."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, start_service
from gendoc_service.queue import FINALIZE, JobRecord, Outcome
from gendoc_service.queue_redis import DEAD, RedisQueue
from jobs.jobs_support import (
    metric,
    numbers_in,
    result_zip,
    status,
    store_template,
    submit,
    wait_final,
)
from redis_server import RedisServer, running_redis

from gendoc.procs import descendants
from gendoc.readiness import wait_until

ITEMS = 2000


def render_workers(service: ServerProcess) -> list[int]:
    """The service's render worker processes (multiprocessing 'spawn' children)."""
    found = []
    for info in descendants(service.proc.pid):
        try:
            cmdline = Path(f"/proc/{info.pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(info.pid)
    return found


def env_for(redis: RedisServer) -> dict[str, str]:
    # A short visibility timeout: the items of a killed service come back within seconds.
    return {"GENDOC_QUEUE_URL": redis.url, "GENDOC_JOB_VISIBILITY_TIMEOUT": "6",
            "GENDOC_JOB_CHUNK_ITEMS": "20"}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


def test_a_2000_item_job_survives_kills_and_a_redis_restart_with_every_item_once(
        tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    services: list[ServerProcess] = []
    with running_redis(redis_dir) as first_redis:
        env = env_for(first_redis)
        one = start_service(tmp_path, env=env)
        services.append(one)
        two = start_service(tmp_path, env=env)  # same store directory: same machine
        services.append(two)
        try:
            c = httpx.Client(base_url=two.url, timeout=30)
            name = store_template(c, "Item {{ n }}")
            job = submit(c, name, [{"n": i} for i in range(ITEMS)], filename="inv")

            def done_beyond(n: int) -> bool:
                return bool(status(c, job["id"])["done"] > n)

            wait_until(lambda: done_beyond(100) and render_workers(one), 300, what="job running")
            os.kill(render_workers(one)[0], signal.SIGKILL)  # a render worker, mid-job
            wait_until(lambda: done_beyond(500), 300, what="500 items")
            os.killpg(one.proc.pid, signal.SIGKILL)  # the whole service, mid-job
            one.proc.wait()
            wait_until(lambda: done_beyond(800), 300, what="800 items")
        except BaseException:
            for s in services:
                s.stop()
            raise
    # redis-server stopped (SIGTERM, AOF on) while the second service works: start it again.
    try:
        with running_redis(redis_dir) as again:
            assert again.url == env["GENDOC_QUEUE_URL"]
            three = start_service(tmp_path, env=env)  # the killed one's replacement
            services.append(three)
            final = wait_final(c, job["id"], timeout=600)
            assert (final["status"], final["done"], final["failed"]) == ("succeeded", ITEMS, 0)
            archive = result_zip(c, job["id"])
            names = archive.namelist()
            assert names == [f"inv-{i + 1:04d}.docx" for i in range(ITEMS)]
            assert numbers_in(archive, "inv") == list(range(ITEMS))  # each item once, in place
            with again.client() as r:
                assert r.hlen(f"gendoc:jobs:job:{job['id']}:outcomes") == ITEMS
                assert r.xlen(DEAD) == 0
            wait_until(lambda: metric(c, "gendoc_jobs_backlog") == 0, 30, what="backlog 0")
            c.close()
    finally:
        for s in services:
            s.stop()


def test_through_redis_a_bad_item_fails_alone_and_cancel_stops_the_rest(
        redis: RedisServer, tmp_path: Path) -> None:
    service = start_service(tmp_path, env=env_for(redis))
    try:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            name = store_template(c, "Item {{ n }} {{ who.name }}")
            items = [{"n": i, "who": {"name": "x"}} for i in range(30)]
            items[4] = {"n": 4}
            job = submit(c, name, items, strict=True)
            final = wait_final(c, job["id"])
            assert (final["status"], final["done"], final["failed"]) == ("succeeded", 29, 1)
            assert [e["item"] for e in final["errors"]] == [4]
            assert c.get(f"/v1/jobs/{job['id']}/items/4").status_code == 422
            assert numbers_in(result_zip(c, job["id"]), "x") == [i for i in range(30) if i != 4]

            big = submit(c, name, [{"n": i, "who": {"name": "x"}} for i in range(3000)])
            assert c.delete(f"/v1/jobs/{big['id']}").json()["status"] == "cancelled"
            wait_until(lambda: metric(c, "gendoc_jobs_backlog") == 0, 60, what="backlog 0")
            with redis.client() as r:
                wait_until(lambda: r.xlen("gendoc:jobs:tasks") == 0, 60, what="stream drained")
            late = status(c, big["id"])
            assert late["status"] == "cancelled" and late["done"] < 3000
            assert c.get(f"/v1/jobs/{big['id']}").json()["done"] == late["done"]
    finally:
        service.stop()


def test_redis_queue_dead_letters_an_item_after_max_attempts(redis: RedisServer) -> None:
    async def run() -> None:
        queue = RedisQueue(redis.url, visibility=0.0, max_attempts=3)
        await queue.open()
        await queue.create(JobRecord("dl", {"template": "t", "format": "docx"}, 2), [{}, {}])
        first = await queue.claim("a", 10)
        assert sorted(t.index for t in first) == [0, 1]
        assert await queue.record([(first[1], Outcome(size=1, extension="docx"))]) == 1
        assert await queue.record([(first[1], Outcome(size=1, extension="docx"))]) == 0
        attempts = [first[0].attempt]
        while True:  # the holder of item 0 "dies" each time (visibility 0)
            await asyncio.sleep(0.01)
            got = await queue.claim("b", 10)
            if got and got[0].index == FINALIZE:
                break
            attempts += [t.attempt for t in got]
        assert attempts == [1, 2, 3]
        [dead] = await queue.dead_letters()
        assert (dead["job"], dead["index"], dead["attempt"]) == ("dl", 0, 3)
        finished = await queue.finish(got[0], {"url": "u", "size": 1})
        assert finished is not None and (finished.done, finished.failed) == (1, 1)
        assert (await queue.backlog()).items == 0
        await queue.close()
    asyncio.run(run())
