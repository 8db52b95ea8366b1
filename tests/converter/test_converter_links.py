"""links.py alone, and through sanitize_docx: the runs of a hyperlink get a character style
(so LibreOffice 7.4 exports the link to PDF), nothing else changes. The PDFs themselves:
tests/pdf/test_pdf_links.py."""

from __future__ import annotations

import io
import zipfile

from converter.converter_docs import HYPERLINK_REL, add_relationship, append_body, make_docx
from gendoc_converter.links import LINK_STYLE, add_link_style, style_link_runs
from gendoc_converter.sanitize import sanitize_docx
from gendoc_converter.settings import ConverterSettings
from lxml import etree

from gendoc.package_limits import PackageLimits

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W = f"{{{W_NS}}}"
LINK = ('<w:p><w:r><w:t>see </w:t></w:r><w:hyperlink r:id="rIdLink">'
        '<w:r><w:t>plain</w:t></w:r>'
        '<w:r><w:rPr><w:b/></w:rPr><w:t>bold</w:t></w:r>'
        '<w:r><w:rPr><w:rStyle w:val="Own"/></w:rPr><w:t>own</w:t></w:r>'
        '</w:hyperlink></w:p>')


def _styles(root: etree._Element) -> list[str | None]:
    """Each run's character style, in document order (None: none)."""
    found = []
    for run in root.iter(f"{W}r"):
        style = run.find(f"{W}rPr/{W}rStyle")
        found.append(None if style is None else style.get(f"{W}val"))
    return found


def test_runs_of_a_link_without_a_style_get_ours_and_nothing_else_changes() -> None:
    root = etree.fromstring(f'<w:body xmlns:w="{W_NS}" xmlns:r="urn:r">{LINK}</w:body>')
    assert style_link_runs(root) == 2
    assert _styles(root) == [None, LINK_STYLE, LINK_STYLE, "Own"]
    bold = root.findall(f".//{W}hyperlink/{W}r")[1]
    # rStyle first in rPr, as CT_RPr orders it; the direct formatting stays.
    assert [child.tag for child in bold.find(f"{W}rPr")] == [f"{W}rStyle", f"{W}b"]
    assert style_link_runs(root) == 0  # done once


def test_the_style_is_defined_once_and_empty() -> None:
    styles = etree.fromstring(f'<w:styles xmlns:w="{W_NS}"/>')
    assert add_link_style(styles) and not add_link_style(styles)
    (style,) = styles
    assert style.get(f"{W}type") == "character" and style.get(f"{W}styleId") == LINK_STYLE
    assert [child.tag for child in style] == [f"{W}name"]  # no run properties of its own


def test_sanitising_styles_link_runs_and_defines_the_style() -> None:
    docx = add_relationship(append_body(make_docx("x"), LINK), "rIdLink", HYPERLINK_REL,
                            "https://example.org/")
    out, report = sanitize_docx(docx, PackageLimits.of(ConverterSettings()))
    assert report.link_runs == 2 and not report.changed  # not a neutralisation
    with zipfile.ZipFile(io.BytesIO(out)) as z:
        document = etree.fromstring(z.read("word/document.xml"))
        styles = etree.fromstring(z.read("word/styles.xml"))
    assert _styles(document)[-4:] == [None, LINK_STYLE, LINK_STYLE, "Own"]
    ids = [s.get(f"{W}styleId") for s in styles.iter(f"{W}style")]
    assert ids.count(LINK_STYLE) == 1


def _run(text: str, inner: str = "") -> str:
    return f"<w:r>{inner}<w:t>{text}</w:t></w:r>"


def _mark(kind: str) -> str:
    return f'<w:r><w:fldChar w:fldCharType="{kind}"/></w:r>'


def test_runs_of_hyperlink_fields_get_ours_and_other_fields_keep_theirs() -> None:
    instruction = '<w:r><w:instrText xml:space="preserve"> HYPER</w:instrText></w:r>' \
        '<w:r><w:instrText>LINK "https://example.org/" </w:instrText></w:r>'
    page = '<w:r><w:instrText> PAGE </w:instrText></w:r>'
    body = (
        f'<w:p>{_mark("begin")}{instruction}{_mark("separate")}{_run("field")}'
        f'{_run("bold", "<w:rPr><w:b/></w:rPr>")}{_mark("end")}{_run("after")}</w:p>'
        f'<w:p>{_mark("begin")}{page}{_mark("separate")}{_run("7")}{_mark("end")}</w:p>'
        '<w:p><w:fldSimple w:instr=" HYPERLINK &quot;https://example.org/s&quot; ">'
        f'{_run("simple")}</w:fldSimple><w:fldSimple w:instr=" DATE ">{_run("today")}'
        '</w:fldSimple></w:p>')
    root = etree.fromstring(f'<w:body xmlns:w="{W_NS}">{body}</w:body>')
    assert style_link_runs(root) == 3
    texts = {run.findtext(f"{W}t"): style for run, style in
             zip(root.iter(f"{W}r"), _styles(root), strict=True) if run.find(f"{W}t") is not None}
    assert texts == {"field": LINK_STYLE, "bold": LINK_STYLE, "after": None, "7": None,
                     "simple": LINK_STYLE, "today": None}
