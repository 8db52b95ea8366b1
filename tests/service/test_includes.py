"""Sub-templates: include('NAME') inserts a stored template rendered with the same data.

The renderer's part is tested alone (styles, numbering and images of the
sub-template survive into the document; strict mode reads sub-templates too),
the store walk against a real directory store (cycles, depth, missing names),
and the whole through the HTTP API of a real service, with the directory store
and with a real S3 server.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ServerProcess, start_service
from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.ns import qn
from docx.shared import Mm
from docx_helpers import make_docx, part_texts
from gendoc_service.errors import TemplateIncludeProblem, UndefinedVariables
from gendoc_service.includes import check_step, resolve
from gendoc_service.rendering import Renderer, RenderOptions
from gendoc_service.store import DirectoryStore
from lxml import etree
from PIL import Image
from s3_server import S3Server, versitygw_binary

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
R_EMBED = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"
A_BLIP = "{http://schemas.openxmlformats.org/drawingml/2006/main}blip"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(8 << 20)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


def _roman_list(doc: object) -> str:
    """A numbering definition the default template lacks (upper Roman), returning its numId."""
    numbering = doc.part.numbering_part.element  # type: ignore[attr-defined]
    abstract = etree.SubElement(numbering, qn("w:abstractNum"), {qn("w:abstractNumId"): "77"})
    level = etree.SubElement(abstract, qn("w:lvl"), {qn("w:ilvl"): "0"})
    etree.SubElement(level, qn("w:numFmt"), {qn("w:val"): "upperRoman"})
    etree.SubElement(level, qn("w:lvlText"), {qn("w:val"): "%1."})
    # abstractNum elements must come before num elements.
    numbering.remove(abstract)
    numbering.insert(0, abstract)
    num = etree.SubElement(numbering, qn("w:num"), {qn("w:numId"): "77"})
    etree.SubElement(num, qn("w:abstractNumId"), {qn("w:val"): "77"})
    return "77"


def letterhead() -> bytes:
    """A sub-template with its own paragraph style, its own numbering and a picture."""
    doc = Document()
    style = doc.styles.add_style("GendocLetterhead", WD_STYLE_TYPE.PARAGRAPH)
    style.font.bold = True
    doc.add_paragraph("ACME for {{ customer.name }}", style="GendocLetterhead")
    num_id = _roman_list(doc)
    for text in ("first {{ customer.city }}", "second"):
        p = doc.add_paragraph(text)
        props = p._p.get_or_add_pPr()
        num_pr = etree.SubElement(props, qn("w:numPr"))
        etree.SubElement(num_pr, qn("w:ilvl"), {qn("w:val"): "0"})
        etree.SubElement(num_pr, qn("w:numId"), {qn("w:val"): num_id})
    doc.add_picture(io.BytesIO(PNG), width=Mm(20))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _xml(docx: bytes, name: str) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        return etree.fromstring(z.read(name))


def test_the_sub_template_keeps_its_style_numbering_and_picture(renderer: Renderer) -> None:
    parent = make_docx("Dear {{ customer.name }},", "{{p include('letterhead') }}", "Regards")
    out = renderer.render(parent, {"customer": {"name": "Ann", "city": "Lyon"}},
                          RenderOptions(includes={"letterhead": letterhead()}))
    assert part_texts(out)["word/document.xml"] == [
        "Dear Ann,", "ACME for Ann", "first Lyon", "second", "", "Regards"]
    assert_letterhead_kept(out, 1)


def assert_letterhead_kept(docx: bytes, first: int) -> None:
    """The letterhead's style, upper-Roman list and picture are in `docx`, its heading at
    paragraph `first`."""
    doc = Document(io.BytesIO(docx))
    assert doc.paragraphs[first].style.name == "GendocLetterhead"
    assert doc.paragraphs[first].style.font.bold
    # The list's numId leads to the sub-template's upper-Roman definition.
    numbering = _xml(docx, "word/numbering.xml")
    num_id = doc.paragraphs[first + 1]._p.pPr.numPr.numId.val
    abstract_id = numbering.find(f"{W}num[@{W}numId='{num_id}']/{W}abstractNumId").get(f"{W}val")
    abstract = numbering.find(f"{W}abstractNum[@{W}abstractNumId='{abstract_id}']")
    assert abstract.find(f"{W}lvl/{W}numFmt").get(f"{W}val") == "upperRoman"
    # The picture's relationship resolves to the same image bytes.
    [blip] = _xml(docx, "word/document.xml").iter(A_BLIP)
    assert doc.part.related_parts[blip.get(R_EMBED)].blob == PNG


def test_nested_sub_templates_share_data_and_locale(renderer: Renderer) -> None:
    parent = make_docx("Total {{ total|format_currency('EUR') }}", "{{p include('terms') }}")
    terms = make_docx("Terms for {{ customer }}", "{{p include('footer@" + "a" * 64 + "') }}")
    footer = make_docx("Due {{ due|format_date('long') }}")
    out = renderer.render(
        parent, {"total": "1234.5", "customer": "ACME", "due": "2026-03-01"},
        RenderOptions(locale="de_DE", includes={"terms": terms, "footer@" + "a" * 64: footer}))
    assert part_texts(out)["word/document.xml"][:3] == [
        "Total 1.234,50\xa0€", "Terms for ACME", "Due 1. März 2026"]


def test_strict_mode_lists_what_sub_templates_read(renderer: Renderer) -> None:
    parent = make_docx("{{ a }}", "{{p include('sub') }}")
    sub = make_docx("{{ b.c }} {{ a }}", "{% if d is defined %}{{ d }}{% endif %}")
    with pytest.raises(UndefinedVariables) as caught:
        renderer.render(parent, {}, RenderOptions(strict=True, includes={"sub": sub}))
    assert caught.value.extensions["variables"] == ["a", "b.c"]


def test_a_problem_inside_a_sub_template_names_it(renderer: Renderer) -> None:
    parent = make_docx("{{p include('sub') }}")
    with pytest.raises(Exception) as caught:
        renderer.render(parent, {"n": 1}, RenderOptions(includes={"sub": make_docx("{{ n / 0 }}")}))
    assert caught.value.extensions["include"] == ["sub"]  # type: ignore[attr-defined]
    assert "In sub-template 'sub'" in caught.value.detail  # type: ignore[attr-defined]


def test_an_include_the_walk_did_not_read_is_refused(renderer: Renderer) -> None:
    with pytest.raises(TemplateIncludeProblem) as caught:
        renderer.render(make_docx("{{p include('other') }}"), {})
    assert caught.value.extensions["chain"] == ["other"]


def test_include_in_a_header_is_refused(renderer: Renderer) -> None:
    with pytest.raises(TemplateIncludeProblem, match="body only") as caught:
        renderer.render(make_docx("body", header="{{p include('sub') }}"), {},
                        RenderOptions(includes={"sub": make_docx("s")}))
    assert "header" in caught.value.detail


def test_the_analysis_finds_literal_and_computed_names(renderer: Renderer) -> None:
    found = renderer.analyse(make_docx("{{p include('a') }}", "{% if x %}{{p include('b@1') }}"
                                       "{% endif %}", "{{p include(name) }}", "{{ a }}"))
    assert found.includes == ("a", "b@1", None)
    assert ("name",) in found.paths and ("include",) not in found.paths


# -- the store walk ----------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(tmp_path, max_name_length=128, cache_bytes=1 << 20)


def test_check_step_names_cycles_and_depth() -> None:
    check_step(("a", "b", "c"), 2, 2)
    with pytest.raises(TemplateIncludeProblem, match="a -> b -> a"):
        check_step(("a", "b", "a@" + "0" * 64), 2, 4)
    with pytest.raises(TemplateIncludeProblem, match="3 deep") as caught:
        check_step(("a", "b", "c", "d"), 3, 2)
    assert caught.value.extensions["chain"] == ["a", "b", "c", "d"]


def test_resolve_walks_versions_and_refuses_what_cannot_work(
        store: DirectoryStore, renderer: Renderer) -> None:
    old, _ = store.put("leaf", make_docx("old leaf"), {})
    store.put("leaf", make_docx("new leaf"), {})
    store.put("mid", make_docx("{{p include('leaf') }}", "{{p include('leaf@" + old.id + "') }}"),
              {})
    found = resolve(store, renderer.analyse, "top", make_docx("{{p include('mid') }}"), 4)
    assert set(found) == {"mid", "leaf", f"leaf@{old.id}"}
    assert part_texts(found[f"leaf@{old.id}"])["word/document.xml"] == ["old leaf"]

    # mid includes top: a cycle through the store.
    store.put("top", make_docx("x"), {})
    store.put("mid", make_docx("{{p include('top') }}"), {})
    with pytest.raises(TemplateIncludeProblem) as caught:
        resolve(store, renderer.analyse, "top", make_docx("{{p include('mid') }}"), 4)
    assert caught.value.extensions["chain"] == ["top", "mid", "top"]
    # Deeper than allowed, a missing name, a computed name.
    with pytest.raises(TemplateIncludeProblem, match="more than the 1 allowed"):
        resolve(store, renderer.analyse, None, make_docx("{{p include('mid') }}"), 1)
    with pytest.raises(TemplateIncludeProblem, match="nope") as caught:
        resolve(store, renderer.analyse, "t", make_docx("{{p include('nope') }}"), 4)
    assert caught.value.extensions["chain"] == ["t", "nope"]
    with pytest.raises(TemplateIncludeProblem, match="quoted string"):
        resolve(store, renderer.analyse, "t", make_docx("{{p include(n) }}"), 4)


def test_a_shared_sub_template_is_read_once(store: DirectoryStore, renderer: Renderer) -> None:
    store.put("shared", make_docx("s"), {})
    store.put("one", make_docx("{{p include('shared') }}"), {})
    store.put("two", make_docx("{{p include('shared') }}"), {})
    reads: list[str] = []
    get = store.get

    def counting(name: str, version: str | None = None) -> tuple[str, bytes]:
        reads.append(name)
        return get(name, version)

    store.get = counting  # type: ignore[method-assign]
    resolve(store, renderer.analyse, None,
            make_docx("{{p include('one') }}", "{{p include('two') }}"), 4)
    assert sorted(reads) == ["one", "shared", "two"]


# -- through the HTTP API -----------------------------------------------------------------
def _put(client: httpx.Client, name: str, docx: bytes) -> httpx.Response:
    return client.put(f"/v1/templates/{name}", content=docx,
                      headers={"content-type": "application/octet-stream"})


def _body(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return part_texts(r.content)["word/document.xml"]


def test_include_through_the_api(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    head, letter = f"head-{tag}", f"letter-{tag}"
    assert _put(client, letter, make_docx("{{p include('" + head + "') }}")).status_code == 422
    assert _put(client, head, letterhead()).status_code == 201
    r = _put(client, letter, make_docx("{{p include('" + head + "') }}", "Total {{ total }}"))
    assert r.status_code == 201, r.text
    data = {"customer": {"name": "Ann", "city": "Oslo"}, "total": 3}
    body = _body(client.post("/v1/render", json={"template": letter, "format": "docx",
                                                  "data": data}))
    assert body[:3] == ["ACME for Ann", "first Oslo", "second"] and body[-1] == "Total 3"

    meta = client.get(f"/v1/templates/{letter}").json()
    assert meta["includes"] == [head]
    assert meta["variables"] == {"total": None, "customer": {"name": None, "city": None}}

    strict = client.post("/v1/render", json={"template": letter, "format": "docx",
                                             "strict": True, "data": {"total": 1}})
    assert strict.status_code == 422
    assert strict.json()["variables"] == ["customer.name", "customer.city"]

    # A stateless upload includes stored templates too; so does a batch.
    form = client.post("/v1/render", files={"template": ("u.docx", make_docx(
        "{{p include('" + head + "') }}"))}, data={"data": '{"customer": {"name": "Bo"}}',
                                                   "format": "docx"})
    assert _body(form)[0] == "ACME for Bo"
    batch = client.post("/v1/render/batch", json={"template": letter, "format": "docx",
                                                  "items": [data, data]})
    assert batch.status_code == 200, batch.text
    with zipfile.ZipFile(io.BytesIO(batch.content)) as z:
        assert [part_texts(z.read(n))["word/document.xml"][0] for n in z.namelist()] == [
            "ACME for Ann"] * 2


def test_a_cycle_made_by_an_upload_is_refused_and_one_made_otherwise_is_422(
        client: httpx.Client, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b = f"a-{tag}", f"b-{tag}"
    assert _put(client, a, make_docx("plain a")).status_code == 201
    assert _put(client, b, make_docx("{{p include('" + a + "') }}")).status_code == 201
    r = _put(client, a, make_docx("{{p include('" + b + "') }}"))
    assert r.status_code == 422
    assert r.json()["type"].endswith("/template-include-error")
    assert r.json()["chain"] == [a, b, a]
    # The store still serves the first version of a.
    assert _body(client.post("/v1/render", json={"template": b, "format": "docx"})) == [
        "plain a"]
    # A template that includes a missing one (deleted since) answers 422 naming the chain.
    c = f"c-{tag}"
    assert _put(client, c, make_docx("{{p include('" + b + "') }}")).status_code == 201
    assert client.delete(f"/v1/templates/{a}").status_code == 204
    r = client.post("/v1/render", json={"template": c, "format": "docx"})
    assert r.status_code == 422 and r.json()["chain"] == [c, b, a]
    meta = client.get(f"/v1/templates/{c}").json()
    assert meta["includes"] == [b] and a in meta["include_error"]


@pytest.fixture(scope="module")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("includes-s3")
    server = S3Server(versitygw_binary(), tmp / "s3").start()
    try:
        service = start_service(tmp, env=server.service_env(server.new_bucket(), ttl=0.0))
        yield service
        service.stop()
    finally:
        server.stop()


def test_include_with_the_s3_store(s3_service: ServerProcess) -> None:
    with httpx.Client(base_url=s3_service.url, timeout=30) as client:
        assert _put(client, "part", make_docx("Part v1 {{ x }}")).status_code == 201
        assert _put(client, "whole", make_docx("{{p include('part') }}", "end")).status_code == 201
        render = {"template": "whole", "format": "docx", "data": {"x": 7}}
        assert _body(client.post("/v1/render", json=render)) == ["Part v1 7", "end"]
        # A new current version of the sub-template is what the next render includes.
        assert _put(client, "part", make_docx("Part v2 {{ x }}")).status_code == 201
        assert _body(client.post("/v1/render", json=render)) == ["Part v2 7", "end"]
        assert client.get("/v1/templates/whole").json()["variables"] == {"x": None}


def test_depth_limit_through_the_api(client: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"d{i}-{tag}" for i in range(6)]
    assert _put(client, names[-1], make_docx("bottom")).status_code == 201
    for upper, lower in zip(reversed(names[:-1]), reversed(names[1:]), strict=True):
        r = _put(client, upper, make_docx("{{p include('" + lower + "') }}"))
        if upper == names[0]:  # five levels below it: one more than the default 4
            assert r.status_code == 422 and "GENDOC_MAX_INCLUDE_DEPTH" in r.json()["detail"]
            assert r.json()["chain"] == names
        else:
            assert r.status_code == 201, r.text


def test_include_gives_what_docxtpls_own_subdoc_gives(client: httpx.Client) -> None:
    """docxtpl's merge_docx corpus case, its {{p mysubdoc}} written as include(): the same
    text as docxtpl's Subdoc of the same file, and the same pictures."""
    from conftest import CORPUS
    from docx_helpers import replace_in_zip
    from docxtpl import DocxTemplate

    master = (CORPUS / "templates" / "merge_docx_master_tpl.docx").read_bytes()
    asset = CORPUS / "assets" / "merge_docx_subdoc.docx"
    name = f"merge-sub-{uuid.uuid4().hex[:8]}"
    with zipfile.ZipFile(io.BytesIO(master)) as z:
        body = z.read("word/document.xml").decode()
    assert body.count("<w:t>mysubdoc</w:t>") == 1
    template = replace_in_zip(master, "word/document.xml", body.replace(
        "<w:t>mysubdoc</w:t>", f"<w:t>include(&apos;{name}&apos;)</w:t>").encode())
    assert _put(client, name, asset.read_bytes()).status_code == 201
    r = client.post("/v1/render", files={"template": ("m.docx", template)},
                    data={"data": "{}", "format": "docx"})
    assert r.status_code == 200, r.text

    tpl = DocxTemplate(CORPUS / "templates" / "merge_docx_master_tpl.docx")
    tpl.render({"mysubdoc": tpl.new_subdoc(str(asset))})
    expected = io.BytesIO()
    tpl.save(expected)
    assert part_texts(r.content) == part_texts(expected.getvalue())

    def media(docx: bytes) -> list[bytes]:
        with zipfile.ZipFile(io.BytesIO(docx)) as z:
            return sorted(z.read(n) for n in z.namelist() if n.startswith("word/media/"))

    assert media(r.content) == media(expected.getvalue())
    assert set(media(asset.read_bytes())) <= set(media(r.content))  # its 7 pictures


