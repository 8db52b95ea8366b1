"""PDF finishing: what is done to a PDF after LibreOffice wrote it (bytes in, bytes out).

The counterpart of Gotenberg's pdfengines steps on its LibreOffice route, in the
same order: watermark, then metadata, then encryption last (8.34.0,
pkg/modules/libreoffice/routes.go). Unlike Gotenberg, which cannot keep PDF/A
through its post-processing (it re-converts with LibreOffice, and pdfcpu's
watermark font is not embedded), each step here keeps the PDF/A-2b/3b and PDF/UA
conformance LibreOffice gave the document:

- the watermark is text in an embedded font subset (fpdf2 draws it; PDF/A
  forbids unembedded fonts), placed as a Form XObject inside an `/Artifact`
  marked-content sequence (PDF/UA: content that is not part of the structure
  tree must be an artifact); its opacity is a constant-alpha ExtGState, which
  PDF/A-2 and -3 allow;
- metadata goes into the XMP packet and the document information dictionary
  together (PDF/A requires them to agree; pikepdf keeps them in step);
- encryption (AES-256, qpdf through pikepdf) is refused together with PDF/A by
  the options, as ISO 19005-2 6.1.3 forbids an Encrypt dictionary; with PDF/UA
  the accessibility permission stays granted (ISO 14289-1 7.16).
"""

from __future__ import annotations

import functools
import io
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf
from lxml import etree

# Gotenberg 8's permission fields (allowPrinting, ...) and the pikepdf
# Permissions flags each one grants. Anything not granted is denied.
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "printing": ("print_lowres", "print_highres"),
    "copying": ("extract",),
    "modifying": ("modify_other",),
    "annotating": ("modify_annotation",),
    "fillingForms": ("modify_form",),
    "assembling": ("modify_assembly",),
}


@dataclass(frozen=True)
class Metadata:
    title: str | None = None
    author: str | None = None
    subject: str | None = None
    keywords: tuple[str, ...] = ()
    creator: str | None = None
    producer: str | None = None

    def __bool__(self) -> bool:
        return any((self.title, self.author, self.subject, self.keywords, self.creator,
                    self.producer))


@dataclass(frozen=True)
class Watermark:
    text: str
    opacity: float = 0.25  # light enough to read the page through it


@dataclass(frozen=True)
class Encryption:
    user: str = ""  # empty: anyone may open it, the permissions still apply
    owner: str = ""  # empty: a random one, so that nobody can lift the restrictions
    allowed: frozenset[str] = field(default_factory=lambda: frozenset(PERMISSIONS))


@dataclass(frozen=True)
class Finishing:
    metadata: Metadata = Metadata()
    watermark: Watermark | None = None
    encryption: Encryption | None = None
    pdfa: bool = False  # LibreOffice exported PDF/A: keep it conformant
    pdfua: bool = False
    title_fallback: str = ""  # PDF/UA's title when the document has none (its file name)

    @property
    def needed(self) -> bool:
        """Anything to do? (PDF/UA always: its title; with PDF/A, LibreOffice 7.4's XMP.)"""
        return bool(self.metadata or self.watermark or self.encryption or self.pdfua)


