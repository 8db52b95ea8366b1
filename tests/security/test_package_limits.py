"""gendoc.package_limits alone: the zip-directory check both components make first."""

from __future__ import annotations

import io
import zipfile

import pytest

from gendoc.package_limits import (
    RATIO_CHECK_FROM,
    PackageLimits,
    PackageRefused,
    check_directory,
    open_package,
)

LIMITS = PackageLimits(max_entries=10, max_unzipped_bytes=4 * RATIO_CHECK_FROM, max_ratio=50)


def entry(name: str, size: int, compressed: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.file_size, info.compress_size = size, compressed
    return info


def test_within_the_limits_passes() -> None:
    check_directory([entry(f"e{i}", 1000, 100) for i in range(10)], LIMITS)


@pytest.mark.parametrize(("infos", "says"), [
    ([entry(f"e{i}", 1, 1) for i in range(11)], "11 entries; at most 10"),
    ([entry("a", 1, 1), entry("a", 1, 1)], "duplicate entry names"),
    ([entry("a", 3 * RATIO_CHECK_FROM, RATIO_CHECK_FROM),
      entry("b", 2 * RATIO_CHECK_FROM, RATIO_CHECK_FROM)], "would unpack to"),
    ([entry("bomb", RATIO_CHECK_FROM, RATIO_CHECK_FROM // 51)], "compressed 51:1"),
], ids=["entries", "duplicates", "total", "ratio"])
def test_each_limit_refuses(infos: list[zipfile.ZipInfo], says: str) -> None:
    with pytest.raises(PackageRefused, match=says):
        check_directory(infos, LIMITS)


def test_small_entries_may_compress_well() -> None:
    """Below RATIO_CHECK_FROM a high ratio is ordinary repeated markup, not a bomb."""
    check_directory([entry("numbering.xml", RATIO_CHECK_FROM - 1, 10)], LIMITS)


def test_limits_come_from_settings_by_field_name() -> None:
    class Settings:
        max_zip_entries = 7
        max_unzipped_bytes = 8
        max_compression_ratio = 9.0

    assert PackageLimits.of(Settings()) == PackageLimits(7, 8, 9.0)


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7", b"PK\x03\x04 truncated"])
def test_what_is_not_a_zip_is_refused(data: bytes) -> None:
    with pytest.raises(PackageRefused):
        open_package(data, LIMITS)


def test_a_package_within_the_limits_opens() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    with open_package(out.getvalue(), LIMITS) as archive:
        assert archive.namelist() == ["[Content_Types].xml"]
