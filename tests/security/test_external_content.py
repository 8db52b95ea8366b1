"""External content through the whole stack: a canary on 127.0.0.1 hears nothing,
no local file reaches the PDF (templates come from other teams: they are untrusted)."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from converter.converter_docs import (
    IMAGE_REL,
    R_NS,
    add_relationship,
    append_body,
    complex_field,
    linked_picture,
    simple_field,
)
from docx_helpers import make_docx

from conftest import ServerProcess, start_service

pytestmark = pytest.mark.libreoffice
SECRET = "gendoc-canary-secret-7f3a"


class Canary(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        Canary.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(SECRET.encode())

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def canary() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Canary)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from converter.converter_support import start_converter

    tmp = tmp_path_factory.mktemp("external")
    converter = start_converter(tmp, pool_size=1)
    service = start_service(tmp, converter_url=converter.url)
    yield service
    service.stop()
    converter.stop()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET)
    return path


def hostile_templates(canary: str, secret: Path) -> dict[str, bytes]:
    base = make_docx("Invoice for {{ who }}")
    ole = f"{R_NS}/oleObject"
    return {
        "linked-image-http": append_body(add_relationship(base, "rIdX1", IMAGE_REL, f"{canary}/img.png"),
                                         linked_picture("rIdX1")),
        "linked-image-file": append_body(add_relationship(base, "rIdX2", IMAGE_REL, secret.as_uri()),
                                         linked_picture("rIdX2")),
        "linked-ole": add_relationship(base, "rIdX3", ole, f"{canary}/ole.bin"),
        "includepicture-http": append_body(base, complex_field(f'INCLUDEPICTURE "{canary}/f.png" \\d', "p")),
        "includetext-file": append_body(base, complex_field(f'INCLUDETEXT "{secret}"', "t", split=True)),
        "includetext-http": append_body(base, simple_field(f'INCLUDETEXT "{canary}/t.txt"', "t")),
        "link-field": append_body(base, simple_field(f'LINK Word.Document.8 "{secret}" ""', "l")),
    }


def test_external_content_is_never_fetched(stack: ServerProcess, canary: str, secret_file: Path,
                                           tmp_path: Path) -> None:
    Canary.hits.clear()
    for name, template in hostile_templates(canary, secret_file).items():
        r = httpx.post(f"{stack.url}/v1/render", files={"template": ("t.docx", template)},
                       data={"data": '{"who": "Ada"}', "format": "pdf"}, timeout=60)
        assert r.status_code in (200, 422), (name, r.text[:300])
        if r.status_code == 200:
            (tmp_path / f"{name}.pdf").write_bytes(r.content)
            text = subprocess.run(["pdftotext", str(tmp_path / f"{name}.pdf"), "-"],
                                  capture_output=True, text=True, check=True).stdout
            assert SECRET not in text, name
            assert "Invoice for Ada" in re.sub(r"\s+", " ", text), name
    assert Canary.hits == [], Canary.hits


def test_data_cannot_add_links_or_fields(stack: ServerProcess, canary: str, secret_file: Path) -> None:
    """A rich-text link must be http(s)/mailto, and markup in data is text."""
    Canary.hits.clear()
    bad_link = {"v": {"$richtext": [{"text": "x", "url": secret_file.as_uri()}]}}
    r = httpx.post(f"{stack.url}/v1/render", files={"template": ("t.docx", make_docx("{{r v }}"))},
                   data={"data": json.dumps(bad_link), "format": "pdf"})
    assert r.status_code == 422
    field_text = {"v": f'<w:fldSimple w:instr="INCLUDEPICTURE &quot;{canary}/d.png&quot;"/>'}
    r = httpx.post(f"{stack.url}/v1/render", files={"template": ("t.docx", make_docx("{{ v }}"))},
                   data={"data": json.dumps(field_text), "format": "pdf"})
    assert r.status_code == 200
    assert Canary.hits == []
