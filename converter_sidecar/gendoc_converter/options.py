"""Conversion options: Gotenberg's form fields in, LibreOffice's PDF export settings and the
PDF finishing steps out (pure).

Every text field a request sends must be read by some parser here: a field
nobody read is a 400 naming it (`refuse_unread`), so an option this converter
does not implement is never silently ignored. Gotenberg ignores unknown fields;
we refuse them too, since a misspelt option would otherwise be lost.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadForm
from .finishing import PERMISSIONS, Encryption, Finishing, Metadata, Watermark

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


class FormFields(Mapping[str, str]):
    """A request's text fields that remember which of them a parser read."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = dict(fields)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self._fields.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def unread(self) -> list[str]:
        """Fields with a value that no parser asked for (an empty value is Gotenberg's default)."""
        return sorted(k for k, v in self._fields.items() if k not in self.read and v.strip())


# Form fields of Gotenberg 8.34-8.36's LibreOffice route that this converter does not
# implement (pkg/modules/libreoffice/routes.go, pkg/modules/pdfengines/routes.go,
# pkg/modules/api/context.go; 8.36 added optimizeImages and imageQuality), to say so in
# the 400 rather than "unknown".
GOTENBERG_FIELDS = frozenset({
    "password", "updateIndexes", "exportFormFields", "allowDuplicateFieldNames",
    "exportBookmarks", "exportBookmarksToPdfDestination", "exportPlaceholders", "exportNotes",
    "exportNotesPages", "exportOnlyNotesPages", "exportNotesInMargin",
    "convertOooTargetToPdfTarget", "exportLinksRelativeFsys", "exportHiddenSlides",
    "skipEmptyPages", "addOriginalDocumentAsStream", "singlePageSheets", "initialView",
    "initialPage", "magnification", "zoom", "pageLayout", "firstPageOnLeft",
    "resizeWindowToInitialPage", "centerWindow", "openInFullScreenMode",
    "displayPDFDocumentTitle", "hideViewerMenubar", "hideViewerToolbar",
    "hideViewerWindowControls", "useTransitionEffects", "openBookmarkLevels",
    "losslessImageCompression", "quality", "reduceImageResolution", "maxImageResolution",
    "nativeWatermarkText", "nativeWatermarkColor", "nativeWatermarkFontHeight",
    "nativeWatermarkRotateAngle", "nativeWatermarkFontName", "nativeTiledWatermarkText",
    "nativePdfFormats", "flatten", "splitMode", "splitSpan", "splitUnify", "rotateAngle",
    "rotatePages", "watermarkPages", "stampSource", "stampExpression", "stampPages",
    "stampOptions", "embedsMetadata", "facturxConformanceLevel", "facturxDocumentType",
    "facturxVersion", "downloadFrom", "optimizeImages", "imageQuality",
})
# File fields Gotenberg reads as something other than a document to convert.
GOTENBERG_FILE_FIELDS = frozenset({"embeds", "watermark", "stamp", "facturxXml"})


def refuse_unread(fields: FormFields) -> None:
    """400 naming every field with a value that no parser read."""
    unread = fields.unread()
    if not unread:
        return
    known = [f for f in unread if f in GOTENBERG_FIELDS]
    unknown = [f for f in unread if f not in GOTENBERG_FIELDS]
    parts = []
    if known:
        parts.append("Gotenberg form field(s) not implemented by this converter: "
                     + ", ".join(f"'{f}'" for f in known))
    if unknown:
        parts.append("unknown form field(s): " + ", ".join(f"'{f}'" for f in unknown))
    raise BadForm("; ".join(parts) + " (see docs/pdf.md)")


def refuse_file_field(name: str) -> None:
    if name in GOTENBERG_FILE_FIELDS:
        raise BadForm(f"Gotenberg file field '{name}' is not implemented by this converter "
                      "(see docs/pdf.md)")


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


