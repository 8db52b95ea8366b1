"""sanitize.py alone: external relationships and include fields neutralised, macros refused,
every decision made on the parsed XML however the part spells it."""

from __future__ import annotations

import io
import zipfile

import pytest
from converter.converter_docs import (
    HYPERLINK_REL,
    IMAGE_REL,
    R_NS,
    add_relationship,
    append_body,
    complex_field,
    edit_part,
    make_docx,
    simple_field,
    with_macros,
)
from docx_helpers import replace_in_zip, uninflatable_bomb, with_part_reencoded
from gendoc_converter.errors import MacroDocument, UnreadableDocument
from gendoc_converter.sanitize import (
    BLOCKED_TARGET,
    field_type,
    fieldless_parts,
    strip_external_relationships,
    strip_include_fields,
)
from gendoc_converter.sanitize import sanitize_docx as sanitize_with
from gendoc_converter.settings import ConverterSettings
from lxml import etree

from gendoc.package_limits import PackageLimits

RELS = "word/_rels/document.xml.rels"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# The converter's own defaults, as `gendoc converter` builds them.
LIMITS = PackageLimits.of(ConverterSettings())


def sanitize_docx(data: bytes) -> tuple[bytes, object]:
    return sanitize_with(data, LIMITS)


def part(docx: bytes, name: str) -> bytes:
    return zipfile.ZipFile(io.BytesIO(docx)).read(name)


def rels(docx: bytes) -> dict[str, dict[str, str]]:
    root = etree.fromstring(part(docx, RELS))
    return {r.get("Id"): dict(r.attrib) for r in root}


def test_plain_document_is_returned_untouched() -> None:
    docx = make_docx("Hello")
    out, report = sanitize_docx(docx)
    assert out is docx
    assert not report.changed


def test_external_image_is_retargeted_inside_the_package() -> None:
    docx = add_relationship(make_docx("x"), "rIdEvil", IMAGE_REL, "http://127.0.0.1:9/canary.png")
    out, report = sanitize_docx(docx)
    rel = rels(out)["rIdEvil"]
    assert rel["Target"] == BLOCKED_TARGET
    assert "TargetMode" not in rel
    assert report.relationships == [f"{RELS}: image -> http://127.0.0.1:9/canary.png"]


def test_external_hyperlink_is_kept() -> None:
    docx = add_relationship(make_docx("x"), "rIdLink", HYPERLINK_REL, "https://example.org/")
    out, report = sanitize_docx(docx)
    assert out is docx and not report.changed
    assert rels(out)["rIdLink"]["Target"] == "https://example.org/"


@pytest.mark.parametrize("kind", ["oleObject", "attachedTemplate", "subDocument", "frame",
                                  "package"])
def test_every_other_external_relationship_is_retargeted(kind: str) -> None:
    target = "file:///etc/passwd"
    part_name = "word/_rels/settings.xml.rels" if kind == "attachedTemplate" else RELS
    docx = make_docx("x")
    if part_name not in zipfile.ZipFile(io.BytesIO(docx)).namelist():
        docx = _with_part(docx, part_name, '<?xml version="1.0"?><Relationships xmlns="http://'
                          'schemas.openxmlformats.org/package/2006/relationships"></Relationships>')
    docx = add_relationship(docx, "rIdX", f"{R_NS}/{kind}", target, part=part_name)
    out, _ = sanitize_docx(docx)
    assert b"/etc/passwd" not in part(out, part_name)


def test_alt_chunk_is_dropped_even_when_internal() -> None:
    out = strip_external_relationships(
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="r1" Type="' + R_NS.encode() + b'/aFChunk" Target="chunk.html"/>'
        b"</Relationships>")
    assert out is not None and BLOCKED_TARGET.encode() in out


@pytest.mark.parametrize("instruction", [
    ' INCLUDEPICTURE "http://127.0.0.1:9/x.png" \\d ',
    ' includetext "file:///etc/passwd" ',
    " LINK Word.Document.12 \"C:\\\\x.docx\" \"\" \\a ",
    ' DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc" ',
    ' IMPORT "file:///etc/hosts" ',
])
def test_include_fields_lose_their_code_and_keep_their_result(instruction: str) -> None:
    for split in (False, True):
        docx = append_body(make_docx("before"), complex_field(instruction, "CACHED", split=split))
        out, report = sanitize_docx(docx)
        document = part(out, "word/document.xml")
        assert b"instrText" not in document and b"fldChar" not in document
        assert b"CACHED" in document
        assert len(report.fields) == 1


