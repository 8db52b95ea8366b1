"""The merged path gives every item the same PDF pages, with the same text page by page, as
the item rendered and converted alone: real renders, real LibreOffice (our converter)."""

from __future__ import annotations

import base64
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pikepdf
import pytest
from batch.templates import (
    REPORT_ITEMS,
    cross_reference,
    even_odd,
    lines_data,
    report,
    with_annex,
)
from conftest import CORPUS, EXAMPLES, corpus_cases
from converter.converter_support import start_converter
from docx_helpers import make_docx
from gendoc_service import chunks, merging, splitting
from gendoc_service.rendering import Renderer, RenderOptions
from PIL import Image as PILImage
from pypdf import PdfReader

from gendoc.procs import GendocProcess

pytestmark = pytest.mark.libreoffice
CONVERT = "/forms/libreoffice/convert"


@pytest.fixture(scope="module")
def converter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: GendocProcess = start_converter(tmp_path_factory.mktemp("merge"), pool_size=2)
    try:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            yield client
    finally:
        server.stop()


def convert(client: httpx.Client, docx: bytes, **fields: str) -> bytes:
    r = client.post(CONVERT, files={"files": ("d.docx", docx)}, data=fields)
    assert r.status_code == 200, r.text
    return r.content


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


Picture = tuple[tuple[int, int], bytes]  # size, and a 4 x 4 RGB thumbnail of the pixels
# LibreOffice writes pictures as JPEG, and the same picture alone and merged may come
# out a few levels apart here and there (seen: up to 39 on one pixel of 94,000); a
# 4 x 4 thumbnail averages that away, while different pictures stay far apart.
THUMBNAIL_TOLERANCE = 8


def pictures(pdf: bytes) -> list[list[Picture]]:
    """Each page's pictures as drawn (size and a thumbnail), in drawing order: an item
    showing a neighbour's picture (a relationship id meeting another's) differs where
    the text does not."""
    def drawn(content: Any, resources: Any, found: list[Picture]) -> None:
        xobjects = resources.get("/XObject", {}) if resources is not None else {}
        for operands, operator in pikepdf.parse_content_stream(content):
            xobject = xobjects.get(operands[0]) if str(operator) == "Do" else None
            if xobject is None:
                continue
            if xobject.get("/Subtype") == "/Image":
                image = pikepdf.PdfImage(xobject).as_pil_image()
                thumbnail = image.convert("RGB").resize((4, 4), PILImage.Resampling.BOX)
                found.append((image.size, thumbnail.tobytes()))
            elif xobject.get("/Subtype") == "/Form":
                drawn(xobject, xobject.get("/Resources", resources), found)

    with pikepdf.open(io.BytesIO(pdf)) as document:
        result = []
        for page in document.pages:
            found: list[Picture] = []
            drawn(page, page.obj.get("/Resources"), found)
            result.append(found)
    return result


def alike(a: Picture, b: Picture) -> bool:
    return a[0] == b[0] and max(abs(x - y) for x, y in zip(a[1], b[1], strict=True)) \
        <= THUMBNAIL_TOLERANCE


def same_pictures(got: list[list[Picture]], alone: list[list[Picture]]) -> bool:
    return [len(p) for p in got] == [len(p) for p in alone] and all(
        alike(a, b) for g, o in zip(got, alone, strict=True) for a, b in zip(g, o, strict=True))


