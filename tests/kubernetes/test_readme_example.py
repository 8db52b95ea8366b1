"""The README's example DocGenerator is what the real API server accepts, field for field."""

from __future__ import annotations

import re
from typing import Any

import yaml
from conftest import REPO

Cluster = Any


def readme_docgenerator() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# docgenerator\.yaml\n.*?)```", text, re.S)
    assert block, "README.md lost its example DocGenerator"
    return block.group(1)


def test_readme_example_is_valid(cluster: Cluster) -> None:
    manifest = readme_docgenerator()
    obj = yaml.safe_load(manifest)
    assert obj["kind"] == "DocGenerator"
    cluster.new_namespace(obj["metadata"]["namespace"])
    code, out = cluster.try_kubectl("apply", "--dry-run=server", "--validate=strict", "-o", "yaml",
                                    "-f", "-", input=manifest)
    assert code == 0, out
    stored = yaml.safe_load(out)
    # Nothing the README shows was pruned or rejected: every field survives.
    def contains(big: Any, small: Any) -> bool:
        if isinstance(small, dict):
            return all(k in big and contains(big[k], v) for k, v in small.items())
        return big == small or str(big) == str(small)

    assert contains(stored["spec"], obj["spec"]), out