def finish(pdf: bytes, finishing: Finishing, font: Path) -> bytes:
    """`pdf` with the watermark, metadata and encryption `finishing` asks for."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        if finishing.watermark is not None:
            _watermark(doc, finishing.watermark, font)
        if finishing.metadata:
            _metadata(doc, finishing.metadata)
        if finishing.pdfua:
            _ensure_title(doc, finishing.title_fallback)
        if finishing.pdfa and finishing.pdfua:
            _declare_pdfua_schema(doc)
        out = io.BytesIO()
        encryption = None
        if finishing.encryption is not None:
            encryption = _encryption(finishing.encryption)
        doc.save(out, encryption=encryption or False)
        return out.getvalue()


# -- watermark ---------------------------------------------------------------------------

_ARTIFACT = ("/Artifact <</Type /Pagination /Subtype /Watermark>> BDC "
             "q 1 0 0 1 {x:g} {y:g} cm {name} Do Q EMC\n")


def _watermark(doc: pikepdf.Pdf, watermark: Watermark, font: Path) -> None:
    """The text across every page, diagonally, under an /Artifact marker."""
    forms: dict[tuple[float, float], pikepdf.Object] = {}
    for page in doc.pages:
        box = page.mediabox
        x0, y0 = float(box[0]), float(box[1])
        size = (round(float(box[2]) - x0, 2), round(float(box[3]) - y0, 2))
        if size not in forms:
            forms[size] = _overlay(doc, watermark, font, *size)
        name = page.add_resource(forms[size], pikepdf.Name.XObject, prefix="GdWm")
        # The page's own content in q..Q, so that a state it leaves set cannot
        # move or recolour the watermark drawn after it (moved to the box's corner).
        page.contents_add(pikepdf.Stream(doc, b"q\n"), prepend=True)
        drawing = "Q\n" + _ARTIFACT.format(x=x0, y=y0, name=name)
        page.contents_add(pikepdf.Stream(doc, drawing.encode()))


def _overlay(doc: pikepdf.Pdf, watermark: Watermark, font: Path, width: float,
             height: float) -> pikepdf.Object:
    """A Form XObject of one page size holding the watermark, copied into `doc`."""
    drawn_pdf = _drawn(watermark, str(font), width, height)
    with pikepdf.open(io.BytesIO(drawn_pdf)) as drawn:
        form = drawn.pages[0].as_form_xobject()
        return doc.copy_foreign(form)


# Drawing reads and subsets the font (fonttools: about 0.2 s for DejaVu Sans); the
# same few watermarks ("DRAFT") on the same few page sizes come again and again.
@functools.lru_cache(maxsize=64)
def _drawn(watermark: Watermark, font: str, width: float, height: float) -> bytes:
    """A one-page PDF of `width` x `height` points with the watermark's text drawn."""
    from fpdf import FPDF

    sheet = FPDF(unit="pt", format=(width, height))
    sheet.set_margin(0)
    sheet.set_auto_page_break(False)
    sheet.add_page()
    sheet.add_font("Watermark", fname=font)
    # Sized so the text spans about 60% of the page's diagonal.
    diagonal = (width**2 + height**2) ** 0.5
    sheet.set_font("Watermark", size=100)
    points = min(200.0, 100 * 0.6 * diagonal / max(sheet.get_string_width(watermark.text), 1))
    sheet.set_font("Watermark", size=points)
    sheet.set_text_color(128, 128, 128)
    text_width = sheet.get_string_width(watermark.text)
    angle = _degrees(width, height)
    cx, cy = width / 2, height / 2
    translucent = sheet.local_context(fill_opacity=watermark.opacity)
    with translucent, sheet.rotation(angle, x=cx, y=cy):
        sheet.text(cx - text_width / 2, cy + points * 0.35, watermark.text)
    return bytes(sheet.output())


def _degrees(width: float, height: float) -> float:
    """The angle of the page's rising diagonal (bottom left to top right)."""
    import math

    return math.degrees(math.atan2(height, width))


# -- metadata ----------------------------------------------------------------------------

def _metadata(doc: pikepdf.Pdf, metadata: Metadata) -> None:
    # update_docinfo: pikepdf writes the same values into /Info, as PDF/A requires;
    # the producer LibreOffice recorded stays unless the caller names another.
    with doc.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as xmp:
        if metadata.title is not None:
            xmp["dc:title"] = metadata.title
        if metadata.author is not None:
            xmp["dc:creator"] = [metadata.author]
        if metadata.subject is not None:
            xmp["dc:description"] = metadata.subject
        if metadata.keywords:
            xmp["pdf:Keywords"] = ", ".join(metadata.keywords)
        if metadata.creator is not None:
            xmp["xmp:CreatorTool"] = metadata.creator
        if metadata.producer is not None:
            xmp["pdf:Producer"] = metadata.producer