def test_simple_include_field_is_unwrapped() -> None:
    docx = append_body(make_docx("x"), simple_field(' INCLUDETEXT "/etc/passwd" ', "CACHED"))
    out, report = sanitize_docx(docx)
    document = part(out, "word/document.xml")
    assert b"fldSimple" not in document and b"CACHED" in document
    assert report.fields == ['word/document.xml: INCLUDETEXT "/etc/passwd"']


def test_harmless_fields_and_hyperlink_fields_stay() -> None:
    docx = append_body(make_docx("x"), complex_field(" PAGE ", "1")
                       + complex_field(' HYPERLINK "https://example.org" ', "link")
                       + simple_field(" NUMPAGES ", "1"))
    out, report = sanitize_docx(docx)
    assert not report.changed
    # Only the link's result run gains a character style (links.py), every field stays.
    assert report.link_runs == 1
    document = part(out, "word/document.xml").decode()
    for code in ("PAGE", 'HYPERLINK "https://example.org"', "NUMPAGES"):
        assert code in document


def test_nested_field_building_an_include_is_removed_whole() -> None:
    # { INCLUDEPICTURE "{ QUOTE "http://x" }" }: the nested field is part of the code.
    xml = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> INCLUDEPICTURE "</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> QUOTE "http://127.0.0.1:9/x" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>http://127.0.0.1:9/x</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        '<w:r><w:instrText xml:space="preserve">" \\d </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>KEPT</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    out = strip_include_fields(_document(xml))
    assert out is not None
    assert b"127.0.0.1" not in out and b"fldChar" not in out and b"KEPT" in out


def test_a_field_built_from_a_nested_field_result_is_recognised() -> None:
    # { { QUOTE "INCLUDETEXT" } "file:///etc/passwd" }: the type comes from a nested result.
    xml = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText> QUOTE "INCLUDETEXT" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>INCLUDETEXT</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> "file:///etc/passwd" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>KEPT</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    out = strip_include_fields(_document(xml))
    assert out is not None and b"passwd" not in out and b"KEPT" in out


def test_fields_in_headers_are_checked_too() -> None:
    docx = make_docx("x")
    docx = _with_part(docx, "word/header1.xml", _document(
        complex_field(' INCLUDEPICTURE "http://127.0.0.1:9/h.png" ', "H")).decode())
    out, report = sanitize_docx(docx)
    assert b"127.0.0.1" not in part(out, "word/header1.xml")
    assert report.fields and report.fields[0].startswith("word/header1.xml")


def test_field_type_is_the_first_word() -> None:
    assert field_type('  includePicture "x" ') == "INCLUDEPICTURE"
    assert field_type(" HYPERLINK x") == "HYPERLINK"
    assert field_type("") == ""


def test_macro_packages_are_refused() -> None:
    with pytest.raises(MacroDocument):
        sanitize_docx(with_macros(make_docx("x")))


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_unreadable_packages_are_refused(data: bytes) -> None:
    with pytest.raises(UnreadableDocument):
        sanitize_docx(data)


def test_the_converter_defaults_are_the_documented_limits() -> None:
    """docs/security.md: 2,000 entries, 200 MiB unpacked, 200:1 for the converter."""
    assert (LIMITS.max_entries, LIMITS.max_unzipped_bytes, LIMITS.max_ratio) == (
        2000, 200 << 20, 200)


def test_a_bomb_is_refused_before_anything_is_inflated() -> None:
    """Its data is not a deflate stream: refusing it for its ratio shows nothing was inflated."""
    with pytest.raises(UnreadableDocument, match=r"compressed \d+:1, more than the allowed 200:1"):
        sanitize_docx(uninflatable_bomb())