def test_rich_values_inside_a_sub_template(renderer: Renderer) -> None:
    """$html read by a sub-template keeps its link and list in the including document;
    a rich value nobody reads is not built (nor judged)."""
    parent = make_docx("{{p include('sub') }}")
    sub = make_docx("{{p notes }}")
    out = renderer.render(parent, {
        "notes": {"$html": '<ol><li><a href="https://sub.example/">x</a></li></ol>'},
        "unused": {"$qrcode": {"data": ""}}}, RenderOptions(includes={"sub": sub}))
    doc = Document(io.BytesIO(out))
    [link] = _xml(out, "word/document.xml").iter(f"{W}hyperlink")
    rid = link.get("{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id")
    assert doc.part.rels[rid].target_ref == "https://sub.example/"
    num_id = doc.paragraphs[0]._p.pPr.numPr.numId.val
    numbering = _xml(out, "word/numbering.xml")
    abstract_id = numbering.find(f"{W}num[@{W}numId='{num_id}']/{W}abstractNumId").get(f"{W}val")
    fmt = numbering.find(f"{W}abstractNum[@{W}abstractNumId='{abstract_id}']/{W}lvl/{W}numFmt")
    assert fmt.get(f"{W}val") == "decimal"


def test_include_in_an_async_job(client: httpx.Client) -> None:
    from jobs.jobs_support import result_zip, submit, wait_final

    tag = uuid.uuid4().hex[:8]
    sub, top = f"job-sub-{tag}", f"job-top-{tag}"
    assert _put(client, sub, make_docx("Dear {{ who }}")).status_code == 201
    assert _put(client, top, make_docx("{{p include('" + sub + "') }}", "#{{ n }}")).status_code \
        == 201
    job = submit(client, top, [{"who": "Ann", "n": 1}, {"who": "Bo", "n": 2}])
    assert wait_final(client, job["id"])["status"] == "succeeded"
    archive = result_zip(client, job["id"])
    assert [part_texts(archive.read(n))["word/document.xml"] for n in archive.namelist()] == [
        ["Dear Ann", "#1"], ["Dear Bo", "#2"]]
    # A sub-template that cannot be included is a 422 at submission, not a failed job.
    assert client.delete(f"/v1/templates/{sub}").status_code == 204
    r = client.post("/v1/jobs", json={"template": top, "items": [{}], "format": "docx"})
    assert r.status_code == 422 and r.json()["chain"] == [top, sub]


