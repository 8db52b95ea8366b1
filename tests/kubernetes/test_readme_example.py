"""The README's example DocGenerator is what the real API server accepts, field for field."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from conftest import REPO

Cluster = Any


def readme_docgenerators() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(# docgenerator[-a-z0-9]*\.yaml\n.*?)```", text, re.S)
    assert [b.splitlines()[0] for b in blocks] == [
        "# docgenerator.yaml", "# docgenerator-s3.yaml"], "README.md lost an example DocGenerator"
    return blocks


@pytest.mark.parametrize("index", [0, 1], ids=["configmap", "object-store"])
def test_readme_example_is_valid(cluster: Cluster, index: int) -> None:
    manifest = readme_docgenerators()[index]
    obj = yaml.safe_load(manifest)
    assert obj["kind"] == "DocGenerator"
    if cluster.try_kubectl("get", "namespace", obj["metadata"]["namespace"])[0] != 0:
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
