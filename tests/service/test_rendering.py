from __future__ import annotations

import io

import pytest
from docx import Document
from docx_helpers import make_docx, part_texts
from gendoc_service.errors import (
    TemplateRenderProblem,
    TemplateSecurityProblem,
    TemplateSyntaxProblem,
    UndefinedVariables,
)
from gendoc_service.rendering import Renderer, RenderOptions


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(8 << 20)


def body(docx: bytes) -> list[str]:
    return part_texts(docx)["word/document.xml"]


def test_renders_body_header_footer_and_properties(renderer: Renderer) -> None:
    tpl = make_docx("Hello {{ name }}", header="H {{ org.name }}", footer="F {{ page }}",
                    title="T {{ name }}")
    out = renderer.render(tpl, {"name": "Ada", "org": {"name": "ACME"}, "page": 3})
    texts = part_texts(out)
    assert "Hello Ada" in texts["word/document.xml"]
    assert any("H ACME" in t for k, v in texts.items() if "header" in k for t in v)
    assert any("F 3" in t for k, v in texts.items() if "footer" in k for t in v)
    assert Document(io.BytesIO(out)).core_properties.title == "T Ada"


@pytest.mark.parametrize(
    "value",
    [
        "a < b & c > d",
        "</w:t></w:r><w:r><w:t>injected",
        '<w:p><w:r><w:t>new paragraph</w:t></w:r></w:p>',
        "{{ 7*7 }} {% if true %}x{% endif %}",
        "&amp; &lt;",
    ],
)
def test_data_comes_out_as_literal_text(renderer: Renderer, value: str) -> None:
    out = renderer.render(make_docx("[{{ v }}]"), {"v": value})
    assert f"[{value}]" in body(out)


def test_lenient_mode_renders_missing_values_empty(renderer: Renderer) -> None:
    out = renderer.render(make_docx("[{{ missing }}][{{ a.b.c }}]"), {})
    assert "[][]" in body(out)


def test_strict_mode_lists_every_missing_variable(renderer: Renderer) -> None:
    tpl = make_docx(
        "{{ customer.name }} {{ customer.address.city }} {{ total }}",
        "{% for it in items %}{{ it.price }}{% endfor %}",
        header="{{ org }}",
    )
    with pytest.raises(UndefinedVariables) as info:
        renderer.render(tpl, {"customer": {"name": "x"}, "items": [{"price": 1}, {}]},
                        RenderOptions(strict=True))
    assert info.value.status == 422
    assert info.value.extensions["variables"] == [
        "customer.address.city", "total", "items[1].price", "org",
    ]


def test_strict_mode_accepts_complete_data_and_defaults(renderer: Renderer) -> None:
    tpl = make_docx("{{ a }} {{ b|default('dflt') }} {% if c is defined %}{{ c }}{% endif %}")
    assert "1 dflt " in body(renderer.render(tpl, {"a": 1}, RenderOptions(strict=True)))


@pytest.mark.parametrize(
    ("kwargs", "part"),
    [
        ({"header": "{% if x %}unclosed"}, "header"),
        ({"footer": "{{ x }"}, "footer"),
        ({}, "body"),
    ],
)
def test_syntax_error_names_part_and_line(renderer: Renderer, kwargs: dict, part: str) -> None:
    paragraphs = ["first", "second", "{% endif %} stray"] if part == "body" else ["fine {{ a }}"]
    tpl = make_docx(*paragraphs, **kwargs)
    for action in (lambda: renderer.inspect(tpl), lambda: renderer.render(tpl, {})):
        with pytest.raises(TemplateSyntaxProblem) as info:
            action()
        ext = info.value.extensions
        assert ext["part"] == part
        assert isinstance(ext["line"], int) and ext["line"] >= 1
    if part == "body":
        assert ext["paragraph"] == 3
        assert any("stray" in line for line in ext["context"])


@pytest.mark.parametrize(
    "expression",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(x) }}",
    ],
)
def test_sandbox_blocks_template_injection(renderer: Renderer, expression: str) -> None:
    with pytest.raises((TemplateSecurityProblem, TemplateRenderProblem)) as info:
        renderer.render(make_docx(expression), {"x": 1})
    assert info.value.status == 422


def test_runtime_template_errors_are_422(renderer: Renderer) -> None:
    with pytest.raises(TemplateRenderProblem):
        renderer.render(make_docx("{{ 1 / zero }}"), {"zero": 0})


def test_compiled_parts_are_cached(renderer: Renderer) -> None:
    tpl = make_docx("cache {{ n }}")
    renderer.render(tpl, {"n": 1})
    hits = renderer._compiled.hits
    renderer.render(tpl, {"n": 2})
    assert renderer._compiled.hits > hits