def check_equivalent(client: httpx.Client, template: bytes, items: list[dict[str, Any]],
                     max_pages: float = 50, options: RenderOptions | None = None,
                     own_pictures: bool = False) -> chunks.ChunkResult:
    """Convert `items` merged and alone; every merged item's pages must match, text and
    pictures. `own_pictures`: no two items' first pages show the same pictures in the
    same order (so that the picture check is not vacuous)."""
    renderer = Renderer(16 << 20)
    options = options or RenderOptions()
    result = chunks.render_chunk(renderer, template, items, options, max_pages)
    assert not result.problems
    merged_pdfs: dict[int, bytes] = {}
    first_pages: list[list[Picture]] = []
    for document in result.merged:
        pdf = convert(client, document.docx, exportBookmarksToPdfDestination="true")
        for i, item_pdf in zip(document.items, splitting.split(pdf, len(document.items),
                                                               document.info), strict=True):
            merged_pdfs[i] = item_pdf
    assert sorted([*merged_pdfs, *result.alone]) == list(range(len(items)))
    for i, data in enumerate(items):
        alone_pdf = convert(client, renderer.render(template, data, options))
        got_pdf = merged_pdfs[i] if i in merged_pdfs else convert(client, result.alone[i])
        alone, got = pages(alone_pdf), pages(got_pdf)
        assert len(got) == len(alone), f"item {i}: {len(got)} pages, alone {len(alone)}"
        for number, (a, g) in enumerate(zip(alone, got, strict=True), start=1):
            assert g == a, f"item {i}, page {number}"
        drawn = pictures(got_pdf)
        assert same_pictures(drawn, pictures(alone_pdf)), f"item {i}: pictures"
        first_pages.append(drawn[0])
    if own_pictures:
        for i, mine in enumerate(first_pages):
            for j, theirs in enumerate(first_pages[:i]):
                assert not same_pictures([mine], [theirs]), f"items {j} and {i}: same pictures"
    return result


def invoices() -> list[dict[str, Any]]:
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    items = []
    for i in range(7):
        item = copy.deepcopy(data)
        item["invoice"]["number"] = f"INV-{i:04d}"
        item["items"] = item["items"] * (1 + 15 * (i % 3 == 1))  # some run to two pages
        items.append(item)
    return items


def test_bundled_invoice(converter: httpx.Client) -> None:
    template = (EXAMPLES / "invoice.docx").read_bytes()
    # Small merged documents: the items spread over several, as a large batch does.
    result = check_equivalent(converter, template, invoices(), max_pages=3)
    assert not result.alone and len(result.merged) >= 3


def test_bundled_letter(converter: httpx.Client) -> None:
    """The second example: its letterhead included (which adds its styles to every item
    alike), German dates and money, the example's $html terms (nested bullets, a table,
    a link). An item whose own $markdown list adds other lists merges apart from them."""
    template = (EXAMPLES / "letter.docx").read_bytes()
    data = json.loads((EXAMPLES / "letter.json").read_text())
    items = []
    for i, customer in enumerate(("Alpha AG", "Beta GmbH", "Gamma KG", "Delta SE", "Eta")):
        item = copy.deepcopy(data)
        item["customer"]["name"] = customer
        item["offer"]["total"] = f"{1000 * (i + 1)}.50"
        items.append(item)
    items[4]["terms"] = {"$markdown": "## Punkt 4\n\n- nur für **Eta**\n- zweitens\n"}
    options = RenderOptions(locale="de_DE", timezone="Europe/Berlin",
                            includes={"letterhead": (EXAMPLES / "letterhead.docx").read_bytes()})
    result = check_equivalent(converter, template, items, options=options)
    assert [d.items for d in result.merged] == [[0, 1, 2, 3], [4]] and not result.alone


def test_items_whose_data_adds_lists_merge_apart_from_the_others(
        converter: httpx.Client) -> None:
    """Rich values that add lists: items adding the same merge together, the plain ones
    together, the one adding other lists apart (one set of lists a merged document)."""
    template = make_docx("Dear {{ who }},", "{{p terms }}", "Regards, {{ who }}",
                         header="For {{ who }}")
    same = {"$markdown": "- first\n- second\n\n1. one\n2. two\n"}
    items = [{"who": "A", "terms": same}, {"who": "B", "terms": {"$markdown": "plain"}},
             {"who": "C", "terms": same}, {"who": "D", "terms": {"$markdown": "no list"}},
             {"who": "E", "terms": {"$markdown": "- other\n- list\n- here\n"}}]
    result = check_equivalent(converter, template, items)
    assert sorted(d.items for d in result.merged) == [[0, 2], [1, 3], [4]]
    assert not result.alone


def test_headers_footers_pictures_lists_and_long_tables(converter: httpx.Client) -> None:
    result = check_equivalent(converter, report(), REPORT_ITEMS, own_pictures=True)
    assert not result.alone and [d.items for d in result.merged] == [[0, 1, 2, 3, 4]]


def test_even_and_odd_headers_over_items_of_odd_and_even_length(
        converter: httpx.Client) -> None:
    result = check_equivalent(converter, even_odd(), lines_data([3, 60, 3, 100, 3]))
    assert not result.alone


