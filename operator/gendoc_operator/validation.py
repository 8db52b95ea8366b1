"""What a schema-valid spec still cannot become: pure checks, as dask-kubernetes'
operator/validation.py keeps them apart from building the children.

The CRD's OpenAPI schema and CEL rules refuse what one field can tell on its own;
what needs two fields (a request above its limit), the operator's settings (a
default image), data the schema cannot hold (Babel's locales, the IANA time
zones) or other objects (a ConfigMap the pods would mount) is named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gendoc_service.formatting import canonical_locale, check_timezone
from kubernetes.utils.quantity import parse_quantity

from .children import Images, endpoint, images_for, object_store


@dataclass(frozen=True)
class Reference:
    """An object in the DocGenerator's namespace its pods cannot start without."""

    kind: str  # ConfigMap
    name: str
    field: str  # where the spec names it, for the message


def problems(spec: Mapping[str, Any], *, defaults: Images) -> list[str]:
    """Reasons this (schema-valid, defaulted) spec cannot become pods; empty when it can."""
    found: list[str] = []
    images = images_for(spec, defaults)
    if not images.service:
        found.append("images.service is empty and the operator has no default service image")
    if not images.converter and not spec["converter"].get("gotenberg"):
        found.append("images.converter is empty and the operator has no default converter image")
    # The service's own checks (Babel's locales, the IANA zones it has): a value they
    # refuse would stop every pod at start-up, so it is refused here instead.
    for field, check in (("locale", canonical_locale), ("timezone", check_timezone)):
        value = spec["service"].get(field)
        if value:
            try:
                check(value)
            except ValueError as exc:
                found.append(f"service.{field}: {exc}")
    if (store := object_store(spec)) is not None:
        # The CRD's url() takes any digits as a port; the NetworkPolicy needs 1-65535.
        try:
            endpoint(str(store["endpoint"]))
        except ValueError as exc:
            found.append(f"templates.objectStore.endpoint: {exc}")
    for container, rr in (spec.get("resources") or {}).items():
        requests, limits = rr.get("requests") or {}, rr.get("limits") or {}
        for resource, limit in limits.items():
            if resource in requests and _quantity(requests[resource]) > _quantity(limit):
                found.append(f"resources.{container}: requests.{resource} {requests[resource]} "
                             f"exceeds limits.{resource} {limit}")
    return found


def references(spec: Mapping[str, Any]) -> list[Reference]:
    """The ConfigMaps the pods mount (not optional): a missing one keeps every pod in
    ContainerCreating, which the Deployment never reports as a failure.

    The API-keys Secret is mounted the same way but not checked: reading a Secret
    means being able to read its keys, and the operator holds no right on Secrets
    (docs/operator.md, "Permissions").
    """
    return [Reference("ConfigMap", cm["name"], f"templates.configMaps[{i}].name")
            for i, cm in enumerate((spec.get("templates") or {}).get("configMaps") or [])]


def _quantity(value: object) -> Decimal:
    return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]  # untyped library
