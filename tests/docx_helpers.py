"""Small helpers to build and read .docx files in tests."""

from __future__ import annotations

import io
import re
import struct
import uuid
import zipfile
from pathlib import Path

import httpx
from docx import Document
from gendoc_service.docxpkg import DOCX_MEDIA_TYPE
from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def make_docx(*paragraphs: str, header: str | None = None, footer: str | None = None,
              title: str | None = None) -> bytes:
    doc = Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    if header is not None:
        doc.sections[0].header.paragraphs[0].text = header
    if footer is not None:
        doc.sections[0].footer.paragraphs[0].text = footer
    if title is not None:
        doc.core_properties.title = title
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def store_docx(client: httpx.Client, docx: bytes, prefix: str) -> str:
    """Store `docx` through the API as a new template named `prefix-<random>`; its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    r = client.put(f"/v1/templates/{name}", content=docx,
                   headers={"content-type": DOCX_MEDIA_TYPE})
    assert r.status_code in (200, 201), r.text
    return name


def part_texts(docx: bytes | Path) -> dict[str, list[str]]:
    """Paragraph texts of the body, every header, footer and the footnotes, by part name."""
    raw = docx.read_bytes() if isinstance(docx, Path) else docx
    result: dict[str, list[str]] = {}
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        for name in sorted(z.namelist()):
            base = name.rsplit("/", 1)[-1]
            shown = base.startswith(("header", "footer", "footnotes"))
            if not (name == "word/document.xml" or shown):
                continue
            if not name.endswith(".xml") or not name.startswith("word/"):
                continue
            root = etree.fromstring(z.read(name))
            result[name] = [
                "".join(t.text or "" for t in p.iter(f"{W}t")) for p in root.iter(f"{W}p")
            ]
    return result


def replace_in_zip(docx: bytes, name: str, content: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(docx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, content if item.filename == name else src.read(item))
    return out.getvalue()


def uninflatable_bomb(declared: int = 80 << 20) -> bytes:
    """A .docx-shaped zip whose directory declares an entry of `declared` zero bytes that
    deflate about 1000:1, but whose stored data is not a deflate stream at all: reading it
    fails. A check that refuses it for its sizes has not tried to inflate anything."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", b"<Types/>")
        z.writestr("word/document.xml", b"<x/>")
        z.writestr("word/media/bomb.bin", b"\0" * declared)
    data = bytearray(out.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("word/media/bomb.bin")
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    data[start:start + info.compress_size] = b"\xff" * info.compress_size  # invalid block type
    return bytes(data)


def reencoded(xml: bytes, encoding: str) -> bytes:
    """An XML part (UTF-8, with a declaration) in another encoding, its declaration saying
    so; UTF-16 gets its byte-order mark. No byte of the UTF-8 spelling survives in UTF-16."""
    text = xml.decode()
    return re.sub(r"encoding=['\"]UTF-8['\"]", f"encoding='{encoding.upper()}'", text,
                  count=1, flags=re.I).encode(encoding)


def with_part_reencoded(docx: bytes, name: str, encoding: str = "utf-16") -> bytes:
    """The package with part `name` re-encoded (see `reencoded`)."""
    return replace_in_zip(docx, name, reencoded(zipfile.ZipFile(io.BytesIO(docx)).read(name),
                                                encoding))


# Templates that keep a render busy (pure Jinja looping). SLOW_LOOP ends on its
# own: ~1.5-3 s on an idle 2-core machine, up to ~15 s when test runs share the
# cores (threads cannot be stopped, so a thread backend needs one that ends).
# ENDLESS_LOOP would run for hours: only a time limit, a deadline or a
# shutdown ends it.
SLOW_LOOP = ("{% set ns = namespace(n=0) %}{% for i in range(1000) %}{% for j in range(1000) %}"
             "{% set ns.n = ns.n + j %}{% endfor %}{% endfor %}{{ ns.n }}")
ENDLESS_LOOP = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                "{% endfor %}")
