"""Hyperlinks reach the PDF as clickable /Link annotations with a /URI action, through the
service's HTTP API, real converter and real LibreOffice: a template's own Word hyperlink,
an $html link, and each item's links in its own PDF after a merged batch is split."""

from __future__ import annotations

import io
import zipfile

import httpx
import pikepdf
import pytest
from docx.enum.text import WD_BREAK
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml.shared import OxmlElement, qn
from pdf.pdf_support import store_template

pytestmark = pytest.mark.libreoffice
OWN = "https://example.com/own-link"


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


def _template(client: httpx.Client) -> str:
    """Page 1: a Word hyperlink of the template's own (an external relationship, no
    character style on its run, as python-docx and docxtpl write one) and a bookmark;
    page 2: the $html paragraph and a link inside the document back to the bookmark."""
    from docx import Document

    doc = Document()
    paragraph = doc.add_paragraph("Dear {{ who }}, see ")
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), paragraph.part.relate_to(OWN, RELATIONSHIP_TYPE.HYPERLINK,
                                                  is_external=True))
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "our site"
    run.append(text)
    link.append(run)
    paragraph._p.append(link)
    start = OxmlElement("w:bookmarkStart")
    start.set(qn("w:id"), "7")
    start.set(qn("w:name"), "top")
    end = OxmlElement("w:bookmarkEnd")
    end.set(qn("w:id"), "7")
    paragraph._p.insert(0, start)
    paragraph._p.append(end)
    paragraph.add_run().add_break(WD_BREAK.PAGE)
    doc.add_paragraph("{{p notes }}")
    back = OxmlElement("w:hyperlink")  # a link inside the document, to page 1
    back.set(qn("w:anchor"), "top")
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "back to the top"
    run.append(text)
    back.append(run)
    doc.add_paragraph()._p.append(back)
    out = io.BytesIO()
    doc.save(out)
    return store_template(client, out.getvalue(), "links")


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
        [OWN], ["https://example.org/item/3", "mailto:desk3@example.org"]]
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
                [OWN], [f"https://example.org/item/{i}", f"mailto:desk{i}@example.org"]]
            assert inner_links(pdf) == [0, 1] and page_objects(pdf) == 2
    merged = client.post("/v1/render/batch", json={"template": template, "items": items,
                                                   "merge": True})
    assert merged.status_code == 200, merged.text
    assert page_links(merged.content) == [
        links for i in range(3)
        for links in ([OWN], [f"https://example.org/item/{i}", f"mailto:desk{i}@example.org"])]
