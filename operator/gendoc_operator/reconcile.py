"""Converging one DocGenerator: decide (children.py, status.py), then do the I/O.

Every path that looks at a DocGenerator (create, update, resume, the resync
timer, an event on one of its children) calls `Reconciler.reconcile`, which is
safe to repeat: children are server-side applied, the status is written only
when it changes, and events are posted only for what actually happened.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from . import children, crd
from .kubeapi import ApiError, Kube
from .settings import OperatorSettings
from .status import Problem, changed, status_for

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def plain(value: Any) -> Any:
    """A kopf Body (nested read-only views) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(obj: Mapping[str, Any]) -> object:
    """What changes when the object's desired state changes (not its status)."""
    meta = obj.get("metadata") or {}
    return meta.get("generation") or meta.get("resourceVersion")


class InvalidSpec(Exception):
    """The spec passed the schema but cannot be realised; retrying will not help."""


class Reconciler:
    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self.defaults = children.Images(service=settings.default_service_image,
                                        converter=settings.default_converter_image)

    def reconcile(self, body: Mapping[str, Any]) -> None:
        """Bring the children and the status in line with the spec.

        Raises InvalidSpec (after reporting it in the status) when the spec
        cannot be realised, ApiError for anything the API server may accept
        on a later try.
        """
        dg = plain(body)
        dg.setdefault("apiVersion", crd.API_VERSION)  # items of a LIST come without them
        dg.setdefault("kind", crd.KIND)
        dg["spec"] = crd.with_defaults(dg.get("spec"))
        meta = dg["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        found = children.problems(dg["spec"], defaults=self.defaults)
        if found:
            self._fail(dg, Problem("InvalidSpec", "; ".join(found)))

        deployment: JSON | None = None
        for child in children.children_for(dg, defaults=self.defaults):
            kopf.adopt(child, owner=dg)  # type: ignore[arg-type]  # a plain dict works
            kind = child["kind"]
            before = self.kube.read(kind, namespace, name)
            try:
                after = self.kube.apply(child)
            except ApiError as exc:
                if exc.rejected:
                    self._fail(dg, Problem(
                        "ChildRejected", f"The API server rejected the {kind}: {exc.message}"))
                raise
            if before is None:
                self._event(dg, "Normal", "Created", f"Created {kind} {name}.")
            elif _version(before) != _version(after):
                self._event(dg, "Normal", "Updated",
                            f"Updated {kind} {name} to match the DocGenerator's spec.")
            if kind == "Deployment":
                deployment = after
        self._report(dg, deployment=deployment, problem=None)

    def _event(self, dg: JSON, type_: str, reason: str, message: str) -> None:
        """An Event on the DocGenerator: through kopf's poster inside a kopf handler,
        through the events API elsewhere (the resync loop), where kopf has no poster."""
        try:
            kopf.event(dg, type=type_, reason=reason, message=message)
        except LookupError:  # kopf's posting queue is a context variable of its handlers
            try:
                self.kube.post_event(dg, type=type_, reason=reason, message=message,
                                     component=self.settings.field_manager, now=_now())
            except ApiError as exc:
                if not exc.namespace_terminating:
                    log.warning("event %s on %s not posted: %s", reason,
                                dg["metadata"]["name"], exc)

    def _fail(self, dg: JSON, problem: Problem) -> None:
        meta = dg["metadata"]
        deployment = self.kube.read("Deployment", meta["namespace"], meta["name"])
        self._report(dg, deployment=deployment, problem=problem)
        raise InvalidSpec(problem.message)

    def _report(self, dg: JSON, *, deployment: JSON | None, problem: Problem | None) -> None:
        """Write the status if it changed; post an event for each condition that flipped."""
        spec, meta = dg["spec"], dg["metadata"]
        wanted = status_for(
            dg, desired=children.clamped_replicas(spec), selector=children.selector_string(dg),
            spec_hash=children.spec_hash(spec), deployment=deployment, problem=problem,
            now=_now(),
        )
        current = dg.get("status") or {}
        if not changed(current, wanted):
            return
        self.kube.patch_docgenerator_status(meta["namespace"], meta["name"], wanted)
        before = {c.get("type"): c.get("status") for c in current.get("conditions") or []}
        for cond in wanted["conditions"]:
            if before.get(cond["type"]) == cond["status"]:
                continue
            message = f"{cond['type']} is {cond['status']}: {cond['message']}"
            if cond["type"] == "Degraded" and cond["status"] == "True":
                self._event(dg, "Warning", cond["reason"], message)
            elif cond["type"] == "Ready" and cond["status"] == "True":
                self._event(dg, "Normal", cond["reason"], message)
        log.debug("status of %s/%s written", meta["namespace"], meta["name"])