def test_a_template_of_two_sections_with_a_list_through_both(converter: httpx.Client) -> None:
    result = check_equivalent(converter, with_annex(), lines_data([3, 60, 3]))
    assert not result.alone


def test_bookmarks_and_the_fields_naming_them_stay_with_their_item(
        converter: httpx.Client) -> None:
    items = lines_data([3, 70, 3])
    result = check_equivalent(converter, cross_reference(), items)
    assert not result.alone
    # Not vacuous: the field shows the item's own bookmarked text.
    alone = pages(convert(converter, Renderer(16 << 20).render(cross_reference(), items[2])))
    assert "This was item L-2" in alone[-1]


def test_a_sub_template_included_in_every_item(converter: httpx.Client) -> None:
    main = make_docx("Main {{ who }}", "{{p include('part') }}", "End {{ who }}",
                     header="Header {{ who }}")
    part = make_docx("Included for {{ who }}", "Second line for {{ who }}")
    result = check_equivalent(converter, main, [{"who": f"W{i}"} for i in range(3)],
                              options=RenderOptions(includes={"part": part}))
    assert not result.alone


def test_numpages_goes_alone(converter: httpx.Client) -> None:
    result = check_equivalent(converter, report("NUMPAGES"), REPORT_ITEMS[:2])
    assert not result.merged and result.reasons[0] == ["a NUMPAGES field"]


def plain_cases() -> list[Path]:
    return [c for c in corpus_cases() if "needs" not in json.loads(c.read_text())
            and "expect_error" not in json.loads(c.read_text())]


@pytest.mark.parametrize("case_file", plain_cases(), ids=lambda c: c.stem)
def test_docxtpl_corpus_case(converter: httpx.Client, case_file: Path) -> None:
    case = json.loads(case_file.read_text())
    template = (CORPUS / case["template"]).read_bytes()
    result = check_equivalent(converter, template, [case["context"]] * 3)
    if result.alone:  # only for a reason merging names
        assert all(result.reasons[i] for i in result.alone)
    else:
        assert [d.items for d in result.merged] == [[0, 1, 2]]


ASSETS = CORPUS / "assets"
PICTURES = ["django.png", "zope.png", "pyramid.png", "bottle.png", "tornado.png"]


def image(name: str, **size: float) -> dict[str, Any]:
    return {"$image": {"data": base64.b64encode((ASSETS / name).read_bytes()).decode(),
                       **size}}


def test_docxtpl_inline_image_cases_with_pictures_per_item(converter: httpx.Client) -> None:
    """The corpus cases that need InlineImage, their pictures as $image, each item's
    others: in the body (inline_image) and in a header (header_footer_inline_image)."""
    case = json.loads((CORPUS / "cases" / "inline_image.json").read_text())
    items = [{"myimage": image(PICTURES[i], width_mm=20),
              "myimageratio": image("python_jpeg.jpg", width_mm=30, height_mm=60),
              "frameworks": [{**fw, "image": image(PICTURES[(i + j) % 5], height_mm=10)}
                             for j, fw in enumerate(case["context"]["frameworks"])]}
             for i in range(3)]
    result = check_equivalent(converter, (CORPUS / case["template"]).read_bytes(), items,
                              own_pictures=True)
    assert [d.items for d in result.merged] == [[0, 1, 2]]
    case = json.loads((CORPUS / "cases" / "header_footer_inline_image.json").read_text())
    items = [{"inline_image": image(PICTURES[i], height_mm=10),
              "images": [image("python.png", height_mm=10)] * (i + 1)} for i in range(3)]
    result = check_equivalent(converter, (CORPUS / case["template"]).read_bytes(), items)
    assert [d.items for d in result.merged] == [[0, 1, 2]]


def test_item_bookmarks_are_the_split_points(converter: httpx.Client) -> None:
    """The split follows the destinations: without them, no split (never a page count)."""
    template = (EXAMPLES / "invoice.docx").read_bytes()
    result = chunks.render_chunk(Renderer(16 << 20), template, invoices()[:3], RenderOptions(),
                                 50)
    document = result.merged[0]
    assert f'w:name="{merging.item_bookmark(2)}"'.encode() in merging.read_package(
        document.docx)[merging.DOCUMENT]
    with pytest.raises(splitting.SplitFailed):
        splitting.split(convert(converter, document.docx), 3)
