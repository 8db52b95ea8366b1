"""Two versions of a template side by side: the variables added and removed, a text diff.

Pure functions over what the store already gives (variable trees, .docx bytes):
the playground's "compare" view (GET /v1/templates/{name}/compare) shows their result.
"""

from __future__ import annotations

import difflib
import io
import re
import zipfile
from dataclasses import dataclass
from typing import Any

from gendoc.safexml import parse as parse_xml

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# The parts a reader sees as the document's text, in reading order.
_TEXT_PARTS = re.compile(r"word/(header\d*|document|footer\d*|footnotes)\.xml")


@dataclass(frozen=True)
class Comparison:
    added: list[str]  # variable paths only the newer version reads
    removed: list[str]  # variable paths only the older version read
    diff: list[str]  # unified diff of the documents' text, one paragraph a line

    def public(self) -> dict[str, Any]:
        return {"variables": {"added": self.added, "removed": self.removed}, "diff": self.diff}


def variable_paths(tree: dict[str, Any] | None, prefix: str = "") -> list[str]:
    """Every path of a variable tree, spelled as a template author writes it.

    `{"invoice": {"items": [{"price": None}]}}` gives `invoice`, `invoice.items`,
    `invoice.items[]`, `invoice.items[].price`: a removed leaf shows as removed
    even when its parent is still read.
    """
    found: list[str] = []
    for key, child in (tree or {}).items():
        path = f"{prefix}.{key}" if prefix else key
        found.append(path)
        found += _child_paths(child, path)
    return found


def _child_paths(child: Any, path: str) -> list[str]:
    if isinstance(child, dict):
        return variable_paths(child, path)
    if isinstance(child, list):
        item = f"{path}[]"
        return [item, *_child_paths(child[0] if child else None, item)]
    return []


def document_text(docx: bytes) -> list[str]:
    """The text of each paragraph of the body, headers, footers and footnotes, with
    the Jinja tags as written (a change of `{{ total }}` to `{{ sum }}` shows)."""
    lines: list[str] = []
    with zipfile.ZipFile(io.BytesIO(docx)) as package:
        for name in sorted(n for n in package.namelist() if _TEXT_PARTS.fullmatch(n)):
            root = parse_xml(package.read(name), name)
            for paragraph in root.iter(f"{_W}p"):
                text = "".join(t.text or "" for t in paragraph.iter(f"{_W}t"))
                if text.strip():
                    lines.append(text)
    return lines


def compare(old_tree: dict[str, Any] | None, new_tree: dict[str, Any] | None,
            old_text: list[str], new_text: list[str], *, old_label: str = "older",
            new_label: str = "newer") -> Comparison:
    old_paths, new_paths = variable_paths(old_tree), variable_paths(new_tree)
    diff = difflib.unified_diff(old_text, new_text, old_label, new_label, lineterm="", n=2)
    return Comparison(
        added=[p for p in new_paths if p not in set(old_paths)],
        removed=[p for p in old_paths if p not in set(new_paths)],
        diff=list(diff),
    )

