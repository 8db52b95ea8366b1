"""$qrcode and $barcode rich values: the library's own image of the value, at the size asked.

Each test compares the picture in the rendered DOCX with what segno or
python-barcode draw for the same value (so the content is the value's), and
reads the drawing's extent (so the printed size is the one asked, in mm). A
reader that is not the writer (zxing-cpp) decodes the pictures back to the
payload, so a scanner would read what the data said.
"""

from __future__ import annotations

import io
import struct
import uuid
import zipfile

import barcode
import httpx
import pytest
import segno
import zxingcpp
from barcode.writer import ImageWriter
from docx.shared import Mm
from docx_helpers import make_docx
from gendoc_service.errors import InvalidRequest
from gendoc_service.rendering import Renderer
from lxml import etree
from PIL import Image

WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(8 << 20)


def pictures(docx: bytes) -> list[tuple[bytes, int, int]]:
    """(image bytes, extent width, extent height in EMU) of each picture in the body."""
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        media = [z.read(n) for n in sorted(z.namelist()) if n.startswith("word/media/")]
        root = etree.fromstring(z.read("word/document.xml"))
    extents = [(int(e.get("cx")), int(e.get("cy"))) for e in root.iter(f"{WP}extent")]
    assert len(media) == len(extents)
    return [(m, cx, cy) for m, (cx, cy) in zip(media, extents, strict=True)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def qr_png(data: str, error: str = "M") -> bytes:
    out = io.BytesIO()
    segno.make(data, error=error, micro=False).save(out, kind="png", scale=10, border=4)
    return out.getvalue()


def barcode_png(kind: str, data: str) -> bytes:
    out = io.BytesIO()
    barcode.get_barcode_class(kind)(data, writer=ImageWriter()).write(
        out, options={"write_text": True})
    return out.getvalue()


def test_qrcode_is_segnos_image_at_the_size_asked(renderer: Renderer) -> None:
    url = "https://example.com/invoices/2026-0042?pay=1"
    out = renderer.render(make_docx("{{ qr }}"),
                          {"qr": {"$qrcode": {"data": url, "size_mm": 25, "error": "Q"}}})
    [(image, cx, cy)] = pictures(out)
    assert image == qr_png(url, "Q")
    assert cx == cy == Mm(25)
    assert png_size(image)[0] == png_size(image)[1] > 0


def test_qrcode_default_size_is_30_mm(renderer: Renderer) -> None:
    out = renderer.render(make_docx("{{ qr }}"), {"qr": {"$qrcode": {"data": "x"}}})
    [(_, cx, cy)] = pictures(out)
    assert cx == cy == Mm(30)


@pytest.mark.parametrize(("kind", "data", "width_mm"), [
    ("code128", "INV-2026-0042", 60), ("ean13", "400638133393", 37.29),
    ("ean13", "4006381333931", 40),
])
def test_barcode_is_python_barcodes_image_at_the_width_asked(
        renderer: Renderer, kind: str, data: str, width_mm: float) -> None:
    out = renderer.render(make_docx("{{ code }}"),
                          {"code": {"$barcode": {"data": data, "type": kind,
                                                 "width_mm": width_mm}}})
    [(image, cx, cy)] = pictures(out)
    assert image == barcode_png(kind, data)
    assert cx == Mm(width_mm)
    width, height = png_size(image)
    assert cy == pytest.approx(cx * height / width, rel=0.01)  # height follows the width


def test_barcode_width_and_height(renderer: Renderer) -> None:
    out = renderer.render(make_docx("{{ c }}"), {"c": {"$barcode": {
        "data": "A1", "width_mm": 40, "height_mm": 12}}})
    [(_, cx, cy)] = pictures(out)
    assert (cx, cy) == (Mm(40), Mm(12))


@pytest.mark.parametrize(("value", "message"), [
    ({"$qrcode": {"data": ""}}, '"$qrcode" needs'),
    ({"$qrcode": {"data": "x", "error": "Z"}}, "error must be"),
    ({"$qrcode": {"data": "x", "size_mm": 0}}, "size_mm must be"),
    ({"$qrcode": {"data": "x" * 8000}}, "too long for a QR code"),
    ({"$barcode": {"data": "4006381333932", "type": "ean13"}}, "check digit"),
    ({"$barcode": {"data": "40063813339", "type": "ean13"}}, "not a valid ean13"),
    ({"$barcode": {"data": "x", "type": "pdf417"}}, "type must be"),
    ({"$barcode": {"data": "x", "colour": "red"}}, '"$barcode" needs'),
    ({"$barcode": {"data": "x" * 81}}, "at most 80"),
    ({"$barcode": {"data": "x", "text": "no"}}, "text must be"),
])
def test_bad_codes_are_422_naming_the_path(renderer: Renderer, value: object,
                                           message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        renderer.render(make_docx("{{ doc.v }}"), {"doc": {"v": value}})
    assert caught.value.extensions["errors"][0]["field"] == "data.doc.v"
    assert message in caught.value.detail


def test_codes_through_the_api(client: httpx.Client) -> None:
    name = f"codes-{uuid.uuid4().hex[:10]}"
    assert client.put(f"/v1/templates/{name}", content=make_docx("{{ qr }}", "{{ ean }}"),
                      headers={"content-type": "application/octet-stream"}).status_code == 201
    r = client.post("/v1/render", json={"template": name, "format": "docx", "data": {
        "qr": {"$qrcode": {"data": "gendoc", "size_mm": 20}},
        "ean": {"$barcode": {"data": "400638133393", "type": "ean13"}}}})
    assert r.status_code == 200, r.text
    found = {image: (cx, cy) for image, cx, cy in pictures(r.content)}
    assert found[qr_png("gendoc")] == (Mm(20), Mm(20))
    assert found[barcode_png("ean13", "400638133393")][0] == Mm(37.29)
    bad = client.post("/v1/render", json={"template": name, "format": "docx", "data": {
        "qr": "x", "ean": {"$barcode": {"data": "4006381333932", "type": "ean13"}}}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "data.ean"


def decoded(docx: bytes) -> list[tuple[str, str]]:
    """(format, text) zxing-cpp reads from each picture of the document, in order."""
    found = []
    for image, _, _ in pictures(docx):
        codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(image)))
        assert len(codes) == 1, codes
        found.append((str(codes[0].format), codes[0].text))
    return found


def test_rendered_codes_decode_to_their_payload(client: httpx.Client) -> None:
    name = f"decode-{uuid.uuid4().hex[:10]}"
    assert client.put(f"/v1/templates/{name}", content=make_docx("{{ qr }}", "{{ c128 }}",
                                                                 "{{ ean }}"),
                      headers={"content-type": "application/octet-stream"}).status_code == 201
    url = "https://example.com/pay?invoice=2026-0042&amount=1234.50&who=Zoë"
    r = client.post("/v1/render", json={"template": name, "format": "docx", "data": {
        "qr": {"$qrcode": {"data": url, "size_mm": 25, "error": "H"}},
        "c128": {"$barcode": {"data": "INV-2026-0042/x", "width_mm": 60, "text": False}},
        "ean": {"$barcode": {"data": "400638133393", "type": "ean13"}}}})
    assert r.status_code == 200, r.text
    # The check digit the service computed for 12 digits is the one a scanner reads.
    assert decoded(r.content) == [
        ("QR Code", url), ("Code 128", "INV-2026-0042/x"), ("EAN-13", "4006381333931")]
    # And each is printed at the size asked (EAN-13's default: its nominal 37.29 mm).
    assert [(cx, cy) if i == 0 else cx for i, (_, cx, cy) in enumerate(pictures(r.content))] == [
        (Mm(25), Mm(25)), Mm(60), Mm(37.29)]
