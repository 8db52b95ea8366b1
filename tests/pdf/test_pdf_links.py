"""Hyperlinks reach the PDF as clickable /Link annotations with a /URI action, through the
service's HTTP API, real converter and real LibreOffice: a template's own Word hyperlink,
an $html link, and each item's links in its own PDF after a merged batch is split."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pikepdf
import pytest
from docx.enum.text import WD_BREAK
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml.shared import OxmlElement, qn
from docx_helpers import store_docx

pytestmark = pytest.mark.libreoffice
OWN = "https://example.com/own-link"
FIELD = "https://example.com/field-link"


def page_links(pdf: bytes) -> list[list[str]]:
    """Each page's /Link annotations' URIs, sorted (LibreOffice writes them in no
    particular order)."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return [sorted(str(a.A.URI) for a in page.obj.get("/Annots", [])
                       if a.get("/Subtype") == "/Link" and "/A" in a and "/URI" in a.A)
                for page in doc.pages]


def inner_links(pdf: bytes) -> list[int]:
    """How many links inside the document (GoTo actions, destinations) each page has."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return [sum(1 for a in page.obj.get("/Annots", [])
                    if a.get("/Subtype") == "/Link" and ("/Dest" in a or (
                        "/A" in a and a.A.get("/S") == "/GoTo")))
                for page in doc.pages]


def page_objects(pdf: bytes) -> int:
    """Page objects in the file, in the page tree or not: a split item's PDF that pulled
    in a neighbour's page through a link would hold more than its own."""
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        return sum(1 for o in doc.objects
                   if isinstance(o, pikepdf.Dictionary) and o.get("/Type") == "/Page")


def _element(tag: str, text: str | None = None, *children: Any, **attributes: str) -> Any:
    element = OxmlElement(tag)
    for name, value in attributes.items():
        element.set(qn(name if ":" in name else f"w:{name}"), value)
    if text is not None:
        element.set(qn("xml:space"), "preserve")
        element.text = text
    for child in children:
        element.append(child)
    return element


def _run(tag: str = "", text: str | None = None, **attributes: str) -> Any:
    """A w:r holding one w:t, w:instrText or w:fldChar."""
    return _element("w:r", None, _element(tag or "w:t", text, **attributes))


def _template(client: httpx.Client) -> str:
    """Page 1: a Word hyperlink of the template's own (an external relationship, no
    character style on its run, as python-docx and docxtpl write one), the same kind of
    link as a HYPERLINK field (as some generators write it) and a bookmark; page 2: the
    $html paragraph and a link inside the document back to the bookmark."""
    from docx import Document

    doc = Document()
    paragraph = doc.add_paragraph("Dear {{ who }}, see ")
    rid = paragraph.part.relate_to(OWN, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    for element in (
            _element("w:bookmarkStart", None, id="7", name="top"),
            _element("w:hyperlink", None, _run("w:t", "our site"), **{"r:id": rid}),
            _run("w:fldChar", fldCharType="begin"),
            _run("w:instrText", f' HYPERLINK "{FIELD}" '),
            _run("w:fldChar", fldCharType="separate"),
            _run("w:t", " or ours"),
            _run("w:fldChar", fldCharType="end"),
            _element("w:bookmarkEnd", None, id="7")):
        paragraph._p.append(element)
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    doc.add_paragraph("{{p notes }}")
    back = _element("w:hyperlink", None, _run("w:t", "back to the top"), anchor="top")
    doc.add_paragraph()._p.append(back)  # a link inside the document, to page 1
    out = io.BytesIO()
    doc.save(out)
    return store_docx(client, out.getvalue(), "links")


def _data(i: int) -> dict[str, object]:
    return {"who": f"Reader {i}",
            "notes": {"$html": f'<p>Read <a href="https://example.org/item/{i}">item {i}</a>'
                               f' and <a href="mailto:desk{i}@example.org">write</a>.</p>'}}


def test_template_and_html_links_are_uri_annotations_on_their_pages(
        client: httpx.Client) -> None:
    template = _template(client)
    r = client.post("/v1/render", json={"template": template, "format": "pdf",
                                        "data": _data(3)})
    assert r.status_code == 200, r.text
    assert page_links(r.content) == [
        [FIELD, OWN], ["https://example.org/item/3", "mailto:desk3@example.org"]]
    assert inner_links(r.content) == [0, 1]


def test_each_item_of_a_merged_batch_keeps_its_own_links(client: httpx.Client) -> None:
    template = _template(client)
    items = [_data(i) for i in range(3)]
    r = client.post("/v1/render/batch", json={"template": template, "format": "pdf",
                                              "items": items})
    assert r.status_code == 200, r.text
    assert r.headers["gendoc-batch-mode"] == "merged"  # converted once, then split
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        for i, name in enumerate(archive.namelist()):
            pdf = archive.read(name)
            assert page_links(pdf) == [
                [FIELD, OWN], [f"https://example.org/item/{i}", f"mailto:desk{i}@example.org"]]
            assert inner_links(pdf) == [0, 1] and page_objects(pdf) == 2
    merged = client.post("/v1/render/batch", json={"template": template, "items": items,
                                                   "merge": True})
    assert merged.status_code == 200, merged.text
    assert page_links(merged.content) == [
        links for i in range(3)
        for links in ([FIELD, OWN],
                      [f"https://example.org/item/{i}", f"mailto:desk{i}@example.org"])]
