"""Conversion options: Gotenberg's form fields in, LibreOffice's PDF export settings out (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import BadForm

# Gotenberg 8's PDF/A values (pkg/gotenberg: PdfA1b, PdfA2b, PdfA3b) and the
# writer_pdf_Export SelectPdfVersion each selects.
PDFA_VERSIONS = {"PDF/A-1b": 1, "PDF/A-2b": 2, "PDF/A-3b": 3}

# "1-5, 8, 11-13": LibreOffice's page range syntax as Gotenberg documents it.
_RANGE = r"\d+(?:\s*-\s*\d*)?|-\s*\d+"
PAGE_RANGES = re.compile(rf"^\s*(?:{_RANGE})(?:\s*[,;]\s*(?:{_RANGE}))*\s*$")

_TRUE = {"true", "1", "t", "yes", "on"}
_FALSE = {"false", "0", "f", "no", "off", ""}


@dataclass(frozen=True)
class ConversionOptions:
    landscape: bool = False
    page_ranges: str = ""
    pdfa: str = ""
    pdfua: bool = False
    # Writer bookmarks as PDF named destinations: how a merged batch finds where
    # each item starts (gendoc_service.splitting).
    bookmark_destinations: bool = False


def parse_bool(name: str, value: str | None, default: bool = False) -> bool:
    """Gotenberg's form booleans (Go's strconv.ParseBool spellings)."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return default if v == "" else False
    raise BadForm(f"Invalid value '{value}' for form field '{name}': expected a boolean")


def parse_options(form: Mapping[str, str]) -> tuple[ConversionOptions, bool]:
    """The conversion options and the `merge` flag from a request's text fields."""
    ranges = (form.get("nativePageRanges") or "").strip()
    if ranges and not PAGE_RANGES.match(ranges):
        raise BadForm(f"Malformed page ranges '{ranges}' (nativePageRanges)")
    pdfa = (form.get("pdfa") or "").strip()
    if pdfa and pdfa not in PDFA_VERSIONS:
        raise BadForm(
            f"Invalid value '{pdfa}' for form field 'pdfa': expected one of "
            + ", ".join(PDFA_VERSIONS)
        )
    options = ConversionOptions(
        landscape=parse_bool("landscape", form.get("landscape")),
        page_ranges=ranges,
        pdfa=pdfa,
        pdfua=parse_bool("pdfua", form.get("pdfua")),
        bookmark_destinations=parse_bool("exportBookmarksToPdfDestination",
                                         form.get("exportBookmarksToPdfDestination")),
    )
    return options, parse_bool("merge", form.get("merge"))


def filter_data(options: ConversionOptions) -> list[tuple[str, object]]:
    """writer_pdf_Export FilterData for `options` (names from LibreOffice's PDF export filter)."""
    data: dict[str, object] = {}
    if options.page_ranges:
        data["PageRange"] = options.page_ranges
    if options.pdfa:
        data.update(SelectPdfVersion=PDFA_VERSIONS[options.pdfa], EmbedStandardFonts=True)
    if options.pdfua:
        data.update(
            PDFUACompliance=True,
            UseTaggedPDF=True,
            EnableTextAccessForAccessibilityTools=True,
            EmbedStandardFonts=True,
        )
    if options.bookmark_destinations:
        data["ExportBookmarksToPDFDestination"] = True
    return list(data.items())
