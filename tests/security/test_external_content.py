"""External content through the whole stack: a canary on 127.0.0.1 hears nothing,
no local file reaches the PDF (templates come from other teams: they are untrusted)."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from conftest import ServerProcess, start_service
from converter.converter_docs import (
    IMAGE_REL,
    R_NS,
    add_relationship,
    append_body,
    complex_field,
    edit_part,
    linked_picture,
    simple_field,
    with_macros,
)
from converter.converter_support import CONVERT, docx_file, pdf_text
from docx_helpers import make_docx, uninflatable_bomb, with_part_reencoded

pytestmark = pytest.mark.libreoffice
SECRET = "gendoc-canary-secret-7f3a"


class Canary(http.server.BaseHTTPRequestHandler):
    """Answers any request with the secret; every connection is recorded by CanaryServer."""

    def handle_one_request(self) -> None:
        # Any method (LibreOffice's WebDAV layer sends HEAD and PROPFIND too) counts.
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            return
        CanaryServer.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(SECRET)))
        self.end_headers()
        self.wfile.write(SECRET.encode())
        self.wfile.flush()

    def log_message(self, *_: object) -> None:
        pass


class CanaryServer(http.server.ThreadingHTTPServer):
    """Records every accepted TCP connection, before a byte is read: 'heard nothing' means
    nothing connected at all, whatever it would have sent."""

    hits: ClassVar[list[str]] = []  # one per connection
    paths: ClassVar[list[str]] = []  # one per request read

    def verify_request(self, request: object, client_address: object) -> bool:
        CanaryServer.hits.append(str(client_address))
        return True


@pytest.fixture(scope="module")
def canary() -> Iterator[str]:
    server = CanaryServer(("127.0.0.1", 0), Canary)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The service and its converter (one LibreOffice instance)."""
    from converter.converter_support import start_converter

    tmp = tmp_path_factory.mktemp("external")
    converter = start_converter(tmp, pool_size=1)
    service = start_service(tmp, converter_url=converter.url)
    yield service, converter
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
        "linked-image-http": append_body(
            add_relationship(base, "rIdX1", IMAGE_REL, f"{canary}/img.png"),
            linked_picture("rIdX1")),
        "linked-image-file": append_body(
            add_relationship(base, "rIdX2", IMAGE_REL, secret.as_uri()), linked_picture("rIdX2")),
        "linked-ole": add_relationship(base, "rIdX3", ole, f"{canary}/ole.bin"),
        "includepicture-http": append_body(
            base, complex_field(f'INCLUDEPICTURE "{canary}/f.png" \\d', "p")),
        "includetext-file": append_body(
            base, complex_field(f'INCLUDETEXT "{secret}"', "t", split=True)),
        "includetext-http": append_body(base, simple_field(f'INCLUDETEXT "{canary}/t.txt"', "t")),
        "link-field": append_body(base, simple_field(f'LINK Word.Document.8 "{secret}" ""', "l")),
        # The linked image again, spelled so that no byte pattern finds "External".
        "linked-image-charref": edit_part(
            append_body(add_relationship(base, "rIdX4", IMAGE_REL, f"{canary}/charref.png"),
                        linked_picture("rIdX4")),
            RELS, lambda xml: xml.replace(' TargetMode="External"', ' TargetMode="&#69;xternal"')),
        "linked-image-utf16": with_part_reencoded(
            append_body(add_relationship(base, "rIdX5", IMAGE_REL, f"{canary}/utf16.png"),
                        linked_picture("rIdX5")), RELS),
    }


RELS = "word/_rels/document.xml.rels"
# Those a default LibreOffice 7.4 fetches (the others it ignores even unprotected).
LIVE = {"linked-image-http": "/img.png", "linked-image-charref": "/charref.png",
        "linked-image-utf16": "/utf16.png"}


