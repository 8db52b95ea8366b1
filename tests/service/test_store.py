"""The directory backend's own behaviour; what every backend does is in test_store_contract.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gendoc_service.errors import (
    InvalidTemplateName,
    StoreNotShared,
    TemplateReadOnly,
    VersionNotFound,
)
from gendoc_service.store import DirectoryStore, content_id, validate_name


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    s = DirectoryStore(tmp_path / "root", cache_bytes=1024)
    s.open()
    return s


@pytest.mark.parametrize("name", ["invoice", "a", "Invoice-2026_v1.2", "x" * 128])
def test_valid_names(name: str) -> None:
    assert validate_name(name, 128) == name


@pytest.mark.parametrize(
    "name", ["", "../etc", "..", "a/b", "a\\b", ".hidden", "a..b", "x" * 129, "in voice", "é", "-x"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidTemplateName):
        validate_name(name, 128)


def test_interrupted_upload_leaves_nothing_visible(store: DirectoryStore) -> None:
    """A crash between writing the .docx and its metadata: no version appears."""
    directory = store.root / "t"
    directory.mkdir()
    (directory / f"{content_id(b'half')}.docx").write_bytes(b"half")
    (directory / ".tmp-abc.docx").write_bytes(b"partial")
    assert store.names() == []
    v, _ = store.put("t", b"whole", {})
    assert [x["id"] for x in store.describe("t")["versions"]] == [v.id]


def test_writes_leave_no_temporary_files(store: DirectoryStore) -> None:
    store.put("t", b"data", {})
    assert not [p for p in os.listdir(store.root / "t") if p.startswith(".tmp")]


def test_bytes_cache_serves_hot_templates_without_disk(store: DirectoryStore) -> None:
    v, _ = store.put("t", b"cached", {})
    (store.root / "t" / f"{v.id}.docx").write_bytes(b"changed on disk")
    assert store.get("t")[1] == b"cached"


def test_plain_docx_files_are_read_only_templates(store: DirectoryStore) -> None:
    """A ConfigMap mounted at the store root shows up as NAME.docx files."""
    (store.root / "letter.docx").write_bytes(b"plain bytes")
    (store.root / "..evil.docx").write_bytes(b"x")
    assert store.names() == ["letter"]
    vid = content_id(b"plain bytes")
    assert store.current("letter") == vid
    assert store.get("letter") == (vid, b"plain bytes")
    assert store.get("letter", vid)[1] == b"plain bytes"
    with pytest.raises(VersionNotFound):
        store.get("letter", "0" * 64)
    meta = store.describe("letter")
    assert meta["source"] == "file" and meta["latest"] == vid and meta["variables"] is None
    with pytest.raises(TemplateReadOnly):
        store.delete("letter")
    # An uploaded version of the same name takes precedence.
    v, _ = store.put("letter", b"uploaded", {})
    assert store.get("letter") == (v.id, b"uploaded")


def test_a_directory_store_of_a_fleet_refuses_changes(tmp_path: Path) -> None:
    """Several replicas each with their own directory: an upload would reach one pod."""
    (tmp_path / "letter.docx").write_bytes(b"from a ConfigMap")
    store = DirectoryStore(tmp_path, fleet_replicas=3)
    for change in (lambda: store.put("t", b"x", {}), lambda: store.delete("letter")):
        with pytest.raises(StoreNotShared) as refused:
            change()
        assert refused.value.status == 409 and "GENDOC_STORE_URL" in refused.value.detail
        assert refused.value.extensions == {"max_replicas": 3}
    assert store.get("letter")[1] == b"from a ConfigMap"  # reading is unaffected
    assert not (tmp_path / "t").exists()


def test_a_plain_file_template_keeps_no_sample_data(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    (tmp_path / "mounted.docx").write_bytes(b"PK plain file")
    with pytest.raises(TemplateReadOnly):
        store.put_sample("mounted", b"{}")
    assert store.get_sample("mounted") is None
