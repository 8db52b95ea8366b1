from __future__ import annotations

import pytest
from gendoc_service.variables import as_tree, collect_paths
from jinja2.sandbox import SandboxedEnvironment

ENV = SandboxedEnvironment()


def tree(source: str) -> dict:
    return as_tree(collect_paths(ENV.parse(source), ENV.globals))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ a }}", {"a": None}),
        ("{{ a.b.c }} {{ a.d }}", {"a": {"b": {"c": None}, "d": None}}),
        ("{{ a['b'] }}", {"a": {"b": None}}),
        (
            "{% for row in inv.items %}{{ row.price }}{{ loop.index }}{% endfor %}",
            {"inv": {"items": [{"price": None}]}},
        ),
        (
            "{% for d in dishes %}{% for i in d.ingredients %}{{ i }}{% endfor %}{% endfor %}",
            {"dishes": [{"ingredients": [None]}]},
        ),
        ("{% set x = cust.addr %}{{ x.city }}", {"cust": {"addr": {"city": None}}}),
        ("{{ items|length }} {{ name|upper }}", {"items": None, "name": None}),
        ("{% for k, v in d.items() %}{{ k }}{% endfor %}", {"d": None}),
        ("{% for x in range(3) %}{{ x }}{% endfor %}", {}),
        ("{% if a is defined %}{{ a.b }}{% endif %}", {"a": {"b": None}}),
        ("{{ rows[0].x }}", {"rows": [{"x": None}]}),
        ("{% for r in rows|sort(attribute='n') %}{{ r.n }}{% endfor %}", {"rows": [{"n": None}]}),
        # Dunder names are refused by the sandbox, not data the template asks for.
        ("{{ customer.__class__ }} {{ customer.name }}", {"customer": {"name": None}}),
        ("{{ c['__dict__'].x }}", {"c": None}),
    ],
)
def test_nested_variables(source: str, expected: dict) -> None:
    assert tree(source) == expected