HOSTILE = ["linked-image-http", "linked-image-file", "linked-ole", "includepicture-http",
           "includetext-file", "includetext-http", "link-field", "linked-image-charref",
           "linked-image-utf16"]


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def neutralised(converter: ServerProcess, trace: str) -> list[str]:
    """The converter's log lines of request `trace` saying what the sanitizer neutralised."""
    return [line for line in converter.logs().splitlines()
            if f"[{trace}]" in line and "neutralised external references" in line]


def test_the_canary_hears_what_is_fetched(canary: str) -> None:
    """The canary itself works: without it, 'it heard nothing' would prove nothing."""
    CanaryServer.hits.clear()
    assert httpx.request("PROPFIND", f"{canary}/probe").text == SECRET
    assert len(CanaryServer.hits) == 1
    CanaryServer.hits.clear()


def test_a_default_libreoffice_fetches_the_linked_images(canary: str, secret_file: Path,
                                                        tmp_path: Path) -> None:
    """The documents are real attacks: LibreOffice with a fresh default profile and no
    sanitizer fetches each linked image from the canary (OPTIONS, HEAD, GET with 7.4), the
    character-reference and UTF-16 spellings too. So when the tests below hear nothing, it
    is gendoc's defences that held."""
    templates = hostile_templates(canary, secret_file)
    documents = []
    for name in LIVE:
        documents.append(tmp_path / f"{name}.docx")
        documents[-1].write_bytes(templates[name])
    CanaryServer.paths.clear()
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation={(tmp_path / 'p').as_uri()}",
                    "--convert-to", "pdf", "--outdir", str(tmp_path), *map(str, documents)],
                   check=True, capture_output=True, timeout=300)
    for name, path in LIVE.items():
        assert (tmp_path / f"{name}.pdf").exists(), name
        assert path in CanaryServer.paths, (name, CanaryServer.paths)
    CanaryServer.hits.clear()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_document_reaches_libreoffice_and_fetches_nothing(
        stack: tuple[ServerProcess, ServerProcess], canary: str, secret_file: Path,
        tmp_path: Path, name: str) -> None:
    """Each hostile document is converted by LibreOffice, sent straight to the converter's API
    and through the service: a PDF with the document's own text comes back (so it was loaded,
    not refused on the way), the sanitizer logged what it neutralised for that very request,
    the canary heard nothing and no local file's content is in the PDF."""
    service, converter = stack
    templates = hostile_templates(canary, secret_file)
    assert list(templates) == HOSTILE and len(HOSTILE) == 9  # docs/security.md counts 9
    template = templates[name]
    CanaryServer.hits.clear()
    CanaryServer.paths.clear()

    trace = f"direct-{name}-{uuid.uuid4().hex[:8]}"
    direct = httpx.post(f"{converter.url}{CONVERT}", files=[docx_file("t.docx", template)],
                        headers={"Gotenberg-Trace": trace}, timeout=60)
    assert direct.status_code == 200, (name, direct.text[:300])
    text = words(pdf_text(direct.content, tmp_path))
    assert "Invoice for {{ who }}" in text, (name, text)  # the template itself, unrendered
    assert SECRET not in text, name
    assert len(neutralised(converter, trace)) == 1, (name, converter.logs()[-2000:])

    request_id = f"service-{name}-{uuid.uuid4().hex[:8]}"
    rendered = httpx.post(f"{service.url}/v1/render", files={"template": ("t.docx", template)},
                          data={"data": '{"who": "Ada"}', "format": "pdf"},
                          headers={"X-Request-ID": request_id}, timeout=60)
    assert rendered.status_code == 200, (name, rendered.text[:300])
    text = words(pdf_text(rendered.content, tmp_path))
    assert "Invoice for Ada" in text, (name, text)
    assert SECRET not in text, name
    # The hostile reference survived rendering and reached the converter, which neutralised it.
    assert len(neutralised(converter, request_id)) == 1, (name, converter.logs()[-2000:])

    assert CanaryServer.hits == [] and CanaryServer.paths == [], (name, CanaryServer.paths)


