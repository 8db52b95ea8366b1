from __future__ import annotations

import io
import re
import zipfile

import pytest
from docx_helpers import make_docx, replace_in_zip

from gendoc_service.docxpkg import PackageLimits, inspect
from gendoc_service.errors import InvalidDocx

LIMITS = PackageLimits(max_entries=100, max_unzipped_bytes=5 << 20, max_ratio=100)


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return out.getvalue()


def test_a_real_docx_passes() -> None:
    inspect(make_docx("hello"), LIMITS)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip at all", "not a .docx"),
        (b"PK\x03\x04broken", "not a readable zip"),
        (zip_of([("a.txt", b"x")]), "no [Content_Types].xml"),
        (zip_of([("[Content_Types].xml", b"<x/>")]), "no word/document.xml"),
        (zip_of([(f"f{i}", b"") for i in range(101)]), "101 entries"),
        (zip_of([("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"0" * (6 << 20))]), "unpack"),
        (zip_of([("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"<x/>"),
                 ("big.bin", b"\0" * (2 << 20))]), "compressed"),
        (zip_of([("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"<x/>"),
                 ("word/vbaProject.bin", b"x")]), "macros"),
    ],
)
def test_bad_packages_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidDocx, match=re.escape(reason)):
        inspect(data, LIMITS)


def test_duplicate_entries_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z, pytest.warns(UserWarning):
        z.writestr("word/document.xml", b"<a/>")
        z.writestr("word/document.xml", b"<b/>")
    with pytest.raises(InvalidDocx, match="duplicate"):
        inspect(out.getvalue(), LIMITS)


def test_entity_declarations_are_refused() -> None:
    evil = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<w:document>&b;</w:document>")
    with pytest.raises(InvalidDocx, match="DOCTYPE"):
        inspect(replace_in_zip(make_docx("x"), "word/document.xml", evil), LIMITS)


def test_macro_enabled_content_type_is_refused() -> None:
    docx = make_docx("x")
    types = zipfile.ZipFile(io.BytesIO(docx)).read("[Content_Types].xml").replace(
        b"document.main+xml", b"document.macroEnabled.main+xml")
    with pytest.raises(InvalidDocx, match="macro"):
        inspect(replace_in_zip(docx, "[Content_Types].xml", types), LIMITS)
