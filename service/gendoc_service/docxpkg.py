"""Inspecting a .docx package from its zip directory before anything decompresses it.

A template or a stateless upload is someone else's file. The zip directory is
checked against the limits first (`gendoc.package_limits`, shared with the
converter: cheap, bounded by the entry count); then each XML part's prolog is
parsed (`gendoc.safexml`), inflating no more of it than its first element.
"""

from __future__ import annotations

import zipfile

from lxml import etree

from gendoc import safexml
from gendoc.package_limits import PackageLimits, PackageRefused, open_package

from .errors import InvalidDocx

__all__ = ["DOCX_MEDIA_TYPE", "PackageLimits", "inspect"]

DOCX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_CONTENT_TYPES = "[Content_Types].xml"
_MACRO_CONTENT_TYPES = ("macroenabled", "vbaproject")


def inspect(data: bytes, limits: PackageLimits) -> None:
    """Raise InvalidDocx unless `data` is a plausible, bounded, macro-free .docx."""
    try:
        archive = open_package(data, limits)
    except PackageRefused as exc:
        raise InvalidDocx(str(exc)) from None
    with archive:
        infos = archive.infolist()
        lowered = {info.filename.lower() for info in infos}
        for required in (_CONTENT_TYPES, "word/document.xml"):
            if required.lower() not in lowered:
                raise InvalidDocx(f"The package has no {required} part: it is not a Word document.")
        if any(n.endswith("vbaproject.bin") for n in lowered):
            raise InvalidDocx("The package carries macros (a vbaProject part); macros are refused.")
        try:
            for info in infos:
                if info.filename == _CONTENT_TYPES:
                    _refuse_macro_content_types(safexml.parse(archive.read(info), _CONTENT_TYPES))
                elif info.filename.lower().endswith((".xml", ".rels")):
                    with archive.open(info) as stream:
                        safexml.check_prolog(stream, info.filename)
        except safexml.UnsafeXml as exc:
            raise InvalidDocx(str(exc)) from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise InvalidDocx(f"A part of the package cannot be read: {exc}.") from None


def _refuse_macro_content_types(types: etree._Element) -> None:
    """Decided on the parsed content types, so no spelling or encoding hides a .docm."""
    for element in types.iter():
        content_type = str(element.get("ContentType", "")).lower()
        if any(marker in content_type for marker in _MACRO_CONTENT_TYPES):
            raise InvalidDocx(
                "The package is macro-enabled (.docm content type); macros are refused.")
