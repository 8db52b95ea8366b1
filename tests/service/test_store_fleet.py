"""Two real services sharing one bucket (a two-replica fleet), over real HTTP.

The object store is versitygw on 127.0.0.1 (tests/s3_server.py). Each service
is a `gendoc serve` process with GENDOC_STORE_URL=s3://BUCKET/fleet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import make_docx, part_texts
from s3_server import S3Server, versitygw_binary, wait_until_new

TTL = 1.0  # GENDOC_STORE_CURRENT_TTL of both services


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    server = S3Server(versitygw_binary(), tmp_path / "s3").start()
    yield server
    server.stop()


@pytest.fixture
def fleet(s3: S3Server, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = s3.service_env(s3.new_bucket(), ttl=TTL)
    for pod in ("one", "two"):
        (tmp_path / pod).mkdir()
    one = start_service(tmp_path / "one", env=env)
    # The second replica names its bucket with the flag (`gendoc serve --store-url`),
    # the rest of the S3 settings from the environment, as a pod would.
    url = env.pop("GENDOC_STORE_URL")
    try:
        two = start_service(tmp_path / "two", "--store-url", url, env=env)
    except BaseException:
        one.stop()
        raise
    yield one, two
    two.stop()
    one.stop()


def _template(text: str) -> bytes:
    return make_docx(f"{text} for {{{{ customer }}}}")


def _render(url: str, **extra: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/render", json={"template": "letter", "format": "docx",
                                                "data": {"customer": "ACME"}, **extra})


def _text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return " ".join(part_texts(response.content)["word/document.xml"])


def test_a_template_uploaded_to_either_replica_renders_on_both(
        fleet: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = fleet
    put = httpx.put(f"{one.url}/v1/templates/letter", content=_template("Hello"))
    assert put.status_code == 201, put.text
    first = put.json()["version"]
    assert "Hello for ACME" in _text(_render(two.url))
    assert [t["name"] for t in httpx.get(f"{two.url}/v1/templates").json()["templates"]] == [
        "letter"]

    # A new version through the other replica: a render naming it works at once on
    # the first, and its renders of "current" switch within the TTL.
    put = httpx.put(f"{two.url}/v1/templates/letter", content=_template("Goodbye"))
    assert put.status_code == 201, put.text
    uploaded = time.monotonic()
    version = put.json()["version"]
    assert "Goodbye for ACME" in _text(_render(one.url, version=version))
    wait_until_new(lambda: "Goodbye" in _text(_render(one.url)), uploaded, TTL,
                   "the new current version on the other replica")
    meta = httpx.get(f"{one.url}/v1/templates/letter").json()
    assert len(meta["versions"]) == 2 and meta["latest"] == version

    # Eight uploads racing through both replicas (two processes, two clients): none lost.
    def upload(i: int) -> str:
        put = httpx.put(f"{fleet[i % 2].url}/v1/templates/letter",
                        content=_template(f"Race {i}"), timeout=60)
        assert put.status_code == 201, put.text
        return str(put.json()["version"])

    with ThreadPoolExecutor(8) as pool:
        raced = set(pool.map(upload, range(8)))
    settled = time.monotonic()
    for replica in fleet:
        def listed(url: str = replica.url) -> bool:
            meta = httpx.get(f"{url}/v1/templates/letter").json()
            return {v["id"] for v in meta["versions"]} == raced | {version, first}

        # Within the TTL each replica may still list what it read during the race.
        wait_until_new(listed, settled, TTL, "every raced version on each replica")


def test_with_the_object_store_down_cached_versions_render_and_the_rest_503(
        s3: S3Server, fleet: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = fleet
    assert httpx.put(f"{one.url}/v1/templates/letter", content=_template("Cached")).is_success
    assert httpx.put(f"{one.url}/v1/templates/other", content=_template("Other")).is_success
    assert "Cached for ACME" in _text(_render(one.url))  # in one's memory from here on
    ready = httpx.get(f"{one.url}/readyz").json()
    assert ready["checks"]["store"] == "ok"
    s3.stop()

    assert "Cached for ACME" in _text(_render(one.url))
    refused = _render(two.url)  # two never read "letter"
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["type"].endswith("/store-unavailable")
    ready = httpx.get(f"{one.url}/readyz")
    # Still in its Service (renders of cached versions go on), saying why it is degraded.
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert "unreachable" in ready.json()["checks"]["store"]

    s3.start()
    assert "Other for ACME" in _text(_render(two.url, template="other"))
    assert httpx.get(f"{two.url}/readyz").json()["checks"]["store"] == "ok"
