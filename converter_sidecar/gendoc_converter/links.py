"""Hyperlinks LibreOffice 7.4 exports to PDF as clickable links (pure).

The DOCX import gives a w:hyperlink the character style of its runs; a run
without one leaves the link on LibreOffice's default character style. 7.4's
PDF export finds links by walking the character styles and skips the default
one (SwEditShell::GetINetAttrs: `for (n = size; 1 < n;)`), so such a link is
drawn but is no /Link annotation: LibreOffice bug tdf#146575, cited in
github.com/Sayi/poi-tl/issues/926. Measured here: a python-docx hyperlink,
or an $html link, converted with nothing changed has no /Annots at all; the
same with a character style on its run is a /Link with its /URI.

So every run of a link (a w:hyperlink, or a HYPERLINK field's result: the
same is true of those) that has no character style gets `LINK_STYLE`, a
character style of ours with no properties: what is drawn does not change
(the run's direct formatting stays), only the link is found. Runs that name a
style of their own are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
LINK_STYLE = "GendocLink"  # w:styleId; LibreOffice shows it by its w:name
LINK_STYLE_NAME = "gendoc link"


def style_link_runs(root: etree._Element) -> int:
    """Give every run of a link in `root` (inside a w:hyperlink, or the result of a
    HYPERLINK field, simple or complex) without a character style `LINK_STYLE`; how many
    runs changed."""
    runs = [r for link in root.iter(f"{W}hyperlink") for r in link.iter(f"{W}r")]
    runs += [r for simple in root.iter(f"{W}fldSimple")
             if _is_hyperlink(simple.get(f"{W}instr", "")) for r in simple.iter(f"{W}r")]
    runs += _hyperlink_field_results(root)
    return sum(_style(r) for r in dict.fromkeys(runs))


def _style(run: etree._Element) -> bool:
    properties = run.find(f"{W}rPr")
    if properties is None:
        properties = etree.Element(f"{W}rPr")
        run.insert(0, properties)
    if properties.find(f"{W}rStyle") is not None:
        return False
    style = etree.Element(f"{W}rStyle")
    style.set(f"{W}val", LINK_STYLE)
    properties.insert(0, style)  # rStyle comes first in CT_RPr
    return True


def _is_hyperlink(instruction: str) -> bool:
    return instruction.strip().upper().startswith("HYPERLINK")


def _hyperlink_field_results(root: etree._Element) -> list[etree._Element]:
    """The runs between separate and end of every complex HYPERLINK field of `root`."""
    stack: list[_Field] = []  # the fields open at this run, innermost last
    found: list[etree._Element] = []
    if next(root.iter(f"{W}fldChar"), None) is None:  # most parts: no complex field
        return found
    for run in root.iter(f"{W}r"):
        marks = run.findall(f"{W}fldChar")
        for mark in marks:
            kind = mark.get(f"{W}fldCharType")
            if kind == "begin":
                stack.append(_Field())
            elif kind == "separate" and stack:
                stack[-1].in_result = True
            elif kind == "end" and stack:
                stack.pop()
        instructions = run.findall(f"{W}instrText")
        if stack and not stack[-1].in_result:
            stack[-1].instruction += "".join(i.text or "" for i in instructions)
        elif stack and not marks and not instructions and _is_hyperlink(stack[-1].instruction):
            found.append(run)
    return found


@dataclass
class _Field:
    instruction: str = ""
    in_result: bool = False


def add_link_style(styles: etree._Element) -> bool:
    """Define `LINK_STYLE` in the styles part `styles` unless it is; whether it changed."""
    for style in styles.iter(f"{W}style"):
        if style.get(f"{W}styleId") == LINK_STYLE:
            return False
    style = etree.SubElement(styles, f"{W}style")
    style.set(f"{W}type", "character")
    style.set(f"{W}customStyle", "1")
    style.set(f"{W}styleId", LINK_STYLE)
    etree.SubElement(style, f"{W}name").set(f"{W}val", LINK_STYLE_NAME)
    return True
