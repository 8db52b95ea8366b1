"""Splitting a merged batch's PDF back into one PDF per item.

The boundaries come from the PDF itself: each item's first paragraph carries
a bookmark (`merging.item_bookmark`) that LibreOffice exports as a named
destination (ExportBookmarksToPDFDestination). Pages are never counted on
trust: a missing, repeated or out-of-order destination is a `SplitFailed`, and
the caller converts those items one by one instead.
"""

from __future__ import annotations

import io
from typing import Any

import pikepdf

from .merging import item_bookmark


class SplitFailed(Exception):
    """The PDF does not show where every item starts."""


def boundaries(starts: dict[int, int], count: int, pages: int) -> list[range]:
    """Each item's page range from the page its destination points at (pure)."""
    if sorted(starts) != list(range(count)):
        missing = sorted(set(range(count)) - set(starts))
        raise SplitFailed(f"no destination for items {missing[:5]}")
    firsts = [starts[i] for i in range(count)]
    if firsts[0] != 0:
        raise SplitFailed(f"the first item starts on page {firsts[0] + 1}")
    ends = [*firsts[1:], pages]
    ranges = [range(a, b) for a, b in zip(firsts, ends, strict=True)]
    if any(len(r) == 0 for r in ranges):
        raise SplitFailed("two items start on the same page, or out of order")
    return ranges


def split(pdf: bytes, count: int, info: list[dict[str, str]] | None = None) -> list[bytes]:
    """One PDF per item of the merged `pdf` of `count` items; `info[i]`: its document
    information (title, author...) in place of the merged document's.

    pikepdf (qpdf) copies pages about six times faster than pypdf: ≈ 3 against 18 ms
    an invoice, measured on a busy machine."""
    try:
        source = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PdfError as exc:
        raise SplitFailed(f"unreadable PDF: {exc}") from None
    with source:
        try:
            starts = _starts(source, count)
        except Exception as exc:  # a destination of a shape not foreseen here
            raise SplitFailed(f"unreadable destinations: {type(exc).__name__}: {exc}") from None
        ranges = boundaries(starts, count, len(source.pages))
        merged_info = {str(k): v for k, v in source.docinfo.items()}
        documents = []
        for i, pages in enumerate(ranges):
            with pikepdf.new() as part:
                part.pages.extend(source.pages[pages.start:pages.stop])
                for key, value in {**merged_info, **(info[i] if info else {})}.items():
                    part.docinfo[pikepdf.Name(key)] = value
                out = io.BytesIO()
                part.save(out)
            documents.append(out.getvalue())
    return documents


def _starts(source: pikepdf.Pdf, count: int) -> dict[int, int]:
    """Item index -> index of the page its destination points at."""
    wanted = {item_bookmark(i): i for i in range(count)}
    pages: dict[tuple[int, int], int] = {
        page.obj.objgen: number for number, page in enumerate(source.pages)}
    starts: dict[int, int] = {}
    for name, destination in _destinations(source):
        if name in wanted:
            target = destination if isinstance(destination, pikepdf.Array) \
                else destination.get("/D")
            if isinstance(target, pikepdf.Array) and len(target) and \
                    target[0].objgen in pages:
                starts[wanted[name]] = pages[target[0].objgen]
    return starts


def _destinations(source: pikepdf.Pdf) -> list[tuple[str, Any]]:
    """Named destinations: the catalog's /Dests dictionary (what LibreOffice writes)
    or the /Names tree."""
    root = source.Root
    found: list[tuple[str, Any]] = []
    if "/Dests" in root:
        found += [(str(k).removeprefix("/"), v) for k, v in root.Dests.items()]
    if "/Names" in root and "/Dests" in root.Names:
        found += [(str(k), v) for k, v in pikepdf.NameTree(root.Names.Dests).items()]
    return found
