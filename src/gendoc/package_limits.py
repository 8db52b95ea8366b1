"""What a .docx package may cost, judged from its zip directory before anything inflates.

Both the service (`gendoc_service.docxpkg`, on every template and stateless
upload) and the converter (`gendoc_converter.sanitize`, on every document it
is sent) open untrusted packages the same way through `open_package`; each
takes its numbers from its own settings (`PackageLimits.of`) and turns a
`PackageRefused` into its own error kind.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Protocol

# Entries smaller than this are not checked for their compression ratio: short
# parts of repeated markup (an empty table, a numbering part) legitimately
# compress several hundred times, and a small entry cannot be a bomb anyway.
RATIO_CHECK_FROM = 1024 * 1024


class PackageRefused(ValueError):
    """The bytes are not a zip package, or one that would cost more than the limits allow."""


class LimitSettings(Protocol):
    """The three fields both components' settings classes carry (same names, own defaults)."""

    @property
    def max_zip_entries(self) -> int: ...
    @property
    def max_unzipped_bytes(self) -> int: ...
    @property
    def max_compression_ratio(self) -> float: ...


@dataclass(frozen=True)
class PackageLimits:
    max_entries: int  # entries in the zip directory
    max_unzipped_bytes: int  # sum of the entries' declared uncompressed sizes
    max_ratio: float  # uncompressed / compressed size of any entry from RATIO_CHECK_FROM

    @classmethod
    def of(cls, settings: LimitSettings) -> PackageLimits:
        return cls(settings.max_zip_entries, settings.max_unzipped_bytes,
                   settings.max_compression_ratio)


def open_package(data: bytes, limits: PackageLimits) -> zipfile.ZipFile:
    """The zip archive of `data`, once its directory shows it within `limits`.

    Reads only the central directory: the cost is bounded by the entry count,
    which is checked first. Raises PackageRefused with a sentence for the caller.
    """
    if not data.startswith(b"PK"):
        raise PackageRefused("The file is not a .docx package (not a zip archive).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise PackageRefused(f"The file is not a readable zip archive: {exc}.") from None
    try:
        check_directory(archive.infolist(), limits)
    except PackageRefused:
        archive.close()
        raise
    return archive


def check_directory(infos: list[zipfile.ZipInfo], limits: PackageLimits) -> None:
    """Raise PackageRefused unless the zip directory `infos` is within `limits` (pure)."""
    if len(infos) > limits.max_entries:
        raise PackageRefused(
            f"The package has {len(infos)} entries; at most {limits.max_entries} are allowed.")
    names = [info.filename for info in infos]
    # Which of two same-named entries a reader takes differs between zip
    # libraries: what was checked need not be what LibreOffice loads.
    if len(set(names)) != len(names):
        raise PackageRefused("The package has duplicate entry names.")
    total = sum(info.file_size for info in infos)
    if total > limits.max_unzipped_bytes:
        raise PackageRefused(f"The package would unpack to {total} bytes; "
                             f"at most {limits.max_unzipped_bytes} are allowed.")
    for info in infos:
        if info.file_size >= RATIO_CHECK_FROM:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise PackageRefused(f"Entry {info.filename!r} is compressed {ratio:.0f}:1, "
                                     f"more than the allowed {limits.max_ratio:.0f}:1.")
