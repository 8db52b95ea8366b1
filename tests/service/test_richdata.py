"""Rich values in JSON ($image, $richtext, $listing), including docxtpl's inline_image case."""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile

import httpx
import pytest
from conftest import CORPUS
from docx.shared import Mm
from docx_helpers import make_docx, part_texts
from docxtpl import DocxTemplate, InlineImage
from gendoc_service.errors import InvalidRequest
from gendoc_service.rendering import Renderer

ASSETS = CORPUS / "assets"


def b64(name: str) -> str:
    return base64.b64encode((ASSETS / name).read_bytes()).decode()


def extents(docx: bytes) -> list[tuple[str, str]]:
    xml = zipfile.ZipFile(io.BytesIO(docx)).read("word/document.xml").decode()
    return re.findall(r'<wp:extent cx="(\d+)" cy="(\d+)"', xml)


def test_inline_image_case_matches_docxtpl(client: httpx.Client) -> None:
    """The corpus case that needs InlineImage, expressed in JSON with $image."""
    case = json.loads((CORPUS / "cases" / "inline_image.json").read_text())
    template = CORPUS / case["template"]
    names = ["django.png", "zope.png", "pyramid.png", "bottle.png", "tornado.png"]
    data = {
        "myimage": {"$image": {"data": b64("python_logo.png"), "width_mm": 20}},
        "myimageratio": {"$image": {"data": b64("python_jpeg.jpg"), "width_mm": 30,
                                    "height_mm": 60}},
        "frameworks": [
            {**fw, "image": {"$image": {"data": b64(img), "height_mm": 10}}}
            for fw, img in zip(case["context"]["frameworks"], names, strict=True)
        ],
    }
    r = client.post("/v1/render", files={"template": ("t.docx", template.read_bytes())},
                    data={"data": json.dumps(data), "format": "docx"})
    assert r.status_code == 200, r.text

    tpl = DocxTemplate(template)
    context = {
        "myimage": InlineImage(tpl, str(ASSETS / "python_logo.png"), width=Mm(20)),
        "myimageratio": InlineImage(tpl, str(ASSETS / "python_jpeg.jpg"), width=Mm(30),
                                    height=Mm(60)),
        "frameworks": [
            {**fw, "image": InlineImage(tpl, str(ASSETS / img), height=Mm(10))}
            for fw, img in zip(case["context"]["frameworks"], names, strict=True)
        ],
    }
    tpl.render(context, autoescape=True)
    out = io.BytesIO()
    tpl.save(out)
    assert part_texts(r.content) == part_texts(out.getvalue())
    assert extents(r.content) == extents(out.getvalue())
    assert len(extents(r.content)) >= 7  # seven images, some used more than once


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(1 << 22)


def test_richtext_runs(renderer: Renderer) -> None:
    data = {"r": {"$richtext": [{"text": "bold <b>", "bold": True, "color": "FF0000",
                                 "size_pt": 14},
                                {"text": " link", "url": "https://example.org/"}]}}
    out = renderer.render(make_docx("{{r r }}"), data)
    xml = zipfile.ZipFile(io.BytesIO(out)).read("word/document.xml").decode()
    assert "bold &lt;b&gt;" in xml and '<w:color w:val="FF0000"/>' in xml
    assert '<w:sz w:val="28"/>' in xml
    rels = zipfile.ZipFile(io.BytesIO(out)).read("word/_rels/document.xml.rels").decode()
    assert "https://example.org/" in rels


def test_listing_keeps_lines(renderer: Renderer) -> None:
    out = renderer.render(make_docx("{{ l }}"), {"l": {"$listing": "one\ntwo"}})
    xml = zipfile.ZipFile(io.BytesIO(out)).read("word/document.xml").decode()
    assert "one</w:t><w:br/>" in xml


@pytest.mark.parametrize(
    "value",
    [
        {"$image": "nope"},
        {"$image": {"data": "***not base64***"}},
        {"$image": {"data": base64.b64encode(b"not an image").decode()}},
        {"$image": {"data": base64.b64encode(b"x").decode(), "width_mm": -3}},
        {"$richtext": [{"txt": "typo"}]},
        {"$richtext": [{"text": "x", "url": "javascript:alert(1)"}]},
        {"$listing": 5},
    ],
)
def test_bad_rich_values_are_422_naming_the_path(renderer: Renderer, value: dict) -> None:
    with pytest.raises(InvalidRequest) as info:
        renderer.render(make_docx("{{ v }}"), {"v": value})
    assert info.value.status == 422 and "data.v" in info.value.detail
