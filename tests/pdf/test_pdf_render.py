"""PDF options through the service's HTTP API, judged by real validators and readers:
veraPDF for PDF/A-2b, PDF/A-3b and PDF/UA-1; pikepdf (qpdf) for the encryption and the
permissions; pypdf for the text of every page; the XMP packet and /Info for metadata."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import pikepdf
import pytest
from docx_helpers import make_docx, store_docx
from pdf.pdf_support import (
    page_texts,
    squeezed,
    verapdf,
    watermark_opacities,
    xmp_and_info,
)

pytestmark = pytest.mark.libreoffice


def _template(client: httpx.Client) -> str:
    """A stored template of three pages (python-docx page breaks), with a title."""
    from docx import Document
    from docx.enum.text import WD_BREAK

    doc = Document()
    doc.core_properties.title = "Letter {{ number }}"
    for i in range(3):
        paragraph = doc.add_paragraph(f"Letter {{{{ number }}}} page {i + 1} for {{{{ name }}}}")
        if i < 2:
            paragraph.add_run().add_break(WD_BREAK.PAGE)
    out = io.BytesIO()
    doc.save(out)
    return store_docx(client, out.getvalue(), "letter")


def _render(client: httpx.Client, template: str, pdf: dict[str, object],
            number: int = 7) -> bytes:
    r = client.post("/v1/render", json={"template": template, "format": "pdf", "pdf": pdf,
                                        "data": {"number": number, "name": "Ada"}})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return r.content


def test_pdfa_and_pdfua_pass_verapdf(client: httpx.Client, tmp_path: Path) -> None:
    template = _template(client)
    meta = {"title": "Letter seven", "author": "Acme GmbH", "subject": "A letter",
            "keywords": ["letter", "seven"]}
    mark = {"text": "ENTWURF", "opacity": 0.2}
    a2b = _render(client, template, {"standard": "PDF/A-2b", "metadata": meta,
                                     "watermark": mark})
    a3b_ua = _render(client, template, {"standard": "PDF/A-3b", "ua": True, "metadata": meta,
                                        "watermark": mark})
    ua = _render(client, template, {"ua": True, "watermark": mark})
    plain = _render(client, template, {})
    # The plain PDF is the validators' negative control: they can fail.
    verdicts = verapdf({"a2b": a2b, "plain": plain}, "2b", tmp_path)
    assert verdicts["a2b"] == "PASS" and verdicts["plain"].startswith("FAIL"), verdicts
    assert verapdf({"a3b_ua": a3b_ua}, "3b", tmp_path) == {"a3b_ua": "PASS"}
    verdicts = verapdf({"a3b_ua": a3b_ua, "ua": ua, "plain": plain}, "ua1", tmp_path)
    assert verdicts["a3b_ua"] == "PASS" and verdicts["ua"] == "PASS", verdicts
    assert verdicts["plain"].startswith("FAIL"), verdicts
    # What the standards say of themselves, and the metadata, in XMP and /Info alike.
    for pdf, part in ((a2b, "2"), (a3b_ua, "3")):
        xmp, info = xmp_and_info(pdf)
        assert (xmp["pdfaid:part"], xmp["pdfaid:conformance"]) == (part, "B")
        assert xmp["dc:title"] == info["/Title"] == "Letter seven"
        assert xmp["dc:creator"] == ["Acme GmbH"] and info["/Author"] == "Acme GmbH"
        assert xmp["dc:description"] == info["/Subject"] == "A letter"
        assert xmp["pdf:Keywords"] == info["/Keywords"] == "letter, seven"
    assert xmp_and_info(a3b_ua)[0]["pdfuaid:part"] == "1"
    # The watermark on every page of each, beside the page's own text.
    for pdf in (a2b, a3b_ua, ua):
        texts = page_texts(pdf)
        assert len(texts) == 3
        for i, text in enumerate(texts):
            assert "ENTWURF" in text and f"page{i + 1}forAda" in squeezed(text), text
        # Drawn at the opacity asked, on each page.
        assert watermark_opacities(pdf) == [[pytest.approx(0.2)]] * 3
    assert watermark_opacities(plain) == [[]] * 3


def test_password_and_permissions(client: httpx.Client) -> None:
    template = _template(client)
    pdf = _render(client, template, {"password": {"user": "kennwort", "owner": "chef",
                                                  "permissions": ["print"]}})
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(pdf))
    with pikepdf.open(io.BytesIO(pdf), password="kennwort") as doc:
        assert doc.is_encrypted and doc.encryption.bits == 256
        assert not doc.owner_password_matched
        assert doc.allow.print_highres and not doc.allow.extract
        assert not doc.allow.modify_other and not doc.allow.modify_annotation
    with pikepdf.open(io.BytesIO(pdf), password="chef") as doc:
        assert doc.owner_password_matched
    texts = page_texts(pdf, "kennwort")
    assert [f"page{i + 1}forAda" in squeezed(t) for i, t in enumerate(texts)] == [True] * 3
    # Owner password only: opens without a password, restrictions hold.
    restricted = _render(client, template, {"password": {"owner": "chef", "permissions": []}})
    with pikepdf.open(io.BytesIO(restricted)) as doc:
        assert doc.is_encrypted and not doc.allow.print_highres and not doc.allow.extract


def test_pdf_options_in_a_batch_and_in_a_multipart_render(client: httpx.Client) -> None:
    template = _template(client)
    pdf = {"watermark": {"text": "MUSTER"}, "password": {"user": "pw"},
           "metadata": {"title": "Batch letter"}}
    items = [{"number": n, "name": f"N{n}"} for n in (1, 2)]
    r = client.post("/v1/render/batch", json={"template": template, "items": items, "pdf": pdf})
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = sorted(archive.namelist())
        assert len(names) == 2 and all(n.endswith(".pdf") for n in names), names
        for n, name in zip((1, 2), names, strict=True):
            document = archive.read(name)
            with pytest.raises(pikepdf.PasswordError):
                pikepdf.open(io.BytesIO(document))
            texts = page_texts(document, "pw")
            assert all("MUSTER" in t for t in texts) and f"Letter{n}page1forN{n}" in squeezed(
                texts[0])
            # No opacity asked: the service's default, 0.3 (docs/pdf.md).
            assert watermark_opacities(document, "pw") == [[pytest.approx(0.3)]] * 3
            assert xmp_and_info(document, "pw")[1]["/Title"] == "Batch letter"
    merged = client.post("/v1/render/batch", json={"template": template, "items": items,
                                                   "merge": True, "pdf": pdf})
    assert merged.status_code == 200, merged.text
    texts = page_texts(merged.content, "pw")
    assert len(texts) == 6 and all("MUSTER" in t for t in texts)
    # Stateless multipart: the options as a JSON part.
    upload = make_docx("Hello {{ name }}")
    r = client.post("/v1/render", files={"template": ("hello.docx", upload)},
                    data={"data": json.dumps({"name": "Grace"}), "pdf": json.dumps(
                        {"watermark": {"text": "KOPIE"}, "metadata": {"author": "Grace"}})})
    assert r.status_code == 200, r.text
    text = page_texts(r.content)[0]
    assert "HelloGrace" in squeezed(text) and "KOPIE" in text
    assert xmp_and_info(r.content)[1]["/Author"] == "Grace"


@pytest.mark.parametrize(("body", "field"), [
    ({"pdf": {"standard": "PDF/A-2b", "password": {"user": "x"}}}, "pdf"),
    ({"pdf": {"watermark": {"text": "x", "opacity": 3}}}, "pdf.watermark.opacity"),
    ({"pdf": {"password": {}}}, "pdf.password"),
    ({"pdf": {"ua": True}, "format": "docx"}, ""),
    ({"pdf": {"standard": "PDF/A-1a"}}, "pdf.standard"),
])
def test_invalid_pdf_options_are_422_problems(client: httpx.Client, body: dict[str, object],
                                              field: str) -> None:
    r = client.post("/v1/render", json={"template": "whatever", "data": {}, **body})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["type"].endswith("invalid-request"), problem
    assert any(e["field"] == field for e in problem["errors"]), problem
    if body.get("format") == "docx":
        assert "need format 'pdf'" in problem["detail"]


def test_merged_batch_refuses_pdfa(client: httpx.Client) -> None:
    r = client.post("/v1/render/batch", json={"template": "whatever", "items": [{}, {}],
                                              "merge": True, "pdf": {"standard": "PDF/A-2b"}})
    assert r.status_code == 422 and "cannot keep PDF/A" in r.json()["detail"], r.text


def test_batch_mode_follows_what_a_split_keeps(client: httpx.Client) -> None:
    """A watermark survives the merged conversion's split; metadata makes each item a
    conversion of its own (pdfoptions.needs_per_document_conversion)."""
    template = _template(client)
    items = [{"number": n, "name": f"N{n}"} for n in (1, 2, 3)]
    for pdf, mode in (({"watermark": {"text": "GEPRUEFT"}}, "merged"),
                      ({"watermark": {"text": "GEPRUEFT"}, "metadata": {"title": "One"}},
                       "single")):
        r = client.post("/v1/render/batch", json={"template": template, "items": items,
                                                  "pdf": pdf})
        assert r.status_code == 200, r.text
        assert r.headers["gendoc-batch-mode"] == mode
        with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
            names = sorted(archive.namelist())
            assert len(names) == 3, names
            for n, name in zip((1, 2, 3), names, strict=True):
                texts = page_texts(archive.read(name))
                assert len(texts) == 3 and all("GEPRUEFT" in t for t in texts), texts
                assert f"Letter{n}page3forN{n}" in squeezed(texts[2])
                if "metadata" in pdf:
                    assert xmp_and_info(archive.read(name))[1]["/Title"] == "One"


def test_pdfua_of_a_document_without_a_title(client: httpx.Client, tmp_path: Path) -> None:
    """LibreOffice writes no title for an untitled document, and PDF/UA needs one: the
    converter gives it the file's name (the template's), which veraPDF accepts."""
    name = store_docx(client, make_docx("Dear {{ name }}"), "untitled")
    pdf = client.post("/v1/render", json={"template": name, "data": {"name": "Ada"},
                                          "pdf": {"ua": True}})
    assert pdf.status_code == 200, pdf.text
    assert verapdf({"ua": pdf.content}, "ua1", tmp_path) == {"ua": "PASS"}
    assert xmp_and_info(pdf.content)[0]["dc:title"] == name


def test_pdf_options_on_a_job(client: httpx.Client, tmp_path: Path) -> None:
    """POST /v1/jobs takes the same `pdf` object: PDF/A items checked by veraPDF,
    watermarked, with their metadata; an encrypted merged result is refused."""
    from jobs.jobs_support import result_zip, submit, wait_final

    template = _template(client)
    items = [{"number": n, "name": f"J{n}"} for n in (1, 2)]
    job = submit(client, template, items, format="pdf", pdf={
        "standard": "PDF/A-3b", "watermark": {"text": "JOBMARK"},
        "metadata": {"title": "Job letter"}})
    final = wait_final(client, job["id"])
    assert final["status"] == "succeeded", final
    archive = result_zip(client, job["id"])
    pdfs = {f"item{i}": archive.read(name) for i, name in enumerate(sorted(archive.namelist()))}
    assert len(pdfs) == 2
    assert verapdf(pdfs, "3b", tmp_path) == {"item0": "PASS", "item1": "PASS"}
    for n, pdf in zip((1, 2), pdfs.values(), strict=True):
        texts = page_texts(pdf)
        assert all("JOBMARK" in t for t in texts) and f"Letter{n}page1forJ{n}" in squeezed(
            texts[0])
        assert xmp_and_info(pdf)[0]["dc:title"] == "Job letter"
    refused = client.post("/v1/jobs", json={"template": template, "items": items,
                                            "format": "pdf", "merge": True,
                                            "pdf": {"password": {"user": "x"}}})
    assert refused.status_code == 422, refused.text
    # A job's zip of encrypted items: each opens with the password only, restrictions held.
    locked = submit(client, template, items[:1], format="pdf", pdf={
        "password": {"user": "jobpw", "permissions": ["print"]}})
    assert wait_final(client, locked["id"])["status"] == "succeeded"
    locked_zip = result_zip(client, locked["id"])
    [entry] = locked_zip.namelist()
    document = locked_zip.read(entry)
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(document))
    with pikepdf.open(io.BytesIO(document), password="jobpw") as doc:
        assert doc.allow.print_highres and not doc.allow.extract and not doc.allow.modify_other
    assert "Letter1page1forJ1" in squeezed(page_texts(document, "jobpw")[0])
