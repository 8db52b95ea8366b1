"""What data a template reads, as a nested structure, from its Jinja syntax tree.

The result maps each top-level variable to:
  - None for a value used as-is (a scalar as far as the template shows),
  - a dict of the attributes read from it,
  - a one-element list [item] for a sequence the template loops over, where
    `item` is what each element must look like (None, a dict, or a list).

`{% for row in invoice.items %}{{ row.price }}{% endfor %}` gives
`{"invoice": {"items": [{"price": None}]}}`.

Strict mode checks the same paths against the data before rendering
(`missing_in`), except those the template guards itself (`x is defined`,
`x|default(...)`): every missing path is listed at once, wherever the template
reads it, instead of the first one an expression trips over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

ITEM = "[]"  # path segment: "each element of"
INCLUDE = "include"  # the global function that inserts a sub-template: include('NAME')
Path = tuple[str, ...]
# What a local name stands for: a data path, or None for a value local to the template.
Scope = dict[str, Path | None]


# Tests and filters by which a template copes with a missing value itself.
_GUARD_TESTS = frozenset({"defined", "undefined"})
_GUARD_FILTERS = frozenset({"default", "d"})


class _Found(dict[Path, None]):
    """Paths read, in the order first seen, and the paths the template guards."""

    def __init__(self) -> None:
        super().__init__()
        self.guarded: dict[Path, None] = {}
        # include('NAME') references; None for an argument that is not a quoted name.
        self.includes: dict[str | None, None] = {}


@dataclass(frozen=True)
class Reads:
    """What one template part reads: every path, and those it guards (and their children)."""

    paths: tuple[Path, ...]
    guarded: tuple[Path, ...]
    includes: tuple[str | None, ...] = ()  # include() references, None where not a literal

    def required(self) -> list[Path]:
        return [p for p in self.paths
                if not any(p[:len(g)] == g for g in self.guarded)]


def collect(tree: nodes.Template, known_globals: Iterable[str] = ()) -> Reads:
    found = _Found()
    scope: Scope = {name: None for name in known_globals}
    _walk(tree, scope, found)
    return Reads(tuple(found), tuple(found.guarded), tuple(found.includes))


def collect_paths(tree: nodes.Template, known_globals: Iterable[str] = ()) -> list[Path]:
    """Every data path the template reads, in the order first seen."""
    return list(collect(tree, known_globals).paths)


def missing_in(data: Mapping[str, Any], paths: Iterable[Path]) -> list[str]:
    """Each path the data lacks, spelled as in the data (`items[1].price`), in order.

    Only a mapping can lack a key: a path continuing into a string, a number or
    null (a method such as `name.upper`, an attribute of a rich value) is not
    judged here; the render itself still records what it finds missing.
    """
    found: dict[str, None] = {}
    for path in paths:
        _check(data, path, "", found)
    return list(found)


def _check(value: Any, path: Path, spelled: str, found: dict[str, None]) -> None:
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == ITEM:
        elements = value.values() if isinstance(value, Mapping) else value
        if isinstance(elements, (list, tuple)) or isinstance(value, Mapping):
            for i, element in enumerate(elements):
                _check(element, rest, f"{spelled}[{i}]", found)
        return
    if not isinstance(value, Mapping):
        return
    here = f"{spelled}.{head}" if spelled else head
    if head in value:
        _check(value[head], rest, here, found)
    elif not hasattr(dict, head):  # d.items(), d.keys() are the mapping's own methods
        # Below a missing value the path continues as far as it is plain attributes:
        # `customer.address.city` says more than `customer` of what the data needs.
        for step in rest:
            if step == ITEM:
                break
            here = f"{here}.{step}"
        found.setdefault(here, None)


def as_tree(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        _insert(root, path)
    return root


def _insert(node: dict[str, Any], path: Path) -> None:
    head, rest = path[0], path[1:]
    if not rest:
        node.setdefault(head, None)
        return
    if rest[0] == ITEM:
        child = node.get(head)
        if not isinstance(child, list):
            child = node[head] = [None]
        _insert_item(child, rest[1:])
        return
    child = node.get(head)
    if not isinstance(child, dict):
        child = node[head] = {}
    _insert(child, rest)


def _insert_item(holder: list[Any], rest: Path) -> None:
    if not rest:
        return
    if rest[0] == ITEM:
        if not isinstance(holder[0], list):
            holder[0] = [None]
        _insert_item(holder[0], rest[1:])
        return
    if not isinstance(holder[0], dict):
        holder[0] = {}
    _insert(holder[0], rest)


def _path_of(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> Path | None:
    """The data path an expression denotes, or None if it is not a plain lookup."""
    if isinstance(node, nodes.Name):
        if node.name in scope:
            return scope[node.name]
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = _path_of(node.node, scope, found)
        return _then(base, node.attr, found)
    if isinstance(node, nodes.Getitem):
        base = _path_of(node.node, scope, found)
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return _then(base, node.arg.value, found)
        _walk(node.arg, scope, found)
        return (*base, ITEM) if base is not None else None
    return None


def _then(base: Path | None, name: str, found: dict[Path, None]) -> Path | None:
    """`base.name`. A dunder name is no data (the sandbox refuses it at render time):
    what holds it is read (`customer.__class__` reads `customer`), and nothing below it
    is a data path."""
    if base is not None and name.startswith("__"):
        if base:
            found.setdefault(base, None)
        return None
    return (*base, name) if base is not None else None


def _use(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> bool:
    """Record `node` if it is a data lookup; False when it is something else."""
    if not isinstance(node, (nodes.Name, nodes.Getattr, nodes.Getitem)):
        return False
    path = _path_of(node, scope, found)
    if path:
        found.setdefault(path, None)
    return True


def _bind(target: nodes.Node, path: Path | None, scope: Scope) -> None:
    if isinstance(target, nodes.Name):
        scope[target.name] = path
    elif isinstance(target, nodes.Tuple):
        for item in target.items:  # `for k, v in x.items()`: parts of unknown shape
            _bind(item, None, scope)


def _iterable_path(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> Path | None:
    # `x.items()` / `x.values()` loop over a mapping: x is used, elements unknown.
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        _use(node.node.node, scope, found)
        return None
    # `items|sort(...)` and friends keep the elements' shape.
    if isinstance(node, nodes.Filter) and node.node is not None:
        for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
            _walk(arg, scope, found)
        return _iterable_path(node.node, scope, found)
    path = _path_of(node, scope, found)
    if path is None:
        _walk(node, scope, found)
    return path


def _guard(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> None:
    """Note the path of `x is defined` / `x|default(...)`: the template copes without it."""
    if isinstance(node, nodes.Test):
        target = node.node if node.name in _GUARD_TESTS else None
    elif isinstance(node, nodes.Filter):
        target = node.node if node.name in _GUARD_FILTERS else None
    else:
        return
    if target is None or not isinstance(found, _Found):
        return
    if path := _path_of(target, scope, found):
        found.guarded.setdefault(path, None)


def _include(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> None:
    """Note the sub-template of `include('NAME')`; it is fetched before the render, so
    the name must be written in the template, not computed."""
    if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)
            and node.node.name == INCLUDE and scope.get(INCLUDE, ()) is None
            and isinstance(found, _Found)):
        return
    [argument] = node.args if len(node.args) == 1 and not node.kwargs else [None]
    name = argument.value if isinstance(argument, nodes.Const) else None
    found.includes.setdefault(name if isinstance(name, str) else None, None)


def _walk(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> None:
    if _use(node, scope, found):
        return
    _guard(node, scope, found)
    _include(node, scope, found)
    if isinstance(node, nodes.For):
        source = _iterable_path(node.iter, scope, found)
        if source:
            found.setdefault(source, None)
        inner = dict(scope)
        inner["loop"] = None
        _bind(node.target, (*source, ITEM) if source else None, inner)
        for child in [*node.body, *([node.test] if node.test else [])]:
            _walk(child, inner, found)
        for child in node.else_:
            _walk(child, scope, found)
        return
    if isinstance(node, nodes.Assign):
        _walk(node.node, scope, found)
        _bind(node.target, _path_of(node.node, scope, found), scope)
        return
    if isinstance(node, nodes.With):
        inner = dict(scope)
        for target, value in zip(node.targets, node.values, strict=False):
            _walk(value, scope, found)
            _bind(target, _path_of(value, scope, found), inner)
        for child in node.body:
            _walk(child, inner, found)
        return
    if isinstance(node, (nodes.Macro, nodes.CallBlock)):
        if isinstance(node, nodes.Macro):
            scope[node.name] = None
        inner = dict(scope)
        for arg in getattr(node, "args", []):
            _bind(arg, None, inner)
        inner["caller"] = None
        for child in node.iter_child_nodes():
            _walk(child, inner, found)
        return
    for child in node.iter_child_nodes():
        _walk(child, scope, found)