# Gotenberg's `metadata` keys (exiftool tag names) we write, and our name for each.
METADATA_KEYS = {"Title": "title", "Author": "author", "Subject": "subject",
                 "Keywords": "keywords", "Creator": "creator", "Producer": "producer"}


def parse_finishing(form: Mapping[str, str], options: ConversionOptions) -> Finishing:
    """What to do to the PDF after LibreOffice: Gotenberg's pdfengines fields."""
    encryption = _encryption(form)
    if encryption is not None and options.pdfa:
        # ISO 19005-2 6.1.3: no Encrypt key in a PDF/A file. Gotenberg refuses only a
        # userPassword with PDF/A; an owner password breaks PDF/A just the same.
        raise BadForm("Invalid form data: PDF/A format is incompatible with encryption")
    return Finishing(metadata=_metadata(form.get("metadata")), watermark=_watermark(form),
                     encryption=encryption, pdfa=bool(options.pdfa), pdfua=options.pdfua)


def _encryption(form: Mapping[str, str]) -> Encryption | None:
    user = form.get("userPassword") or ""
    owner = form.get("ownerPassword") or ""
    allowed = frozenset(name for name in PERMISSIONS
                        if parse_bool(_allow(name), form.get(_allow(name)), default=True))
    if not user and not owner:
        if allowed != frozenset(PERMISSIONS):
            raise BadForm("Invalid form data: permission restrictions require a "
                          "'userPassword' or 'ownerPassword'")
        return None
    return Encryption(user=user, owner=owner, allowed=allowed)


def _allow(permission: str) -> str:
    return "allow" + permission[0].upper() + permission[1:]


def _json_object(name: str, raw: str | None) -> dict[str, Any]:
    if not raw or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadForm(f"Invalid value for form field '{name}': not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BadForm(f"Invalid value for form field '{name}': expected a JSON object")
    return value


def _metadata(raw: str | None) -> Metadata:
    values: dict[str, Any] = {}
    for key, value in _json_object("metadata", raw).items():
        if key not in METADATA_KEYS:
            raise BadForm(f"metadata key '{key}' is not implemented by this converter; "
                          "known: " + ", ".join(METADATA_KEYS))
        if key == "Keywords":
            words = [value] if isinstance(value, str) else value
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise BadForm("Invalid value for metadata key 'Keywords': expected a string "
                              "or a list of strings")
            values["keywords"] = tuple(words)
        elif isinstance(value, str):
            values[METADATA_KEYS[key]] = value
        else:
            raise BadForm(f"Invalid value for metadata key '{key}': expected a string")
    return Metadata(**values)


def _watermark(form: Mapping[str, str]) -> Watermark | None:
    source = (form.get("watermarkSource") or "").strip()
    text = form.get("watermarkExpression") or ""
    settings = _json_object("watermarkOptions", form.get("watermarkOptions"))
    if not source:
        if text or settings:
            raise BadForm("watermarkExpression and watermarkOptions need watermarkSource=text")
        return None
    if source != "text":
        raise BadForm(f"watermarkSource '{source}' is not implemented by this converter "
                      "(only 'text')")
    if not text.strip():
        raise BadForm("watermarkSource=text needs the text in watermarkExpression")
    unknown = sorted(set(settings) - {"opacity"})
    if unknown:
        raise BadForm("watermarkOptions key(s) not implemented by this converter: "
                      + ", ".join(f"'{k}'" for k in unknown) + " (only 'opacity')")
    # pdfcpu's own default is opaque (opacity 1); Gotenberg passes the value as a string.
    return Watermark(text=text, opacity=_opacity(settings.get("opacity", 1.0)))


def _opacity(value: object) -> float:
    try:
        opacity = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        opacity = math.nan
    if not 0.0 <= opacity <= 1.0:
        raise BadForm(f"Invalid watermark opacity '{value}': expected a number from 0 to 1")
    return opacity


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
