"""LibreOffice reaches neither the network nor the file system on a document's behalf.

Without protection, LibreOffice 7.4 fetches an image linked to an HTTP URL and
embeds an image linked with file:// (checked by hand with a default profile:
two requests reached the canary, the PDF held the local image). Here: through
the API (sanitising + profile), and the profile alone on an unsanitised document.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from converter.converter_docs import (
    IMAGE_REL,
    add_relationship,
    append_body,
    complex_field,
    linked_picture,
    make_docx,
    simple_field,
    tiny_png,
)
from converter.converter_support import CONVERT, docx_file, pdf_text
from gendoc_converter import profile
from gendoc_converter.instance import Instance
from gendoc_converter.options import ConversionOptions
from gendoc_converter.settings import ConverterSettings

pytestmark = pytest.mark.libreoffice
SECRET = "TOPSECRET-4711"


class Canary:
    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(tiny_png())

            do_HEAD = do_GET
            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()


@pytest.fixture
def secrets(tmp_path: Path) -> tuple[Path, Path]:
    text = tmp_path / "secret.txt"
    text.write_text(f"{SECRET} content of a local file\n")
    image = tmp_path / "secret.png"
    image.write_bytes(tiny_png())
    return text, image


def hostile_document(canary_url: str, text: Path, image: Path) -> bytes:
    doc = make_docx("Isolation test")
    doc = add_relationship(doc, "rIdNet", IMAGE_REL, f"{canary_url}/linked.png")
    doc = add_relationship(doc, "rIdFile", IMAGE_REL, image.as_uri())
    return append_body(doc, "".join([
        linked_picture("rIdNet"),
        linked_picture("rIdFile"),
        complex_field(f' INCLUDEPICTURE "{canary_url}/field.png" \\d ', "cached-picture"),
        complex_field(f' INCLUDETEXT "{canary_url}/text.txt" ', "cached-remote", split=True),
        complex_field(f' INCLUDETEXT "{text}" ', "cached-local"),
        simple_field(f' INCLUDETEXT "{text.as_uri()}" ', "cached-simple"),
    ]))


def images_in(pdf: bytes, tmp: Path) -> int:
    path = tmp / "images.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    return len(listing) - 2  # two header lines


def test_the_converter_fetches_nothing(http: httpx.Client, canary: Canary,
                                       secrets: tuple[Path, Path], tmp_path: Path) -> None:
    doc = hostile_document(canary.url, *secrets)
    response = http.post(CONVERT, files=[docx_file("hostile.docx", doc)])
    assert response.status_code == 200, response.text
    assert canary.hits == []
    text = pdf_text(response.content, tmp_path)
    assert "Isolation test" in text and "cached-remote" in text  # results kept as text
    assert SECRET not in text
    assert images_in(response.content, tmp_path) == 0


def test_the_profile_alone_blocks_links(canary: Canary, secrets: tuple[Path, Path],
                                        tmp_path: Path) -> None:
    """Defence in depth: an unsanitised document on an instance with our profile."""
    settings = ConverterSettings()
    template = tmp_path / "template"
    profile.make_template(settings.soffice, template, settings.soffice_environment,
                          settings.start_timeout)
    instance = Instance(0, 0, soffice=settings.soffice, template=template, root=tmp_path,
                        start_timeout=settings.start_timeout, stop_timeout=5,
                        environment=settings.soffice_environment)
    instance.start()
    try:
        pdf = instance.convert(hostile_document(canary.url, *secrets), ".docx",
                               ConversionOptions())
    finally:
        instance.stop()
    assert canary.hits == []
    assert SECRET not in pdf_text(pdf, tmp_path)
    assert images_in(pdf, tmp_path) == 0
    assert not instance.dir.exists()
    assert not any(p.exists() for p in profile.pipe_files(instance.dir / "profile"))