def _ensure_title(doc: pikepdf.Pdf, fallback: str) -> None:
    """PDF/UA-1 7.1: the XMP has a dc:title and viewers show it (DisplayDocTitle).

    LibreOffice takes the title from the document's properties and, without one,
    writes none, so the PDF fails PDF/UA (veraPDF rules 7.1-9 and 7.1-10); the
    file's own name is then the title, as a viewer would show it anyway.
    """
    if not doc.open_metadata().get("dc:title"):
        title = str(doc.docinfo.get("/Title", "")) or fallback
        if title:
            with doc.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as xmp:
                xmp["dc:title"] = title
    preferences = doc.Root.get("/ViewerPreferences")
    if not isinstance(preferences, pikepdf.Dictionary):
        preferences = doc.Root.ViewerPreferences = pikepdf.Dictionary()
    preferences.DisplayDocTitle = True


# PDF/A-2 6.6.2.3.1: every XMP property outside the predefined schemas needs an
# extension schema in the packet. LibreOffice 7.4 writes pdfuaid:part for PDF/UA
# without one, so its PDF/A + PDF/UA export fails veraPDF's PDF/A-2b profile.
_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
}
PDFUA_NS = "http://www.aiim.org/pdfua/ns/id/"


def _declare_pdfua_schema(doc: pikepdf.Pdf) -> None:
    stream = doc.Root.get("/Metadata")
    if not isinstance(stream, pikepdf.Stream):
        return
    xmp = stream.read_bytes()
    if PDFUA_NS.encode() not in xmp or _NS["pdfaExtension"].encode() in xmp:
        return
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    root = etree.fromstring(xmp, parser)
    rdf = root.find(".//rdf:RDF", _NS) if root.tag != f"{{{_NS['rdf']}}}RDF" else root
    if rdf is None:
        return
    rdf.append(_pdfua_extension())
    body = etree.tostring(root, encoding="utf-8")
    packet = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n' + body
              + b"\n" + (b" " * 99 + b"\n") * 20 + b'<?xpacket end="w"?>')
    doc.Root.Metadata = doc.make_stream(packet, Type=pikepdf.Name.Metadata,
                                        Subtype=pikepdf.Name.XML)


def _pdfua_extension() -> etree._Element:
    def el(tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        prefix, local = tag.split(":")
        node = etree.Element(f"{{{_NS[prefix]}}}{local}", nsmap=_NS)
        for key, value in attrs.items():
            p, n = key.split("_", 1)
            node.set(f"{{{_NS[p]}}}{n}", value)
        node.text = text
        return node

    def tree(node: etree._Element, children: Iterable[etree._Element]) -> etree._Element:
        node.extend(children)
        return node

    resource = {"rdf_parseType": "Resource"}
    prop = tree(el("rdf:li", **resource), [
        el("pdfaProperty:name", "part"),
        el("pdfaProperty:valueType", "Integer"),
        el("pdfaProperty:category", "internal"),
        el("pdfaProperty:description", "Indicates, which part of ISO 14289 standard is "
           "followed"),
    ])
    schema = tree(el("rdf:li", **resource), [
        el("pdfaSchema:schema", "PDF/UA Universal Accessibility Schema"),
        el("pdfaSchema:namespaceURI", PDFUA_NS),
        el("pdfaSchema:prefix", "pdfuaid"),
        tree(el("pdfaSchema:property"), [tree(el("rdf:Seq"), [prop])]),
    ])
    schemas = tree(el("pdfaExtension:schemas"), [tree(el("rdf:Bag"), [schema])])
    return tree(el("rdf:Description", rdf_about=""), [schemas])


# -- encryption --------------------------------------------------------------------------

def _encryption(encryption: Encryption) -> pikepdf.Encryption:
    flags = {flag for name in encryption.allowed for flag in PERMISSIONS[name]}
    allow = pikepdf.Permissions(
        accessibility=True,  # screen readers may always extract (PDF/UA 7.16)
        **{flag: flag in flags for names in PERMISSIONS.values() for flag in names},
    )
    owner = encryption.owner or secrets.token_urlsafe(24)
    return pikepdf.Encryption(user=encryption.user, owner=owner, R=6, allow=allow)
