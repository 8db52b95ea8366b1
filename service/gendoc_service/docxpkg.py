"""Inspecting a .docx package from its zip directory before anything decompresses it.

A template or a stateless upload is someone else's file. Everything here reads
the central directory (cheap, bounded by the entry count) and only then, for the
few XML parts, bounded reads whose size the directory already declared.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from .errors import InvalidDocx

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_MACRO_CONTENT_TYPES = (b"macroEnabled", b"vbaProject")
# Entries larger than this are checked for their compression ratio; tiny parts
# of repeated text legitimately compress hundreds of times.
_RATIO_CHECK_FROM = 1024 * 1024


@dataclass(frozen=True)
class PackageLimits:
    max_entries: int
    max_unzipped_bytes: int
    max_ratio: float


def inspect(data: bytes, limits: PackageLimits) -> None:
    """Raise InvalidDocx unless `data` is a plausible, bounded, macro-free .docx."""
    if not data.startswith(b"PK"):
        raise InvalidDocx("The file is not a .docx package (not a zip archive).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidDocx(f"The file is not a readable zip archive: {exc}.") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise InvalidDocx(
                f"The package has {len(infos)} entries; at most {limits.max_entries} are allowed."
            )
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise InvalidDocx("The package has duplicate entry names.")
        total = sum(info.file_size for info in infos)
        if total > limits.max_unzipped_bytes:
            raise InvalidDocx(
                f"The package would unpack to {total} bytes; "
                f"at most {limits.max_unzipped_bytes} are allowed."
            )
        for info in infos:
            if info.file_size >= _RATIO_CHECK_FROM:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_ratio:
                    raise InvalidDocx(
                        f"Entry {info.filename!r} is compressed {ratio:.0f}:1, "
                        f"more than the allowed {limits.max_ratio:.0f}:1."
                    )
        lowered = {n.lower() for n in names}
        for required in ("[Content_Types].xml", "word/document.xml"):
            if required.lower() not in lowered:
                raise InvalidDocx(f"The package has no {required} part: it is not a Word document.")
        if any(n.endswith("vbaproject.bin") for n in lowered):
            raise InvalidDocx("The package carries macros (a vbaProject part); macros are refused.")
        for info in infos:
            if not info.filename.lower().endswith((".xml", ".rels")):
                continue
            try:
                head = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise InvalidDocx(f"Part {info.filename!r} cannot be read: {exc}.") from None
            # python-docx never resolves entities, but a DOCTYPE has no business in
            # OOXML and is how entity-expansion attacks start: refuse it outright.
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise InvalidDocx(f"Part {info.filename!r} declares a DOCTYPE or entities.")
            if info.filename == "[Content_Types].xml" and any(
                marker in head for marker in _MACRO_CONTENT_TYPES
            ):
                raise InvalidDocx(
                    "The package is macro-enabled (.docm content type); macros are refused."
                )