def test_data_cannot_add_links_or_fields(stack: tuple[ServerProcess, ServerProcess], canary: str,
                                         secret_file: Path, tmp_path: Path) -> None:
    """A rich-text link must be http(s)/mailto, and markup in data is text."""
    service = stack[0]
    CanaryServer.hits.clear()
    bad_link = {"v": {"$richtext": [{"text": "x", "url": secret_file.as_uri()}]}}
    r = httpx.post(f"{service.url}/v1/render",
                   files={"template": ("t.docx", make_docx("{{r v }}"))},
                   data={"data": json.dumps(bad_link), "format": "pdf"})
    assert r.status_code == 422, r.text
    field_text = {"v": f'<w:fldSimple w:instr="INCLUDEPICTURE &quot;{canary}/d.png&quot;"/>'}
    r = httpx.post(f"{service.url}/v1/render",
                   files={"template": ("t.docx", make_docx("{{ v }}"))},
                   data={"data": json.dumps(field_text), "format": "pdf"}, timeout=60)
    assert r.status_code == 200, r.text
    assert "INCLUDEPICTURE" in words(pdf_text(r.content, tmp_path))  # printed as text
    assert CanaryServer.hits == []


def test_html_and_markdown_values_fetch_nothing(stack: tuple[ServerProcess, ServerProcess],
                                               canary: str, secret_file: Path,
                                               tmp_path: Path) -> None:
    """$html and $markdown pointing at external resources (pictures, frames, style sheets,
    CSS, media, a local file) render to a PDF of their text; the canary hears nothing. A
    link stays a link (a reader's click, not a fetch)."""
    service = stack[0]
    CanaryServer.hits.clear()
    CanaryServer.paths.clear()
    html = (f'<p>Visible html <img src="{canary}/img.png"> text</p>'
            f'<iframe src="{canary}/frame"></iframe><link rel="stylesheet" href="{canary}/s.css">'
            f'<p style="background:url({canary}/bg.png)">styled</p>'
            f'<video src="{canary}/v.mp4" poster="{canary}/poster.png"></video>'
            f'<object data="{canary}/o.bin"></object><embed src="{canary}/e.bin">'
            f'<img src="{secret_file.as_uri()}"><table background="{canary}/t.png"><tr>'
            f'<td>cell</td></tr></table><a href="{canary}/clicked">a link</a>')
    markdown = (f"Visible markdown ![pixel]({canary}/md.png)\n\n"
                f"![local]({secret_file.as_uri()}) [link]({canary}/md-link)\n")
    data = {"h": {"$html": html}, "m": {"$markdown": markdown}}
    r = httpx.post(f"{service.url}/v1/render",
                   files={"template": ("t.docx", make_docx("{{p h }}", "{{p m }}"))},
                   data={"data": json.dumps(data), "format": "pdf"}, timeout=120)
    assert r.status_code == 200, r.text
    text = words(pdf_text(r.content, tmp_path))
    for shown in ("Visible html text", "styled", "cell", "a link", "Visible markdown", "link"):
        assert shown in text, (shown, text)
    assert SECRET not in text
    assert CanaryServer.hits == [] and CanaryServer.paths == [], CanaryServer.paths


def test_the_converter_refuses_macros_doctypes_and_bombs_with_400(
        stack: tuple[ServerProcess, ServerProcess]) -> None:
    """docs/security.md: a macro package, a DOCTYPE or a zip bomb is a 400 from the
    converter's API too (the service answers 422 before it would get there)."""
    converter = stack[1]
    doctype = edit_part(make_docx("x"), "word/document.xml", lambda xml: xml.replace(
        "?>", '?><!DOCTYPE w:document [<!ENTITY e "External">]>', 1))
    for name, document, says in (("macros", with_macros(make_docx("x")), "macros"),
                                 ("doctype", doctype, "DOCTYPE"),
                                 ("bomb", uninflatable_bomb(), "more than the allowed 200:1")):
        r = httpx.post(f"{converter.url}{CONVERT}", files=[docx_file("t.docx", document)],
                       timeout=60)
        assert r.status_code == 400, (name, r.text)
        assert says in r.text, (name, r.text)