def test_zip_bombs_are_refused_from_the_directory() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (5 * 1024 * 1024))
    with pytest.raises(UnreadableDocument, match=r"compressed \d+:1, more than the allowed 200:1"):
        sanitize_docx(out.getvalue())
    with pytest.raises(UnreadableDocument, match="at most 3 are allowed"):
        sanitize_with(make_docx("x"), PackageLimits(3, LIMITS.max_unzipped_bytes, 200))
    with pytest.raises(UnreadableDocument, match="would unpack to"):
        sanitize_with(make_docx("x"), PackageLimits(2000, 1000, 200))


def test_external_entities_are_refused_not_resolved() -> None:
    evil = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="r" Type="t/image" Target="&x;" TargetMode="External"/>'
            b"</Relationships>")
    with pytest.raises(UnreadableDocument, match="external entity"):
        strip_external_relationships(evil)



def _document(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
            f'openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>'
            ).encode()


def _with_part(docx: bytes, name: str, text: str) -> bytes:
    out = io.BytesIO(docx)
    with zipfile.ZipFile(out, "a") as z:
        z.writestr(name, text)
    return out.getvalue()


def test_parts_are_skipped_by_how_they_are_referenced_not_by_name() -> None:
    docx = make_docx("x")
    names = zipfile.ZipFile(io.BytesIO(docx)).namelist()
    relationships = {n: etree.fromstring(part(docx, n)) for n in names if n.endswith(".rels")}
    skipped = fieldless_parts(relationships)
    assert "word/styles.xml" in skipped and "word/document.xml" not in skipped
    # The main document renamed to word/styles.xml is still scanned.
    evil = append_body(docx, complex_field(' INCLUDETEXT "/etc/passwd" ', "CACHED"))
    evil = _rename(evil, "word/document.xml", "word/styles2.xml")
    evil = _rename(evil, "word/styles.xml", "word/document.xml")
    evil = _rename(evil, "word/styles2.xml", "word/styles.xml")
    evil = edit_part(evil, "_rels/.rels", lambda x: x.replace("word/document.xml",
                                                                "word/styles.xml"))
    evil = edit_part(evil, RELS, lambda x: x.replace('Target="styles.xml"',
                                                       'Target="document.xml"'))
    out, report = sanitize_docx(evil)
    assert b"passwd" not in part(out, "word/styles.xml")
    assert report.fields == ['word/styles.xml: INCLUDETEXT "/etc/passwd"']