def test_include_of_a_version_through_the_api_keeps_style_numbering_and_picture(
        client: httpx.Client) -> None:
    """include('NAME@VERSION') takes that version, not the current one, and the included
    letterhead's paragraph style, upper-Roman list and picture reach the document."""
    tag = uuid.uuid4().hex[:8]
    head, letter = f"vhead-{tag}", f"vletter-{tag}"
    first = _put(client, head, letterhead())
    assert first.status_code == 201, first.text
    old = first.json()["version"]
    assert _put(client, head, make_docx("Current letterhead")).status_code == 201
    r = _put(client, letter, make_docx("{{p include('" + head + "@" + old + "') }}",
                                       "{{p include('" + head + "') }}"))
    assert r.status_code == 201, r.text
    out = client.post("/v1/render", json={"template": letter, "format": "docx", "data": {
        "customer": {"name": "Ann", "city": "Oslo"}}})
    assert _body(out)[:3] == ["ACME for Ann", "first Oslo", "second"]
    assert "Current letterhead" in _body(out)
    assert_letterhead_kept(out.content, 0)
    meta = client.get(f"/v1/templates/{letter}").json()
    assert meta["includes"] == [f"{head}@{old}", head]
    # A version that does not exist is a 422 naming the chain, at upload.
    missing = _put(client, f"x-{tag}", make_docx("{{p include('" + head + "@" + "0" * 64 + "') }}"))
    assert missing.status_code == 422 and missing.json()["chain"] == [f"x-{tag}",
                                                                      f"{head}@{'0' * 64}"]
