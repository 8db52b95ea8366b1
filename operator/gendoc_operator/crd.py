"""The DocGenerator API, read from its one source (crd.yaml next to this file).

The operator defaults a spec with the schema's own `default`s, the same way the
API server does, so that an object stored before a default existed, or a spec
built in a unit test, is read exactly as a freshly created one would be.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

GROUP = "gendoc.io"
VERSION = "v1alpha1"
KIND = "DocGenerator"
PLURAL = "docgenerators"
API_VERSION = f"{GROUP}/{VERSION}"

CRD_PATH = Path(__file__).with_name("crd.yaml")


@cache
def manifest() -> dict[str, Any]:
    """The CustomResourceDefinition, as applied to the cluster."""
    with CRD_PATH.open() as fh:
        return dict(yaml.safe_load(fh))


def schema() -> dict[str, Any]:
    """openAPIV3Schema of the served version."""
    (version,) = (v for v in manifest()["spec"]["versions"] if v["name"] == VERSION)
    return dict(version["schema"]["openAPIV3Schema"])


def with_defaults(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deep copy of `spec` with the schema's defaults filled in (API-server semantics)."""
    return dict(_default(copy.deepcopy(dict(spec or {})), schema()["properties"]["spec"]))


def _default(value: Any, node: Mapping[str, Any]) -> Any:
    if isinstance(value, dict):
        props = node.get("properties", {})
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
        for key, item in value.items():
            if key in props:
                value[key] = _default(item, props[key])
            elif isinstance(node.get("additionalProperties"), dict):
                value[key] = _default(item, node["additionalProperties"])
    elif isinstance(value, list) and "items" in node:
        return [_default(item, node["items"]) for item in value]
    return value
