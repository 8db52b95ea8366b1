"""Idempotency-Key through a real service process over real HTTP (DOCX renders, no
converter): parallel duplicates, a retry after a dropped connection, key reuse with
another body, expiry, scope per API key, an answer too large to keep."""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import make_docx, part_texts

from gendoc.readiness import wait_until

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_service(tmp_path_factory.mktemp("idem"), env={
        "GENDOC_API_KEYS": '["k1", "k2"]'})
    yield s
    s.stop()


def metric(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    assert match, f"no {name} in /metrics"
    return float(match.group(1))


def renders(client: httpx.Client) -> float:
    return metric(client, "gendoc_render_duration_seconds_count")


def template(client: httpx.Client, *paragraphs: str) -> str:
    name = f"idem-{uuid.uuid4().hex[:8]}"
    r = client.put(f"/v1/templates/{name}", content=make_docx(*paragraphs or ("Dear {{ who }}",)),
                   headers={"content-type": DOCX})
    assert r.status_code == 201, r.text
    return name


def answer(client: httpx.Client, body: dict[str, object], key: str) -> httpx.Response:
    """POST until the answer is not 409 (the first is still running), as the draft's
    client does, waiting what Retry-After asks."""
    def attempt() -> httpx.Response | None:
        r = client.post("/v1/render", json=body, headers={"Idempotency-Key": f'"{key}"'})
        if r.status_code == 409:
            assert r.headers["Retry-After"] == "1"
            assert r.json()["type"].endswith("/idempotency-key-in-use")
            return None
        return r
    got = wait_until(attempt, 60, interval=1.0, what="an answer that is not 409")
    assert isinstance(got, httpx.Response)
    return got


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": "k1"}) as c:
        yield c


def test_parallel_duplicates_render_once_and_all_get_the_same_answer(
        client: httpx.Client, server: ServerProcess) -> None:
    name = template(client)
    body = {"template": name, "data": {"who": "Ada"}, "format": "docx"}
    key = str(uuid.uuid4())
    before = renders(client)
    start = threading.Barrier(8)
    results: list[httpx.Response] = []

    def duplicate() -> None:
        with httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": "k1"}) as c:
            start.wait()
            results.append(answer(c, body, key))

    threads = [threading.Thread(target=duplicate) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 8
    assert len({r.content for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 7
    assert renders(client) == before + 1


def test_a_retry_after_a_dropped_connection_gets_the_first_answer(
        client: httpx.Client, server: ServerProcess) -> None:
    # Thousands of paragraphs: a render long enough to drop the connection during it.
    name = template(client, "{%p for r in rows %}", "{{ r }} {{ who }}", "{%p endfor %}")
    data = {"who": "Bo", "rows": list(range(20000))}
    payload = json.dumps({"template": name, "data": data, "format": "docx"}).encode()
    key = str(uuid.uuid4())
    before = renders(client)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(b"POST /v1/render HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"X-API-Key: k1\r\nIdempotency-Key: " + key.encode() +
                    b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        # Once the service serves it (a render in flight, or already rendered), the
        # connection drops before the client reads any answer.
        wait_until(lambda: metric(client, "gendoc_requests_in_flight") > 0
                   or renders(client) > before, 60, interval=0.02,
                   what="the first request being served")
    retry = answer(client, {"template": name, "data": data, "format": "docx"}, key)
    assert retry.status_code == 200
    assert retry.headers.get("idempotent-replayed") == "true"
    assert "Bo" in part_texts(retry.content)["word/document.xml"][0]
    assert renders(client) == before + 1


def test_the_same_key_with_another_body_is_422(client: httpx.Client) -> None:
    name = template(client)
    key = str(uuid.uuid4())
    first = answer(client, {"template": name, "data": {"who": "A"}, "format": "docx"}, key)
    assert first.status_code == 200
    other = client.post("/v1/render", json={"template": name, "data": {"who": "B"},
                                             "format": "docx"}, headers={"Idempotency-Key": key})
    assert other.status_code == 422
    assert other.json()["type"] == "https://gendoc.io/problems/idempotency-key-reused"
    batch = client.post("/v1/render/batch", json={"template": name, "items": [{"who": "A"}],
                                                   "format": "docx"},
                        headers={"Idempotency-Key": key})
    assert batch.status_code == 422  # another route is another request


def test_keys_belong_to_their_api_key(client: httpx.Client, server: ServerProcess) -> None:
    name = template(client)
    key = str(uuid.uuid4())
    assert answer(client, {"template": name, "data": {"who": "A"}, "format": "docx"},
                  key).status_code == 200
    with httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": "k2"}) as other:
        r = answer(other, {"template": name, "data": {"who": "B"}, "format": "docx"}, key)
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    unauthenticated = httpx.post(server.url + "/v1/render", json={}, headers={
        "Idempotency-Key": key})
    assert unauthenticated.status_code == 401


def test_kept_problems_replay_and_bad_keys_are_400(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    body = {"template": "no-such-template", "data": {}, "format": "docx"}
    first = answer(client, body, key)
    again = answer(client, body, key)
    assert first.status_code == again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["type"] == first.json()["type"]
    bad = client.post("/v1/render", json=body, headers={"Idempotency-Key": "a b"})
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("/invalid-idempotency-key")
    # Answered before routing, still counted under the route's label.
    assert 'gendoc_requests_total{code="400",route="/v1/render"} 1.0' in \
        client.get("/metrics").text.splitlines()


def test_without_a_key_nothing_is_kept(client: httpx.Client) -> None:
    name = template(client)
    before = renders(client)
    for _ in range(2):
        r = client.post("/v1/render", json={"template": name, "data": {"who": "A"},
                                             "format": "docx"})
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert renders(client) == before + 2


def test_expiry_and_answers_too_large_to_keep(tmp_path: Path) -> None:
    server = start_service(tmp_path, env={"GENDOC_IDEMPOTENCY_RETENTION": "1",
                                          "GENDOC_IDEMPOTENCY_MAX_BYTES": "100"})
    try:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            name = template(c)
            key = str(uuid.uuid4())
            body = {"template": name, "data": {"who": "A"}, "format": "docx"}
            before = renders(c)
            first, second = answer(c, body, key), answer(c, body, key)
            # A DOCX is kilobytes: not kept, so the retry rendered again.
            assert first.status_code == second.status_code == 200
            assert "idempotent-replayed" not in second.headers
            assert renders(c) == before + 2
            other = {**body, "data": {"who": "B"}}

            def reusable() -> bool:
                r = c.post("/v1/render", json=other, headers={"Idempotency-Key": key})
                assert r.status_code in (200, 422), r.text
                return r.status_code == 200
            # 422 while the key is remembered, then (after 1 s of retention) free.
            assert c.post("/v1/render", json=other,
                          headers={"Idempotency-Key": key}).status_code == 422
            wait_until(reusable, 60, interval=0.2, what="the key expired")
    finally:
        server.stop()


def test_a_multipart_retry_with_a_new_boundary_is_the_same_request(
        client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    docx = make_docx("Hello {{ who }}")

    def post(who: str) -> httpx.Response:
        return client.post("/v1/render", files={"template": ("hello.docx", docx, DOCX)},
                           data={"data": json.dumps({"who": who}), "format": "docx"},
                           headers={"Idempotency-Key": key})
    first, again = post("Ada"), post("Ada")
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert post("Bob").status_code == 422


def test_the_same_key_sent_again_as_soon_as_the_answer_arrived_is_replayed(
        client: httpx.Client) -> None:
    """The answer is kept before its last byte goes out: a client that retries the moment
    it has the whole answer never finds the key still in use (409)."""
    docx = make_docx("Hello {{ who }}")
    for _ in range(20):
        key = str(uuid.uuid4())
        first, again = (client.post("/v1/render", files={"template": ("hello.docx", docx, DOCX)},
                                    data={"data": json.dumps({"who": "Ada"}), "format": "docx"},
                                    headers={"Idempotency-Key": key}) for _ in range(2))
        assert (first.status_code, again.status_code) == (200, 200), again.text
        assert again.headers["idempotent-replayed"] == "true"