def _rename(docx: bytes, old: str, new: str) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(docx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(new if item.filename == old else item.filename, src.read(item))
    return out.getvalue()


# The same attacks spelled so that no byte pattern matches: each must be judged
# exactly like its plain form, since LibreOffice's parser reads them the same way.

UTF8_DECL = "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
PLAIN_IMAGE = ' TargetMode="External"'


def _external_image() -> bytes:
    return add_relationship(make_docx("x"), "rIdEvil", IMAGE_REL, "http://127.0.0.1:9/c.png")


def test_target_mode_spelled_with_a_character_reference_is_external() -> None:
    docx = edit_part(_external_image(), RELS,
                     lambda x: x.replace(PLAIN_IMAGE, ' TargetMode="&#69;xter&#x6E;al"'))
    assert b'TargetMode="External"' not in part(docx, RELS)
    out, report = sanitize_docx(docx)
    assert rels(out)["rIdEvil"]["Target"] == BLOCKED_TARGET
    assert report.relationships == [f"{RELS}: image -> http://127.0.0.1:9/c.png"]


def test_relationship_type_spelled_with_character_references_is_recognised() -> None:
    chunk = f"{R_NS}/aFChunk".replace("a", "&#97;")
    docx = add_relationship(make_docx("x"), "rIdChunk", chunk, "chunk.html", external=False)
    assert b"aFChunk" not in part(docx, RELS)
    out, _ = sanitize_docx(docx)
    assert rels(out)["rIdChunk"]["Target"] == BLOCKED_TARGET


def test_external_relationship_in_a_utf16_part_is_retargeted() -> None:
    docx = with_part_reencoded(_external_image(), RELS)
    assert b"External" not in part(docx, RELS)
    out, report = sanitize_docx(docx)
    assert rels(out)["rIdEvil"]["Target"] == BLOCKED_TARGET
    assert len(report.relationships) == 1


def test_include_field_in_a_utf16_document_is_removed() -> None:
    docx = append_body(make_docx("x"), complex_field(' INCLUDETEXT "/etc/passwd" ', "CACHED")
                       + simple_field(' INCLUDEPICTURE "http://127.0.0.1:9/p.png" ', "PIC"))
    docx = with_part_reencoded(docx, "word/document.xml")
    assert b"instrText" not in part(docx, "word/document.xml")
    out, report = sanitize_docx(docx)
    document = part(out, "word/document.xml").decode()
    assert "passwd" not in document and "127.0.0.1" not in document
    assert "CACHED" in document and "PIC" in document
    assert len(report.fields) == 2


def test_field_instructions_spelled_with_character_references_are_recognised() -> None:
    docx = append_body(make_docx("x"), complex_field(' INCLUDETEXT "/etc/passwd" ', "CACHED")
                       + simple_field(' LINK Word.Document.12 "/etc/hosts" ', "LINKED"))
    docx = edit_part(docx, "word/document.xml", lambda x: x.replace(
        "INCLUDETEXT", "&#73;NCLUDE&#x54;EXT").replace("LINK ", "L&#73;NK "))
    out, report = sanitize_docx(docx)
    document = part(out, "word/document.xml")
    assert b"passwd" not in document and b"/etc/hosts" not in document
    assert len(report.fields) == 2


def test_macro_content_type_in_a_utf16_part_is_refused() -> None:
    docx = with_macros(make_docx("x"))
    docx = replace_in_zip(docx, "word/vbaProject.bin", b"")  # keep the name check out of it
    docx = _rename(docx, "word/vbaProject.bin", "word/harmless.bin")
    docx = with_part_reencoded(docx, "[Content_Types].xml")
    assert b"macroEnabled" not in part(docx, "[Content_Types].xml")
    with pytest.raises(MacroDocument):
        sanitize_docx(docx)


INTERNAL_ENTITY = ('<?xml version="1.0"?><!DOCTYPE Relationships [<!ENTITY ext "External">]>'
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                   f'relationships"><Relationship Id="rIdEvil" Type="{IMAGE_REL}" '
                   'Target="http://127.0.0.1:9/e.png" TargetMode="&ext;"/></Relationships>')


@pytest.mark.parametrize("part_name", [RELS, "word/document.xml", "word/styles.xml",
                                       "[Content_Types].xml"])
def test_a_doctype_in_any_part_is_refused(part_name: str) -> None:
    """Entities need a DOCTYPE: refused wherever it is, also in parts never scanned for fields."""
    def with_doctype(xml: str) -> str:
        root = xml[len(UTF8_DECL):].lstrip()
        name = root[1:].split(None, 1)[0].rstrip(">")
        return f'{UTF8_DECL}<!DOCTYPE {name} [<!ENTITY e "x">]>{root}'

    docx = edit_part(make_docx("x"), part_name, with_doctype)
    with pytest.raises(UnreadableDocument, match="DOCTYPE"):
        sanitize_docx(docx)
    with pytest.raises(UnreadableDocument, match="DOCTYPE"):
        sanitize_docx(with_part_reencoded(docx, part_name))


def test_an_entity_spelling_external_is_refused_not_trusted() -> None:
    docx = replace_in_zip(make_docx("x"), RELS, INTERNAL_ENTITY.encode())
    with pytest.raises(UnreadableDocument, match="DOCTYPE"):
        sanitize_docx(docx)


def test_a_document_part_under_another_extension_is_still_scanned() -> None:
    """LibreOffice finds the main document through relationships and content types, not by
    its name: a part called document.dat is XML all the same."""
    docx = append_body(make_docx("x"), complex_field(' INCLUDETEXT "/etc/passwd" ', "CACHED"))
    docx = _rename(docx, "word/document.xml", "word/document.dat")
    docx = edit_part(docx, "_rels/.rels", lambda x: x.replace("word/document.xml",
                                                                "word/document.dat"))
    docx = edit_part(docx, "[Content_Types].xml",
                     lambda x: x.replace("/word/document.xml", "/word/document.dat"))
    docx = _rename(docx, RELS, "word/_rels/document.dat.rels")
    out, report = sanitize_docx(docx)
    assert b"passwd" not in part(out, "word/document.dat")
    assert report.fields == ['word/document.dat: INCLUDETEXT "/etc/passwd"']
