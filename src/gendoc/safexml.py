"""Parsing the XML parts of untrusted packages with a hardened parser, then deciding on the tree.

Deciding on bytes (`b"External" in raw`) is fooled by anything the XML
standard lets one spell differently: character references
(`TargetMode="&#69;xternal"`), a part in UTF-16, entities. The parser reads
all of these the way LibreOffice will, so what is judged is what is loaded.

The parser never resolves entities, loads no DTD and opens no network or file
connection; a part that declares a DOCTYPE is refused outright: the Open
Packaging Conventions (ECMA-376 Part 2) forbid DTD declarations in package
parts, and a DOCTYPE is how entity expansion (billion laughs) and external
entities (XXE) start.
"""

from __future__ import annotations

import threading
from typing import IO

from lxml import etree

# The prolog (declaration, DOCTYPE, comments) is read in pieces of this size
# until the root element's start tag is complete. Small on purpose: the pull
# parser builds every element of what it is fed, so 4 KiB of a styles part
# costs about 0.4 ms against 10 us for 512 bytes (a root tag with Word's
# namespace declarations is about 600 bytes: two pieces).
_CHUNK = 512


class UnsafeXml(ValueError):
    """A part that is not well-formed XML, or that declares a DOCTYPE."""


_local = threading.local()


def _parser() -> etree.XMLParser:
    # One parser per thread: the service inspects uploads on worker threads,
    # and lxml serialises concurrent use of one parser instance.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 dtd_validation=False, huge_tree=False, remove_blank_text=False)
        _local.parser = parser
    return parser


def parse(xml: bytes, part: str) -> etree._Element:
    """The root element of the package part `part`; raises UnsafeXml for a DTD or bad XML.

    The encoding comes from the byte-order mark or the XML declaration, as in
    any conforming reader (OOXML allows UTF-8 and UTF-16).
    """
    try:
        root = etree.fromstring(xml, _parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"Part {part!r} is not well-formed XML: {exc}.") from None
    _refuse_dtd(root, part)
    return root


def check_prolog(stream: IO[bytes], part: str) -> None:
    """Raise UnsafeXml if the part read from `stream` declares a DOCTYPE.

    Reads (and inflates) only up to the root element's start tag: a DOCTYPE can
    appear nowhere else, so a large part costs no more than a small one.
    """
    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True,
                                 load_dtd=False, huge_tree=False)
    try:
        while chunk := stream.read(_CHUNK):
            parser.feed(chunk)
            for _event, element in parser.read_events():
                _refuse_dtd(element, part)
                return
        parser.close()
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"Part {part!r} is not well-formed XML: {exc}.") from None
    raise UnsafeXml(f"Part {part!r} has no root element.")


def _refuse_dtd(element: etree._Element, part: str) -> None:
    info = element.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXml(f"Part {part!r} declares a DOCTYPE or entities; "
                        "package parts may not (ECMA-376 Part 2).")
