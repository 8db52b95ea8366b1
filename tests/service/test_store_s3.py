"""The S3 backend's own guarantees, against a real versitygw on 127.0.0.1.

Each `S3Store` here has its own boto3 client and its own memory: it stands for
one replica of a fleet sharing the bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from gendoc_service.errors import StoreUnavailable, TemplateNotFound, VersionNotFound
from gendoc_service.store import content_id
from gendoc_service.store_s3 import S3Store
from s3_server import S3Server, versitygw_binary, wait_until_new


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(versitygw_binary(), tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


def replica(server: S3Server, bucket: str, ttl: float = 0.0, timeout: float = 5.0) -> S3Store:
    return S3Store(server.client(timeout), bucket, "fleet", cache_bytes=1 << 20, current_ttl=ttl)


def test_the_server_refuses_conditional_writes_that_lose(s3: S3Server) -> None:
    """What the manifest's compare-and-swap stands on, shown on the server itself."""
    client, bucket = s3.client(), s3.new_bucket()
    first = client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as refused:
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch='"0123456789abcdef"')
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    client.put_object(Bucket=bucket, Key="k", Body=b"3", IfMatch=first["ETag"])
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"3"


def test_racing_uploads_from_many_replicas_lose_no_version(s3: S3Server) -> None:
    """Eight replicas upload eight versions of one template at once, twice each,
    while a ninth reads "current" without pause: every version ends listed, and
    "current" never names a version whose bytes are missing."""
    bucket = s3.new_bucket()
    writers = [replica(s3, bucket) for _ in range(8)]
    reader = replica(s3, bucket)
    payloads = [f"version {i}".encode() for i in range(16)]
    start = threading.Barrier(len(writers))
    stop = threading.Event()
    reads: list[str] = []
    failures: list[BaseException] = []

    def upload(i: int) -> None:
        start.wait()
        for data in payloads[i::len(writers)]:
            writers[i].put("race", data, {})

    def read() -> None:
        while not stop.is_set():
            try:
                vid, data = reader.get("race")
            except TemplateNotFound:
                continue  # before the first manifest exists
            except BaseException as exc:
                failures.append(exc)
                return
            if content_id(data) != vid:
                failures.append(AssertionError(f"bytes of {vid} do not hash to it"))
            reads.append(vid)

    watcher = threading.Thread(target=read)
    watcher.start()
    try:
        with ThreadPoolExecutor(len(writers)) as pool:
            list(pool.map(upload, range(len(writers))))
    finally:
        stop.set()
        watcher.join()
    assert failures == []
    meta = reader.describe("race")
    assert sorted(v["id"] for v in meta["versions"]) == sorted(map(content_id, payloads))
    assert meta["latest"] in {content_id(p) for p in payloads}
    assert len(reads) > 0  # the reader did read while the writers raced


def test_an_upload_racing_deletes_is_never_half_visible(s3: S3Server) -> None:
    """Uploads and deletes of one template from two replicas: whatever "current"
    names can be read, and the last upload after the dust settles is intact."""
    bucket = s3.new_bucket()
    a, b = replica(s3, bucket), replica(s3, bucket)
    failures: list[BaseException] = []

    def churn(store: S3Store, tag: str) -> None:
        for i in range(15):
            try:
                store.put("t", f"{tag} {i}".encode(), {})
                store.delete("t")
            except TemplateNotFound:
                pass  # the other replica deleted it first
            except BaseException as exc:
                failures.append(exc)

    def read() -> None:
        for _ in range(60):
            try:
                vid, data = b.get("t")
                assert content_id(data) == vid
            except (TemplateNotFound, VersionNotFound):
                pass  # deleted between the manifest read and the bytes: a clean miss
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=churn, args=(a, "a")),
               threading.Thread(target=churn, args=(b, "b")), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    v, _ = a.put("t", b"final", {})
    assert b.get("t") == (v.id, b"final") and b.names() == ["t"]


def test_current_reaches_other_replicas_within_the_ttl_and_named_versions_at_once(
        s3: S3Server) -> None:
    ttl = 1.0
    bucket = s3.new_bucket()
    a, b = replica(s3, bucket), replica(s3, bucket, ttl=ttl)
    v1, _ = a.put("t", b"one", {})
    assert b.get("t") == (v1.id, b"one")  # b now holds the manifest for `ttl`
    v2, _ = a.put("t", b"two", {})
    uploaded = time.monotonic()
    # A render naming the new version sees it at once, through the stale manifest.
    assert b.get("t", v2.id) == (v2.id, b"two")
    wait_until_new(lambda: b.get("t")[0] == v2.id, uploaded, ttl,
                   "the new current version on the other replica")


