"""Hostile templates, data and packages against the real service (docs/security.md).

Each attack must fail safely with a clear 4xx problem, quickly, and leave the
service healthy.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, ServerProcess, start_service
from converter.converter_docs import add_file, edit_part, with_macros
from docx_helpers import make_docx, part_texts

SSTI = [
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '%(a)s'.format_map({'a': ''.__class__}) }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ request.application.__globals__ }}",
]


ATTACKED_ENV = {"GENDOC_RENDER_TIMEOUT": "3", "GENDOC_RENDER_MEMORY_MB": "700"}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_service(tmp_path_factory.mktemp("attacks"), env=ATTACKED_ENV)
    yield server
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # still healthy after all
    server.stop()


def render(svc: ServerProcess, docx: bytes, data: dict | None = None) -> httpx.Response:
    return httpx.post(f"{svc.url}/v1/render", files={"template": ("t.docx", docx)},
                      data={"data": json.dumps(data or {}), "format": "docx"}, timeout=30)


def footnote_template(payload: str) -> bytes:
    """docxtpl's footnote template with its footnote's tag replaced by the payload."""
    from converter.converter_docs import escape

    src = (CORPUS / "templates" / "footnotes_tpl.docx").read_bytes()

    def edit(xml: str) -> str:
        assert "<w:t>a_jinja_variable</w:t>" in xml
        return xml.replace("<w:t>a_jinja_variable</w:t>", f"<w:t>{escape(payload)[2:-2]}</w:t>")

    return edit_part(src, "word/footnotes.xml", edit)


PARTS = {
    "body": lambda p: make_docx(p),
    "header": lambda p: make_docx("x", header=p),
    "footer": lambda p: make_docx("x", footer=p),
    "footnotes": footnote_template,
    "properties": lambda p: make_docx("x", title=p),
}


def test_forty_injection_cases() -> None:
    """docs/security.md counts 40 cases: every payload in every part."""
    assert len(SSTI) * len(PARTS) == 40


@pytest.mark.parametrize("part", list(PARTS))
@pytest.mark.parametrize("payload", SSTI, ids=range(len(SSTI)))
def test_template_injection_is_refused_in_every_part(svc: ServerProcess, part: str,
                                                     payload: str) -> None:
    docx = PARTS[part](payload)
    r = render(svc, docx, {"a_jinja_variable": "v"})
    assert r.status_code == 422, (part, payload, r.text[:300])
    kind = r.json()["type"].rsplit("/", 1)[1]
    assert kind in ("template-security-violation", "template-render-error"), r.json()
    assert "uid=" not in r.text  # nothing ran


def test_injection_payloads_in_data_are_text(svc: ServerProcess) -> None:
    values = [*SSTI, "{% for x in range(10**9) %}x{% endfor %}", "</w:t></w:r><w:r><w:t>x",
              '<w:fldSimple w:instr="INCLUDETEXT &quot;/etc/passwd&quot;"/>', "&lt;&amp;"]
    r = render(svc, make_docx(*[f"[{{{{ v{i} }}}}]" for i in range(len(values))]),
               {f"v{i}": v for i, v in enumerate(values)})
    assert r.status_code == 200, r.text
    body = part_texts(r.content)["word/document.xml"]
    for value in values:
        assert f"[{value}]" in body
    xml = zipfile.ZipFile(io.BytesIO(r.content)).read("word/document.xml").decode()
    assert "<w:fldSimple" not in xml


# Each attack and the limit that stops it: the worker's time limit (3 s here), its
# address-space limit (700 MB here), or the sandbox itself.
EXHAUSTION = {
    "nested-loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                     "{% endfor %}", "render-time-limit"),
    "string-multiply": ("{{ 'x' * 3000000000 }}", "render-memory-limit"),
    "huge-range": ("{% for i in range(99999999999) %}{% endfor %}", "template-render-error"),
    "list-multiply": ("{{ [1] * 10**10 }}", "render-memory-limit"),
    "deep-nesting": ("{% if true %}" * 500 + "x" + "{% endif %}" * 500, "template-render-error"),
}


@pytest.mark.parametrize("name", list(EXHAUSTION))
def test_resource_exhaustion_is_bounded(svc: ServerProcess, name: str) -> None:
    template, expected = EXHAUSTION[name]
    r = render(svc, make_docx(template))
    assert r.status_code == 422, r.text[:300]
    assert r.json()["type"].rsplit("/", 1)[1] == expected, r.json()
    if expected == "render-time-limit":
        assert "3 s" in r.json()["detail"], r.json()  # GENDOC_RENDER_TIMEOUT, not later
    ok = render(svc, make_docx("after {{ x }}"), {"x": "ok"})  # other requests unaffected
    assert ok.status_code == 200


def test_the_time_limit_counts_rendering_not_the_workers_start_up(tmp_path: Path) -> None:
    """A time limit shorter than a worker's start-up (about 1 s) still lets a small template
    render, also on the worker that replaces one the limit stopped: only rendering counts."""
    server = start_service(tmp_path, env={"GENDOC_RENDER_TIMEOUT": "0.5",
                                          "GENDOC_RENDER_WORKERS": "1"})
    try:
        assert render(server, make_docx("first {{ x }}"), {"x": "ok"}).status_code == 200
        endless = render(server, make_docx(EXHAUSTION["nested-loops"][0]))
        assert endless.json()["type"].endswith("/render-time-limit"), endless.json()
        after = render(server, make_docx("after {{ x }}"), {"x": "ok"})  # a fresh worker
        assert after.status_code == 200, after.text
    finally:
        server.stop()


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return out.getvalue()


def _duplicate_entries() -> bytes:
    """A real .docx plus a second word/document.xml entry (which one wins depends on the reader)."""
    import warnings

    src = zipfile.ZipFile(io.BytesIO(make_docx("a")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate: that is the point
        for info in src.infolist():
            z.writestr(info, src.read(info))
        z.writestr("word/document.xml", b"<w:document/>")
    return out.getvalue()


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">'
                             % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10)
                             for i in range(1, 10))
                  + b']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                  b"<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
       b"<w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>")

MALFORMED = {
    "zip-bomb-ratio": _zip([("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"<x/>"),
                            ("word/media/bomb.bin", b"\0" * (80 << 20))]),
    "zip-bomb-entries": _zip([(f"word/f{i}.xml", b"") for i in range(5000)]),
    "duplicate-entries": _duplicate_entries(),
    "billion-laughs": edit_part(make_docx("x"), "word/document.xml",
                                lambda _: BILLION_LAUGHS.decode()),
    "xxe": edit_part(make_docx("x"), "word/document.xml", lambda _: XXE.decode()),
    "xxe-in-header": edit_part(make_docx("x", header="h"), "word/header1.xml",
                               lambda _: XXE.decode()),
    "missing-document-part": _zip([("[Content_Types].xml", b"<Types/>")]),
    "not-a-zip": b"This is plain text pretending to be a .docx",
    "truncated-zip": make_docx("x")[:500],
    "docm": with_macros(make_docx("x")),
    "vba-part-only": add_file(make_docx("x"), "word/vbaProject.bin", b"\xd0\xcf\x11\xe0"),
    "rtf": (b"{\\rtf1\\ansi{\\fonttbl\\f0\\fswiss Helvetica;}\\f0\\pard Hello "
            b"{\\field{\\*\\fldinst INCLUDETEXT \"/etc/passwd\"}}\\par}"),
    "html": b"<html><body><img src='http://127.0.0.1:9/x'>{{ x }}</body></html>",
    "flat-odf": (b'<?xml version="1.0"?><office:document xmlns:office="urn:oasis:names:tc:'
                 b'opendocument:xmlns:office:1.0" '
                 b'office:mimetype="application/vnd.oasis.opendocument.text"/>'),
    "odt-zip": _zip([("mimetype", b"application/vnd.oasis.opendocument.text"),
                     ("content.xml", b"<x/>")], zipfile.ZIP_STORED),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_and_confused_packages_are_refused(svc: ServerProcess, name: str) -> None:
    """422 invalid-docx, stateless and stored alike. That bombs are refused before anything
    is inflated is shown structurally in tests/service/test_docxpkg.py (a bomb whose data
    cannot be inflated at all is refused for its declared sizes)."""
    data = MALFORMED[name]
    stateless = render(svc, data)
    stored = httpx.put(f"{svc.url}/v1/templates/bad-{name}", content=data,
                       headers={"content-type": "application/octet-stream"}, timeout=30)
    for r in (stateless, stored):
        assert r.status_code == 422, (name, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["type"].endswith("/invalid-docx"), r.json()
    assert "root:" not in stateless.text


def test_service_rss_stays_bounded_after_the_attacks(tmp_path: Path) -> None:
    """docs/security.md: service and render workers stay under 900 MB after every attack.
    Its own service, attacked here, so the figure does not depend on which tests ran before."""
    from gendoc.procs import tree_rss_kb

    server = start_service(tmp_path, env=ATTACKED_ENV)
    try:
        for payload in SSTI:
            assert render(server, make_docx(payload)).status_code == 422
        for template, _ in EXHAUSTION.values():
            assert render(server, make_docx(template)).status_code == 422
        for data in MALFORMED.values():
            assert render(server, data).status_code == 422
        assert render(server, make_docx("after {{ x }}"), {"x": "ok"}).status_code == 200
        assert tree_rss_kb([server.proc.pid]) / 1024 < 900
    finally:
        server.stop()
