from __future__ import annotations

import io
import re
import zipfile
import zlib

import pytest
from docx_helpers import make_docx, reencoded, replace_in_zip, uninflatable_bomb
from gendoc_service.docxpkg import inspect
from gendoc_service.errors import InvalidDocx
from gendoc_service.settings import ServiceSettings

from gendoc.package_limits import PackageLimits

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
        (zip_of([("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"0" * (6 << 20))]),
         "unpack"),
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


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_macro_enabled_content_type_is_refused(encoding: str) -> None:
    docx = make_docx("x")
    types = zipfile.ZipFile(io.BytesIO(docx)).read("[Content_Types].xml").replace(
        b"document.main+xml", b"document.macroEnabled.main+xml")
    with pytest.raises(InvalidDocx, match="macro"):
        inspect(replace_in_zip(docx, "[Content_Types].xml", reencoded(types, encoding)), LIMITS)


@pytest.mark.parametrize("part", ["word/document.xml", "word/styles.xml", "_rels/.rels"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_doctype_is_refused_in_any_part_and_encoding(part: str, encoding: str) -> None:
    docx = make_docx("x")
    xml = zipfile.ZipFile(io.BytesIO(docx)).read(part)
    decl, _, rest = xml.partition(b"?>")
    root = rest.lstrip().split(None, 1)[0][1:].rstrip(b">")
    evil = decl + b"?>" + b'<!DOCTYPE ' + root + b' [<!ENTITY e "x">]>' + rest
    assert b"<!DOCTYPE" not in reencoded(evil, "utf-16")  # no byte pattern finds it there
    with pytest.raises(InvalidDocx, match="DOCTYPE"):
        inspect(replace_in_zip(docx, part, reencoded(evil, encoding)), LIMITS)


def test_a_doctype_far_into_a_large_part_is_still_found() -> None:
    """Only the prolog is parsed, and a DOCTYPE can be nowhere else: a long comment before it
    does not hide it."""
    docx = make_docx("x")
    xml = zipfile.ZipFile(io.BytesIO(docx)).read("word/document.xml")
    decl, _, rest = xml.partition(b"?>")
    padding = b"<!--" + b" " * 100_000 + b"-->"
    evil = decl + b"?>" + padding + b'<!DOCTYPE w:document [<!ENTITY e "x">]>' + rest
    with pytest.raises(InvalidDocx, match="DOCTYPE"):
        inspect(replace_in_zip(docx, "word/document.xml", evil), LIMITS)


def test_the_service_defaults_are_the_documented_limits() -> None:
    """README and docs/security.md: 1,000 entries and 100 MiB unpacked by default."""
    limits = PackageLimits.of(ServiceSettings())
    assert (limits.max_entries, limits.max_unzipped_bytes, limits.max_ratio) == (
        1000, 100 << 20, 200)
    base = [(n, zipfile.ZipFile(io.BytesIO(make_docx("x"))).read(n))
            for n in zipfile.ZipFile(io.BytesIO(make_docx("x"))).namelist()]
    filler = [(f"word/media/f{i}.bin", b"") for i in range(1000 - len(base))]
    inspect(zip_of(base + filler), limits)
    with pytest.raises(InvalidDocx, match="1001 entries; at most 1000"):
        inspect(zip_of([*base, *filler, ("word/media/one-more.bin", b"")]), limits)


def test_a_bomb_is_refused_before_anything_is_inflated() -> None:
    """docs/security.md: refused from the zip directory alone. The bomb's data cannot be
    inflated at all, so a refusal for its ratio means nothing was inflated."""
    bomb = uninflatable_bomb()
    with zipfile.ZipFile(io.BytesIO(bomb)) as z, pytest.raises((zipfile.BadZipFile, zlib.error)):
        z.read("word/media/bomb.bin")
    with pytest.raises(InvalidDocx, match=r"compressed \d+:1, more than the allowed 200:1"):
        inspect(bomb, PackageLimits.of(ServiceSettings()))
