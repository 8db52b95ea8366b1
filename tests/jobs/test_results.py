"""The directory backend of job results: keys, writes in bulk, reads, deletion per job."""

from __future__ import annotations

from pathlib import Path

import pytest
from gendoc_service.results import DirectoryResults, check_key, item_key, result_key


def test_keys() -> None:
    assert item_key("j1", 7, "pdf") == "j1/items/7.pdf"
    assert result_key("j1", "zip") == "j1/result.zip"
    for bad in ("../x", "/abs", "a/../b", "a//b", ".hidden", ""):
        with pytest.raises(ValueError):
            check_key(bad)


def test_put_many_get_and_delete_a_job(tmp_path: Path) -> None:
    results = DirectoryResults(tmp_path / "results")
    big = b"x" * (3 << 20)
    results.put_many([(item_key("j1", i, "docx"), bytes([i]) * 10, "m", "f") for i in range(5)]
                     + [(item_key("j1", 5, "docx"), big, "m", "f")])
    results.put_many([(item_key("j1", 2, "docx"), b"again", "m", "f")])  # a second delivery
    assert results.get(item_key("j1", 0, "docx")) == b"\x00" * 10
    assert results.get(item_key("j1", 2, "docx")) == b"again"
    assert results.get(item_key("j1", 5, "docx")) == big
    assert results.get(item_key("j1", 9, "docx")) is None
    assert not [p for p in (tmp_path / "results").rglob(".tmp-*")]  # no temporary left
    assert results.local_path(item_key("j1", 1, "docx")) is not None
    assert results.url(item_key("j1", 1, "docx"), 60) is None  # served by the service
    results.delete_job("j1")
    assert results.get(item_key("j1", 0, "docx")) is None
