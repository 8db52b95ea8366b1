"""Strict mode lists every missing path before rendering, wherever the template reads it.

Before this, a template that computed with a missing number stopped at the first
one (`template-render-error: 'rate' is undefined`); now the template's variable
tree is checked against the data first and every missing path is listed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from conftest import CORPUS, corpus_cases
from docx_helpers import make_docx, part_texts
from gendoc_service.errors import UndefinedVariables
from gendoc_service.rendering import Renderer, RenderOptions

STRICT = RenderOptions(strict=True)
PROBLEMS = "https://gendoc.io/problems/"

# Text, a condition, a loop with arithmetic, filter arguments, header and footer.
INVOICE = make_docx(
    "Net {{ amount * rate }}",
    "{% if vip %}VIP{% endif %}",
    "{% for it in items %}{{ (it.qty * it.price)|format_currency(cur) }} {% endfor %}",
    "Total {{ total|format_currency(currency) }}",
    header="{{ org.name }}",
    footer="{{ page_label }}",
)
SPARSE = {"amount": 3, "items": [{"qty": 1}, {"price": 2}]}
EVERY_MISSING = ["rate", "vip", "items[1].qty", "items[0].price", "cur", "total", "currency",
                 "org.name", "page_label"]
COMPLETE = {"amount": 3, "rate": 2, "vip": True, "cur": "EUR", "total": 6, "currency": "EUR",
            "items": [{"qty": 2, "price": 5}], "org": {"name": "ACME"}, "page_label": "p."}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(8 << 20)


def missing(renderer: Renderer, docx: bytes, data: dict[str, object]) -> list[str]:
    with pytest.raises(UndefinedVariables) as caught:
        renderer.render(docx, data, STRICT)
    variables: list[str] = caught.value.extensions["variables"]
    return variables


def test_every_missing_path_is_listed_not_the_first_error(renderer: Renderer) -> None:
    assert missing(renderer, INVOICE, SPARSE) == EVERY_MISSING


def test_complete_data_renders(renderer: Renderer) -> None:
    out = renderer.render(INVOICE, COMPLETE, STRICT)
    assert "Net 6" in part_texts(out)["word/document.xml"]


def test_a_missing_parent_names_the_paths_below_it(renderer: Renderer) -> None:
    tpl = make_docx("{{ customer.name }} {{ customer.address.city }}",
                    "{% for row in rows %}{{ row.x }}{% endfor %}")
    assert missing(renderer, tpl, {}) == ["customer.name", "customer.address.city", "rows"]


def test_paths_the_template_guards_are_not_required(renderer: Renderer) -> None:
    tpl = make_docx("{{ note|default('-') }} {% if extra is defined %}{{ extra.x }}{% endif %}",
                    "{% for it in items %}{{ it.tag|d('') }}{% endfor %}",
                    "{{ name.upper() }} {{ d.keys()|list|length }} {{ loop_free|default(n) }}")
    out = renderer.render(tpl, {"items": [{}], "name": "ada", "d": {"a": 1}, "n": 0}, STRICT)
    assert "- " in part_texts(out)["word/document.xml"][0]
    assert "ADA 1 0" in part_texts(out)["word/document.xml"][2]


def test_a_guard_does_not_hide_its_own_arguments(renderer: Renderer) -> None:
    tpl = make_docx("{{ note|default(fallback) }}")
    assert missing(renderer, tpl, {}) == ["fallback"]


def test_lenient_mode_is_unchanged(renderer: Renderer) -> None:
    out = renderer.render(make_docx("[{{ gone.deep }}]{% if vip %}x{% endif %}"), {})
    assert "[]" in part_texts(out)["word/document.xml"]


@pytest.mark.parametrize("case", [c for c in corpus_cases() if c.stem != "template_error"
                                  and "needs" not in json.loads(c.read_text())],
                         ids=lambda c: c.stem)
def test_the_analysis_finds_nothing_missing_in_docxtpls_own_cases(renderer: Renderer,
                                                                   case: Path) -> None:
    # docxtpl's corpus gives each template its complete context: strict mode must
    # not invent a missing path in any of them (loops, tables, headers, properties).
    spec = json.loads(case.read_text())
    renderer.render((CORPUS / spec["template"]).read_bytes(), spec["context"], STRICT)


# -- through the HTTP API -------------------------------------------------------
def stored(client: httpx.Client, docx: bytes) -> str:
    name = f"strict-{uuid.uuid4().hex[:10]}"
    r = client.put(f"/v1/templates/{name}", content=docx,
                   headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return name


def test_api_lists_every_missing_path(client: httpx.Client) -> None:
    name = stored(client, INVOICE)
    r = client.post("/v1/render", json={"template": name, "format": "docx", "strict": True,
                                        "data": SPARSE})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == PROBLEMS + "undefined-variables"
    assert problem["variables"] == EVERY_MISSING
    # The same template and data without strict mode still fails at the arithmetic.
    lenient = client.post("/v1/render", json={"template": name, "format": "docx",
                                              "data": SPARSE})
    assert lenient.json()["type"] == PROBLEMS + "template-render-error"


def test_api_multipart_and_batch_list_every_missing_path(client: httpx.Client) -> None:
    r = client.post("/v1/render", files={"template": ("invoice.docx", INVOICE)},
                    data={"data": json.dumps(SPARSE), "format": "docx", "strict": "true"})
    assert r.status_code == 422 and r.json()["variables"] == EVERY_MISSING, r.text
    name = stored(client, INVOICE)
    batch = client.post("/v1/render/batch", json={"template": name, "format": "docx",
                                                  "strict": True, "items": [COMPLETE, SPARSE]})
    assert batch.status_code == 422, batch.text
    assert batch.json()["item"] == 1 and batch.json()["variables"] == EVERY_MISSING


def test_api_renders_complete_data_in_strict_mode(client: httpx.Client) -> None:
    name = stored(client, INVOICE)
    r = client.post("/v1/render", json={"template": name, "format": "docx", "strict": True,
                                        "locale": "de_DE", "data": COMPLETE})
    assert r.status_code == 200, r.text
    texts = part_texts(r.content)
    assert "Net 6" in texts["word/document.xml"]
    assert "10,00\xa0€ " in texts["word/document.xml"]
    assert "Total 6,00\xa0€" in texts["word/document.xml"]
