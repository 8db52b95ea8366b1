"""Splitting a merged batch's PDF back into one PDF per item.

The boundaries come from the PDF itself: each item's first paragraph carries
a bookmark (`merging.item_bookmark`) that LibreOffice exports as a named
destination (ExportBookmarksToPDFDestination). Pages are never counted on
trust: a missing, repeated or out-of-order destination is a `SplitFailed`, and
the caller converts those items one by one instead.
"""

from __future__ import annotations

import io

from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, TextStringObject

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
    information (title, author...) in place of the merged document's."""
    try:
        reader = PdfReader(io.BytesIO(pdf))
        starts: dict[int, int] = {}
        wanted = {item_bookmark(i): i for i in range(count)}
        for name, destination in reader.named_destinations.items():
            # pypdf keeps a destination named by a PDF name object with its slash.
            name = name.removeprefix("/")
            page = reader.get_destination_page_number(destination)
            if name in wanted and page is not None:
                starts[wanted[name]] = page
        ranges = boundaries(starts, count, len(reader.pages))
    except SplitFailed:
        raise
    except Exception as exc:  # pypdf raises many kinds on a PDF it cannot read
        raise SplitFailed(f"unreadable PDF: {type(exc).__name__}: {exc}") from None
    merged_info = dict(reader.metadata or {})
    documents = []
    for i, pages in enumerate(ranges):
        writer = PdfWriter()
        for page in pages:
            writer.add_page(reader.pages[page])
        metadata = {**merged_info, **(info[i] if info else {})}
        writer.add_metadata({NameObject(k): TextStringObject(str(v))
                             for k, v in metadata.items()})
        out = io.BytesIO()
        writer.write(out)
        documents.append(out.getvalue())
    return documents
