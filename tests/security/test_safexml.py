"""gendoc.safexml alone: the hardened parser both components judge package parts with."""

from __future__ import annotations

import io

import pytest

from gendoc.safexml import UnsafeXml, check_prolog, parse

ROOT = b'<r xmlns="urn:x" a="&#69;xternal"><c/></r>'
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def utf16(xml: bytes) -> bytes:
    return xml.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")


def test_character_references_are_read_as_the_characters() -> None:
    assert parse(DECLARATION + ROOT, "p").get("a") == "External"


def test_utf16_is_read_like_utf8() -> None:
    root = parse(utf16(DECLARATION + ROOT), "p")
    assert root.get("a") == "External" and root.tag == "{urn:x}r"


@pytest.mark.parametrize("doctype", [
    b"<!DOCTYPE r>",
    b'<!DOCTYPE r [<!ENTITY e "External">]>',
    b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/r.dtd">',
    b'<!DOCTYPE r PUBLIC "-//x//y" "file:///etc/passwd">',
], ids=["bare", "internal-entity", "external-dtd", "public-id"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_any_doctype_is_refused_by_both_checks(doctype: bytes, encoding: str) -> None:
    xml = DECLARATION + doctype + b'<r xmlns="urn:x"/>'
    data = utf16(xml) if encoding == "utf-16" else xml
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        parse(data, "p")
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        check_prolog(io.BytesIO(data), "p")


def test_an_entity_is_never_expanded() -> None:
    """Billion laughs: refused for its DOCTYPE, at once, nothing expanded."""
    # b is ten a's, c ten b's, ... i is 10^8 letters once expanded.
    laughs = (b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
              + b"".join(b'<!ENTITY %c "%s">' % (98 + i, b"&%c;" % (97 + i) * 10)
                         for i in range(8))
              + b"]><r>&i;</r>")
    with pytest.raises(UnsafeXml):
        parse(laughs, "p")


def test_the_prolog_check_finds_a_doctype_behind_a_long_comment() -> None:
    """The prolog is read in pieces: a DOCTYPE several pieces in is still found."""
    xml = DECLARATION + b"<!--" + b"x" * 5000 + b"-->" + b"<!DOCTYPE r><r/>"
    with pytest.raises(UnsafeXml, match="DOCTYPE"):
        check_prolog(io.BytesIO(xml), "p")


def test_the_prolog_check_stops_at_the_root() -> None:
    """Only the prolog is read: what follows the root's start tag is never looked at."""
    stream = io.BytesIO(DECLARATION + b'<r xmlns="urn:x">' + b"<broken" * 100_000)
    check_prolog(stream, "p")
    assert stream.tell() < 4096


@pytest.mark.parametrize("data", [b"", b"not xml", b"<r", b"<?xml version='1.0'?>"],
                         ids=["empty", "text", "unclosed", "no-root"])
def test_what_is_not_xml_is_refused(data: bytes) -> None:
    with pytest.raises(UnsafeXml):
        check_prolog(io.BytesIO(data), "p")
    with pytest.raises(UnsafeXml):
        parse(data, "p")
