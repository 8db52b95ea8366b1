"""The merged path's decisions, alone: mode, chunk size, page boundaries, blockers."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from batch.templates import REPORT_ITEMS, report, report_data
from conftest import CORPUS, EXAMPLES
from docx import Document
from docx_helpers import make_docx
from gendoc_service import chunks, merging
from gendoc_service.chunks import estimated_pages, render_chunk
from gendoc_service.pipeline import batch_mode, chunk_size
from gendoc_service.rendering import Renderer, RenderOptions
from gendoc_service.splitting import SplitFailed, boundaries
from lxml import etree

from gendoc.bench import documents


def test_batch_mode_merges_pdf_batches_of_several_items() -> None:
    assert batch_mode("pdf", 2, True, []) == ("merged", [])
    mode, reasons = batch_mode("docx", 5, True, [])
    assert mode == "single" and reasons == ["DOCX output is one document per item"]
    assert batch_mode("pdf", 1, True, [])[0] == "single"
    assert batch_mode("pdf", 9, False, [])[0] == "single"
    assert batch_mode("pdf", 9, True, ["PDF/A"]) == ("single", ["PDF/A"])


@pytest.mark.parametrize(("count", "workers", "most", "size"), [
    (200, 2, 50, 50), (60, 2, 50, 30), (3, 2, 50, 2), (1, 4, 50, 1), (10, 0, 50, 10),
    (500, 8, 20, 20),
])
def test_chunk_size_spreads_over_workers_within_the_bound(count: int, workers: int, most: int,
                                                           size: int) -> None:
    assert chunk_size(count, workers, most) == size


def test_boundaries_follow_the_destinations() -> None:
    assert boundaries({0: 0, 1: 1, 2: 4}, 3, 5) == [range(0, 1), range(1, 4), range(4, 5)]


@pytest.mark.parametrize("starts", [
    {0: 0, 2: 3},  # an item without its destination
    {0: 1, 1: 2},  # the first item not on the first page
    {0: 0, 1: 3, 2: 2},  # out of order
    {0: 0, 1: 0},  # two items on one page
    {0: 0, 1: 5},  # past the last page
])
def test_boundaries_refuse_what_the_pdf_does_not_show(starts: dict[int, int]) -> None:
    with pytest.raises(SplitFailed):
        boundaries(starts, max(len(starts), 2), 5)


def _with_field(instruction: str) -> bytes:
    doc = Document()
    paragraph = doc.add_paragraph("Page ")
    run = paragraph.add_run()
    run._r.append(run._r.makeelement(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}instrText", {}))
    run._r[-1].text = f" {instruction} "
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def test_blockers_name_what_cannot_be_kept_apart() -> None:
    assert merging.blockers(merging.read_package(make_docx("plain", header="h",
                                                           footer="f"))) == []
    assert merging.blockers(merging.read_package(_with_field("PAGE"))) == []
    assert merging.blockers(merging.read_package(_with_field("NUMPAGES"))) == [
        "a NUMPAGES field"]


def test_blockers_refuse_unknown_relationships() -> None:
    parts = merging.read_package(make_docx("x"))
    rels = parts[merging.DOCUMENT_RELS].decode()
    rels = rels.replace("</Relationships>", '<Relationship Id="rIdX" Type="http://schemas.'
                        'openxmlformats.org/officeDocument/2006/relationships/chart" '
                        'Target="charts/chart1.xml"/></Relationships>')
    parts[merging.DOCUMENT_RELS] = rels.encode()
    assert merging.blockers(parts) == ["a chart relationship"]


def test_merge_gives_each_item_its_section_headers_and_bookmark() -> None:
    items = [merging.read_package(make_docx(f"body {i}", header=f"head {i}")) for i in range(3)]
    merged = merging.read_package(merging.merge(items))
    document = merged[merging.DOCUMENT].decode()
    for i in range(3):
        assert f'w:name="{merging.item_bookmark(i)}"' in document
        assert f"body {i}" in document
    headers = [n for n in merged if "header" in n and n.endswith(".xml")]
    assert sorted(merged[n].decode().count("head ") for n in headers) == [1, 1, 1]
    assert document.count("<w:sectPr") == 3 and document.count('w:start="1"') == 3
    assert zipfile.ZipFile(io.BytesIO(merging.write_package(merged))).testzip() is None


def test_footnotes_merge_only_when_numbered_plainly() -> None:
    case = json.loads((CORPUS / "cases" / "footnotes.json").read_text())
    parts = merging.read_package(Renderer(8 << 20).render(
        (CORPUS / case["template"]).read_bytes(), case["context"]))
    assert merging.blockers(parts) == []
    settings = parts["word/settings.xml"].decode()
    roman = '<w:footnotePr><w:numFmt w:val="lowerRoman"/></w:footnotePr>'
    parts["word/settings.xml"] = settings.replace("</w:settings>",
                                                  roman + "</w:settings>").encode()
    assert merging.blockers(parts) == ["footnotes numbered with numFmt=lowerRoman"]


def test_pages_are_estimated_from_text_rows_and_breaks() -> None:
    renderer = Renderer(8 << 20)
    estimates = {}
    for doc in (documents.invoice(), documents.short_contract(), documents.report()):
        body = merging.read_package(renderer.render(doc.template, doc.data))[merging.DOCUMENT]
        estimates[doc.name] = estimated_pages(body)
    # Measured with LibreOffice: 1, 3 and 60 pages; the bound needs the order of magnitude.
    assert estimates["invoice"] == 1.0
    assert 2.5 <= estimates["contract3"] <= 4.5
    assert 30 <= estimates["report"] <= 90
    assert estimated_pages(b'<w:p><w:r><w:br w:type="page"/></w:r></w:p>') == 2.0


def test_each_item_links_to_its_own_url_under_ids_of_its_own() -> None:
    """Links are checked in the merged .docx: this LibreOffice exports none into the PDF
    (no /Link annotation, even alone), so the PDF comparison cannot see them."""
    result = render_chunk(Renderer(16 << 20), report(), REPORT_ITEMS, RenderOptions(), 50)
    parts = merging.read_package(result.merged[0].docx)
    rels = etree.fromstring(parts[merging.DOCUMENT_RELS])
    ids = [rel.get("Id") for rel in rels]
    assert len(ids) == len(set(ids))
    targets = {rel.get("Id"): rel.get("Target") for rel in rels}
    w, r = f"{{{merging.W_NS}}}", f"{{{merging.R_NS}}}"
    item, links = -1, []
    for element in etree.fromstring(parts[merging.DOCUMENT]).iter(f"{w}bookmarkStart",
                                                                    f"{w}hyperlink"):
        name = str(element.get(f"{w}name", ""))
        if name.startswith(merging.ITEM_BOOKMARK_PREFIX):
            item = int(name.removeprefix(merging.ITEM_BOOKMARK_PREFIX))
        elif element.tag == f"{w}hyperlink":
            links.append((item, targets[element.get(f"{r}id")]))
    assert links == [(i, f"https://example.org/{i}") for i in range(len(REPORT_ITEMS))]


def test_merged_documents_are_bounded_by_estimated_pages_and_by_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A merged document holds at most about `max_pages` estimated pages, and its items'
    own parts (pictures mostly) at most about MAX_MERGED_BYTES: LibreOffice's memory
    grows with both."""
    renderer = Renderer(16 << 20)
    items = [report_data(i, 0, 0) for i in range(6)]  # one page each, a picture each
    whole = render_chunk(renderer, report(), items, RenderOptions(), 50)
    assert [d.items for d in whole.merged] == [list(range(6))]
    by_pages = render_chunk(renderer, report(), items, RenderOptions(), 2)
    assert [d.items for d in by_pages.merged] == [[0, 1], [2, 3], [4, 5]]
    monkeypatch.setattr(chunks, "MAX_MERGED_BYTES", len(whole.merged[0].docx) // 2)
    by_bytes = render_chunk(renderer, report(), items, RenderOptions(), 50)
    assert [i for d in by_bytes.merged for i in d.items] == list(range(6))
    assert len(by_bytes.merged) >= 2
    assert all(len(d.docx) < len(whole.merged[0].docx) for d in by_bytes.merged)


def test_a_chunk_reads_and_writes_zips_per_document_never_per_item(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Items render with the template loaded once (the compiled template, put back
    between items) and come out as parts: the zips opened or written by a chunk of 20
    invoices are those of a chunk of 2 (the template read, one merged document written)."""
    template = (EXAMPLES / "invoice.docx").read_bytes()
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    opened: list[object] = []
    real = zipfile.ZipFile.__init__

    def counting(self: zipfile.ZipFile, *args: object, **kwargs: object) -> None:
        opened.append(args[0] if args else kwargs.get("file"))
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zipfile.ZipFile, "__init__", counting)
    counts = []
    for count in (2, 20):
        opened.clear()
        result = render_chunk(Renderer(16 << 20), template, [data] * count, RenderOptions(),
                              50)
        assert [d.items for d in result.merged] == [list(range(count))]
        counts.append(len(opened))
    assert counts[0] == counts[1] and counts[0] <= 3, counts
