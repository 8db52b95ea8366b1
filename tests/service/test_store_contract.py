"""The template store's contract, run against both backends: the directory and real S3.

The S3 backend runs against versitygw on 127.0.0.1 (tests/s3_server.py), never an
in-memory imitation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gendoc_service.errors import InvalidTemplateName, TemplateNotFound, VersionNotFound
from gendoc_service.store import DirectoryStore, TemplateStore, content_id
from gendoc_service.store_s3 import S3Store
from s3_server import S3Server, versitygw_binary


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(versitygw_binary(), tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


@pytest.fixture(params=["directory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TemplateStore:
    if request.param == "directory":
        directory = DirectoryStore(tmp_path / "root", cache_bytes=1024)
        directory.open()
        return directory
    server: S3Server = request.getfixturevalue("s3")
    s3 = S3Store(server.client(), server.new_bucket(), "fleet/a", cache_bytes=1024,
                 current_ttl=0.0)
    s3.open()
    return s3


def test_version_id_is_content_hash_and_versions_are_immutable(store: TemplateStore) -> None:
    v1, new1 = store.put("t", b"one", {"a": None})
    v2, new2 = store.put("t", b"two", {"b": None})
    again, new3 = store.put("t", b"one", {"a": None})
    assert (new1, new2, new3) == (True, True, False)
    assert v1.id == content_id(b"one") == again.id
    assert again.created == v1.created
    # Re-uploading old bytes makes them current again.
    assert store.current("t") == v1.id
    assert store.get("t") == (v1.id, b"one")
    assert store.get("t", v2.id) == (v2.id, b"two")
    meta = store.describe("t")
    assert {v["id"] for v in meta["versions"]} == {v1.id, v2.id}
    assert meta["variables"] == {"a": None} and meta["latest"] == v1.id
    assert meta["size"] == 3 and all(v["variables"] is None for v in meta["versions"])


def test_unknown_template_and_version(store: TemplateStore) -> None:
    with pytest.raises(TemplateNotFound):
        store.get("missing")
    with pytest.raises(TemplateNotFound):
        store.describe("missing")
    store.put("t", b"x", {})
    with pytest.raises(VersionNotFound):
        store.get("t", "0" * 64)
    with pytest.raises(VersionNotFound):
        store.get("t", "not-a-hash")
    with pytest.raises(InvalidTemplateName):
        store.get("../t")


def test_a_version_of_one_template_is_not_a_version_of_another(store: TemplateStore) -> None:
    v, _ = store.put("a", b"shared bytes", {})
    store.put("b", b"other", {})
    assert store.get("a", v.id)[1] == b"shared bytes"
    with pytest.raises(VersionNotFound):
        store.get("b", v.id)


def test_names_lists_each_template_once(store: TemplateStore) -> None:
    assert store.names() == []
    for name in ("zeta", "alpha", "alpha", "mid-1.2"):
        store.put(name, name.encode(), {})
    assert store.names() == ["alpha", "mid-1.2", "zeta"]


def test_delete_one_version_then_all(store: TemplateStore) -> None:
    v1, _ = store.put("t", b"one", {})
    v2, _ = store.put("t", b"two", {})
    store.delete("t", v2.id)
    assert store.current("t") == v1.id
    with pytest.raises(VersionNotFound):
        store.get("t", v2.id)
    with pytest.raises(VersionNotFound):
        store.delete("t", v2.id)
    store.delete("t")
    assert store.names() == []
    with pytest.raises(TemplateNotFound):
        store.describe("t")
    with pytest.raises(TemplateNotFound):
        store.delete("t")


def test_deleting_the_last_version_deletes_the_template(store: TemplateStore) -> None:
    v, _ = store.put("t", b"only", {})
    store.delete("t", v.id)
    assert store.names() == []
    with pytest.raises(TemplateNotFound):
        store.current("t")


def test_a_deleted_template_can_be_uploaded_again(store: TemplateStore) -> None:
    store.put("t", b"first life", {})
    store.delete("t")
    v, new = store.put("t", b"second life", {"x": None})
    assert new and store.get("t") == (v.id, b"second life")
    assert [x["id"] for x in store.describe("t")["versions"]] == [v.id]


def test_health_of_a_working_store(store: TemplateStore) -> None:
    health = store.health()
    assert health.ready and health.detail == "ok"


def test_sample_data_is_kept_with_the_template(store: TemplateStore) -> None:
    with pytest.raises(TemplateNotFound):
        store.put_sample("t", b"{}")
    with pytest.raises(TemplateNotFound):
        store.get_sample("t")
    store.put("t", b"one", {"a": None})
    assert store.get_sample("t") is None
    store.put_sample("t", b'{"a": 1}')
    store.put_sample("t", b'{"a": 2}')
    assert store.get_sample("t") == b'{"a": 2}'
    # Versions come and go; the sample stays with the template, and goes with it.
    store.put("t", b"two", {"a": None})
    store.delete("t", content_id(b"one"))
    assert store.get_sample("t") == b'{"a": 2}'
    assert [v["id"] for v in store.describe("t")["versions"]] == [content_id(b"two")]
    store.delete("t")
    store.put("t", b"three", {})
    assert store.get_sample("t") is None
