"""What data a template reads, as a nested structure, from its Jinja syntax tree.

The result maps each top-level variable to:
  - None for a value used as-is (a scalar as far as the template shows),
  - a dict of the attributes read from it,
  - a one-element list [item] for a sequence the template loops over, where
    `item` is what each element must look like (None, a dict, or a list).

`{% for row in invoice.items %}{{ row.price }}{% endfor %}` gives
`{"invoice": {"items": [{"price": None}]}}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import nodes

ITEM = "[]"  # path segment: "each element of"
Path = tuple[str, ...]
# What a local name stands for: a data path, or None for a value local to the template.
Scope = dict[str, Path | None]


def collect_paths(tree: nodes.Template, known_globals: Iterable[str] = ()) -> list[Path]:
    """Every data path the template reads, in the order first seen."""
    found: dict[Path, None] = {}
    scope: Scope = {name: None for name in known_globals}
    _walk(tree, scope, found)
    return list(found)


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
        return (*base, node.attr) if base is not None else None
    if isinstance(node, nodes.Getitem):
        base = _path_of(node.node, scope, found)
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return (*base, node.arg.value) if base is not None else None
        _walk(node.arg, scope, found)
        return (*base, ITEM) if base is not None else None
    return None


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


def _walk(node: nodes.Node, scope: Scope, found: dict[Path, None]) -> None:
    if _use(node, scope, found):
        return
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