def test_hot_templates_are_served_from_memory_by_content_hash(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    a = replica(s3, bucket, ttl=60)
    v, _ = a.put("t", b"cached", {})
    # Changing the object behind the store's back shows that reads come from memory.
    s3.client().put_object(Bucket=bucket, Key=f"fleet/templates/t/versions/{v.id}.docx",
                           Body=b"changed in the bucket")
    assert a.get("t") == (v.id, b"cached")
    b = replica(s3, bucket, ttl=60)
    assert b.get("t") == (v.id, b"changed in the bucket")  # another pod reads the bucket


def test_an_unreachable_store_serves_cached_versions_and_503s_the_rest(
        tmp_path: Path) -> None:
    server = S3Server(versitygw_binary(), tmp_path).start()
    try:
        bucket = server.new_bucket()
        a = replica(server, bucket, ttl=0.0, timeout=1.0)
        v1, _ = a.put("cached", b"in memory", {})
        a.put("other", b"not in this pod", {})
        assert a.get("cached") == (v1.id, b"in memory")
        b = replica(server, bucket, ttl=0.0, timeout=1.0)
        server.stop()

        # The manifest cannot be re-read: the last one read names the cached bytes.
        assert a.get("cached") == (v1.id, b"in memory")
        assert a.get("cached", v1.id) == (v1.id, b"in memory")
        for attempt in (lambda: b.get("cached"), lambda: a.get("never-seen"),
                        lambda: a.get("cached", content_id(b"unknown")),
                        lambda: a.put("cached", b"new", {})):
            with pytest.raises(StoreUnavailable) as refused:
                attempt()
            assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) >= 1
        health = a.health()
        assert health.ready and "unreachable" in health.detail

        server.start()  # same port, same data: everything is back
        assert b.get("other")[1] == b"not in this pod"
        assert b.health().detail == "ok"
    finally:
        server.stop()


def test_readiness_answers_within_a_second_when_the_store_hangs(
        s3: S3Server, tmp_path: Path) -> None:
    from gendoc_service.settings import ServiceSettings
    from gendoc_service.store import open_store

    store = open_store(ServiceSettings(
        store_url=f"s3://{s3.new_bucket()}/x", s3_endpoint_url=s3.endpoint,
        s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key,
        s3_path_style=True, store_timeout=5.0), cache_bytes=1 << 20)
    assert store.health().detail == "ok"
    s3.freeze()
    try:
        started = time.monotonic()
        health = store.health()
        took = time.monotonic() - started
    finally:
        s3.freeze(False)
    # The store's own calls would wait 2 x 5 s; the probe gives up after one second.
    assert health.ready and "unreachable" in health.detail and took < 5.0


def test_store_url_chooses_the_backend(s3: S3Server, tmp_path: Path) -> None:
    from gendoc_service.settings import ServiceSettings
    from gendoc_service.store import DirectoryStore, open_store

    bucket = s3.new_bucket()
    env = s3.service_env(bucket, prefix="team/templates")
    settings = ServiceSettings(
        store_url=env["GENDOC_STORE_URL"], s3_endpoint_url=s3.endpoint,
        s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key,
        s3_path_style=True, store_dir=tmp_path)
    store = open_store(settings, cache_bytes=1 << 20)
    assert isinstance(store, S3Store)
    v, _ = store.put("t", b"x", {})
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"team/templates/templates/t/versions/{v.id}.docx" in keys
    assert isinstance(open_store(ServiceSettings(store_dir=tmp_path), 1024), DirectoryStore)
    with pytest.raises(ValueError, match="s3://"):
        open_store(ServiceSettings(store_url="ftp://x"), 1024)


def test_results_are_fetched_through_presigned_urls_and_swept_after_retention(
        s3: S3Server) -> None:
    import httpx
    from gendoc_service.store_s3 import S3Results

    bucket = s3.new_bucket()
    results = S3Results(s3.client(), bucket, "fleet", retention=3600)
    results.put("job-1", b"%PDF-1.7 result", "application/pdf", "invoice.pdf")
    got = httpx.get(results.url("job-1", expires_in=300))  # no credentials: the URL is the key
    assert got.status_code == 200 and got.content == b"%PDF-1.7 result"
    assert got.headers["content-type"] == "application/pdf"
    assert 'filename="invoice.pdf"' in got.headers["content-disposition"]
    forged = httpx.get(results.url("job-1").replace("job-1", "job-2"))
    assert forged.status_code == 403  # the signature covers the key
    with pytest.raises(ValueError):
        results.url("../templates/t/current")

    assert results.sweep() == 0  # younger than the retention
    assert results.sweep(now=time.time() + 3601) == 1
    assert httpx.get(results.url("job-1")).status_code == 404


def test_a_manifest_written_by_something_else_is_a_503_not_a_500(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    store = replica(s3, bucket)
    s3.client().put_object(Bucket=bucket, Key="fleet/templates/t/current", Body=b"{not json")
    with pytest.raises(StoreUnavailable, match="unreadable"):
        store.get("t")
