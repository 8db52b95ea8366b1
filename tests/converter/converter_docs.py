"""Test documents made on the fly: python-docx plus zip editing (no binary fixtures)."""

from __future__ import annotations

import io
import re
import zipfile

from docx import Document

R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
IMAGE_REL = f"{R_NS}/image"
HYPERLINK_REL = f"{R_NS}/hyperlink"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def make_docx(*paragraphs: str) -> bytes:
    doc = Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def edit_part(docx: bytes, name: str, edit: object) -> bytes:
    """Rewrite one part of the package with `edit(text) -> text`."""
    src = zipfile.ZipFile(io.BytesIO(docx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == name:
                data = edit(data.decode()).encode()  # type: ignore[operator]
            dst.writestr(item, data)
    return out.getvalue()


def add_file(docx: bytes, name: str, data: bytes) -> bytes:
    out = io.BytesIO(docx)
    with zipfile.ZipFile(out, "a") as z:
        z.writestr(name, data)
    return out.getvalue()


def add_relationship(docx: bytes, rid: str, rel_type: str, target: str,
                     external: bool = True, part: str = "word/_rels/document.xml.rels") -> bytes:
    mode = ' TargetMode="External"' if external else ""
    rel = f'<Relationship Id="{rid}" Type="{rel_type}" Target="{target}"{mode}/>'
    return edit_part(docx, part, lambda x: x.replace("</Relationships>", rel + "</Relationships>"))


def append_body(docx: bytes, xml: str) -> bytes:
    """Insert WordprocessingML before the body's final section properties."""
    def edit(text: str) -> str:
        head, sep, tail = text.rpartition("<w:sectPr")
        return head + xml + sep + tail
    return edit_part(docx, "word/document.xml", edit)


def linked_picture(rid: str) -> str:
    """A DrawingML picture whose image is linked (r:link), as Word's 'Insert and Link'."""
    return (
        '<w:p><w:r><w:drawing><wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/'
        '2006/wordprocessingDrawing"><wp:extent cx="914400" cy="914400"/><wp:docPr id="99" '
        'name="Linked"/><a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic '
        'xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr>'
        '<pic:cNvPr id="99" name="Linked"/><pic:cNvPicPr/></pic:nvPicPr><pic:blipFill>'
        f'<a:blip r:link="{rid}"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill><pic:spPr>'
        '<a:xfrm><a:off x="0" y="0"/><a:ext cx="914400" cy="914400"/></a:xfrm><a:prstGeom '
        'prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic></a:graphicData></a:graphic>'
        "</wp:inline></w:drawing></w:r></w:p>"
    )


def complex_field(instruction: str, result: str, split: bool = False) -> str:
    """A paragraph with a begin/instrText/separate/result/end field (`split`: code in 2 runs)."""
    half = len(instruction) // 2
    parts = [instruction[:half], instruction[half:]] if split else [instruction]
    instr = "".join(f'<w:r><w:instrText xml:space="preserve">{escape(p)}</w:instrText></w:r>'
                    for p in parts)
    return (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>' + instr
        + '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        + f"<w:r><w:t>{escape(result)}</w:t></w:r>"
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )


def simple_field(instruction: str, result: str) -> str:
    return (f'<w:p><w:fldSimple w:instr="{escape(instruction)}"><w:r><w:t>{escape(result)}</w:t>'
            "</w:r></w:fldSimple></w:p>")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;")


def with_macros(docx: bytes) -> bytes:
    """A .docm-like package: a VBA project part and its content type."""
    docx = add_file(docx, "word/vbaProject.bin", b"\xd0\xcf\x11\xe0 not really a VBA project")
    return edit_part(docx, "[Content_Types].xml", lambda x: re.sub(
        r"document\.main\+xml", "document.macroEnabled.main+xml", x))


def tiny_png(rgb: tuple[int, int, int] = (200, 30, 30), size: int = 8) -> bytes:
    """A small solid-colour PNG, written by hand (zlib + CRCs)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b""))
