"""docxtpl's own test templates (tests/corpus/docxtpl), rendered through the HTTP API,
must give the same document text as docxtpl itself with the same context."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, corpus_cases
from docx import Document
from docx_helpers import part_texts
from docxtpl import DocxTemplate

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def plain_cases() -> list[Path]:
    return [c for c in corpus_cases() if "needs" not in json.loads(c.read_text())]


PLAIN = plain_cases()


def test_corpus_has_the_sixteen_plain_json_cases() -> None:
    assert len(PLAIN) == 16


def reference(case: dict) -> bytes:
    tpl = DocxTemplate(CORPUS / case["template"])
    tpl.render(case["context"], autoescape=case["autoescape"])
    out = io.BytesIO()
    tpl.save(out)
    return out.getvalue()


def core_properties(docx: bytes) -> dict[str, str]:
    props = Document(io.BytesIO(docx)).core_properties
    names = ("author", "comments", "identifier", "language", "subject", "title")
    return {k: getattr(props, k) for k in names}


@pytest.mark.parametrize("case_file", PLAIN, ids=[c.stem for c in PLAIN])
def test_case_through_http(client: httpx.Client, case_file: Path) -> None:
    case = json.loads(case_file.read_text())
    template = (CORPUS / case["template"]).read_bytes()
    name = f"{case_file.stem.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    stored = client.put(f"/v1/templates/{name}", content=template, headers={"content-type": DOCX})
    if "expect_error" in case:
        assert case["expect_error"].endswith("TemplateSyntaxError")
        assert stored.status_code == 422
        assert stored.json()["type"].endswith("/template-syntax-error")
        stateless = client.post("/v1/render", files={"template": ("t.docx", template)},
                                data={"data": json.dumps(case["context"]), "format": "docx"})
        assert stateless.status_code == 422 and stateless.json()["part"] == "body"
        return
    assert stored.status_code == 201, stored.text
    rendered = client.post("/v1/render", json={"template": name, "data": case["context"],
                                               "format": "docx"})
    assert rendered.status_code == 200, rendered.text
    expected = reference(case)
    assert part_texts(rendered.content) == part_texts(expected)
    assert core_properties(rendered.content) == core_properties(expected)
    # The stateless form gives the same document text.
    stateless = client.post("/v1/render", files={"template": ("t.docx", template)},
                            data={"data": json.dumps(case["context"]), "format": "docx"})
    assert stateless.status_code == 200, stateless.text
    assert part_texts(stateless.content) == part_texts(expected)
