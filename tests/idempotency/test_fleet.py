"""Idempotency-Key across a fleet: two real services sharing one real redis-server (the
job queue's), and what a keyed request gets while that Redis is down."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx
from conftest import start_service
from jobs.jobs_support import store_template
from redis_server import running_redis

from gendoc.readiness import wait_until


def keyed(client: httpx.Client, path: str, body: dict[str, object], key: str) -> httpx.Response:
    """POST, waiting out 409s (the first still being answered) as Retry-After asks."""
    def attempt() -> httpx.Response | None:
        r = client.post(path, json=body, headers={"Idempotency-Key": key})
        return None if r.status_code == 409 else r
    got = wait_until(attempt, 60, interval=1.0, what="an answer that is not 409")
    assert isinstance(got, httpx.Response)
    return got


def test_two_replicas_share_keys_through_redis(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as redis:
        env = {"GENDOC_QUEUE_URL": redis.url}
        # Each replica has its own directory: only Redis is shared (the template is
        # stored in both, as a shared object store would serve it).
        for replica in ("a", "b"):
            (tmp_path / replica).mkdir()
        a = start_service(tmp_path / "a", env=env)
        b = start_service(tmp_path / "b", env=env)
        try:
            with httpx.Client(base_url=a.url, timeout=60) as ca, \
                    httpx.Client(base_url=b.url, timeout=60) as cb:
                name = store_template(ca, "Item {{ n }}")
                ca_doc = ca.get(f"/v1/templates/{name}/content").content
                cb.put(f"/v1/templates/{name}", content=ca_doc,
                       headers={"content-type": "application/octet-stream"})
                body = {"template": name, "items": [{"n": i} for i in range(5)],
                        "format": "docx"}
                key = str(uuid.uuid4())
                answers: list[httpx.Response] = []
                start = threading.Barrier(6)

                def post(client: httpx.Client) -> None:
                    start.wait()
                    answers.append(keyed(client, "/v1/jobs", body, key))

                threads = [threading.Thread(target=post, args=(c,)) for c in [ca, cb] * 3]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                assert [r.status_code for r in answers] == [202] * 6
                assert len({r.json()["id"] for r in answers}) == 1  # one job, not six
                assert sum(r.headers.get("idempotent-replayed") == "true"
                           for r in answers) == 5
                other = cb.post("/v1/jobs", json={**body, "format": "pdf"},
                                headers={"Idempotency-Key": key})
                assert other.status_code == 422
                with redis.client() as r:
                    assert r.keys("gendoc:idempotency:*")
        finally:
            a.stop()
            b.stop()


def test_a_keyed_request_while_redis_is_down_is_503_not_run(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as redis:
        service = start_service(tmp_path, env={"GENDOC_QUEUE_URL": redis.url})
        try:
            with httpx.Client(base_url=service.url, timeout=60) as c:
                name = store_template(c, "Hello {{ who }}")
                redis.process.terminate()
                redis.process.wait(timeout=20)
                body = {"template": name, "data": {"who": "A"}, "format": "docx"}
                r = c.post("/v1/render", json=body, headers={"Idempotency-Key": "k-down"})
                assert r.status_code == 503, r.text
                assert r.json()["type"].endswith("/idempotency-unavailable")
                assert r.headers["Retry-After"] == "2"
                # Without a key a render needs no Redis and still works.
                assert c.post("/v1/render", json=body).status_code == 200
        finally:
            service.stop()
