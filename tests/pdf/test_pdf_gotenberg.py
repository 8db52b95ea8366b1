"""The service's `pdf` options with a real Gotenberg 8.34 as its converter (built and
cached by scripts/gotenberg.sh, as in tests/gotenberg): the same Gotenberg fields the
service sends our converter give a Gotenberg the same options. What Gotenberg does with
each is docs/pdf.md's table; here the document says it."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pikepdf
import pytest
from conftest import ServerProcess, start_service
from docx_helpers import make_docx
from pdf.pdf_support import page_texts, squeezed, verapdf, xmp_and_info

from gendoc.bench.peers import start_gotenberg
from gendoc.readiness import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.libreoffice]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("pdfgotenberg")
    gotenberg = start_gotenberg(tmp)
    try:
        server = start_service(tmp, converter_url=gotenberg.url)
        try:
            wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200,
                       30, what="service ready against Gotenberg")
            yield server
        finally:
            server.stop()
    finally:
        gotenberg.stop()


def _render(service: ServerProcess, pdf: dict[str, object]) -> bytes:
    name = f"g-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=service.url, timeout=120) as client:
        client.put(f"/v1/templates/{name}", content=make_docx("Hello {{ name }}", title="Hi"),
                   headers={"content-type": DOCX}).raise_for_status()
        r = client.post("/v1/render", json={"template": name, "data": {"name": "Ada"},
                                            "pdf": pdf})
    assert r.status_code == 200, r.text
    return r.content


def test_gotenberg_applies_password_watermark_and_metadata(service: ServerProcess) -> None:
    pdf = _render(service, {
        "password": {"user": "u", "owner": "o", "permissions": ["print"]},
        "watermark": {"text": "GOTENBERG", "opacity": 0.5},
        "metadata": {"title": "From Gotenberg", "author": "exiftool"}})
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(pdf))
    with pikepdf.open(io.BytesIO(pdf), password="u") as doc:  # qpdf's encryption
        assert doc.allow.print_highres and not doc.allow.extract
    text = page_texts(pdf, "u")[0]
    assert "HelloAda" in squeezed(text) and "GOTENBERG" in text  # pdfcpu's watermark
    _, info = xmp_and_info(pdf, "u")
    assert info["/Title"] == "From Gotenberg" and info["/Author"] == "exiftool"


def test_gotenberg_pdfa_with_pdfua(service: ServerProcess, tmp_path: Path) -> None:
    """Without post-processing, Gotenberg has LibreOffice export PDF/A and PDF/UA, as
    ours does; LibreOffice 7.4's XMP then lacks the PDF/UA extension schema, which our
    converter adds (finishing.py) and Gotenberg does not."""
    pdf = _render(service, {"standard": "PDF/A-2b", "ua": True})
    xmp, _ = xmp_and_info(pdf)
    assert (xmp["pdfaid:part"], xmp["pdfuaid:part"]) == ("2", "1")
    assert verapdf({"g": pdf}, "ua1", tmp_path) == {"g": "PASS"}
    # PDF/A-2 6.6.2.3.1: pdfuaid:part is in the XMP without an extension schema.
    assert verapdf({"g": pdf}, "2b", tmp_path) == {"g": "FAIL 6.6.2.3.1-1 6.6.2.3.1-2"}
