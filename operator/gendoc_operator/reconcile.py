"""Converging one DocGenerator: decide (validation.py, children.py, status.py), then do the I/O.

Every path that looks at a DocGenerator (create, update, resume, the resync
loop, an event on one of its children) calls `Reconciler.reconcile`, which is
safe to repeat: children are server-side applied (no read first: the apply
answers whether it created the object), the status is applied only when it
changes, and events are posted only for what actually happened.

Whatever stops a reconcile short (a spec that cannot be realised, a ConfigMap
or Secret the pods mount that is missing, a child the API server refuses or
forbids, pods the kubelet cannot start for want of an image or a Secret) is
reported the same way before the error goes on to kopf: the status
says it (Degraded True, with its reason; observedGeneration moves on) and a
Warning event on the DocGenerator says it once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from . import children, crd, validation
from .kubeapi import ApiError, Kube
from .objects import JSON, plain, timestamp
from .settings import OperatorSettings
from .status import CONDITIONS, Problem, changed, pod_problem, status_for

log = logging.getLogger(__name__)


class InvalidSpec(Exception):
    """The spec passed the schema but cannot be realised; retrying will not help."""


class Blocked(Exception):
    """Something outside the spec stops the reconcile (a missing ConfigMap, a 403); it may
    be fixed without touching the DocGenerator, so the reconcile is tried again later."""


def fleet(body: Mapping[str, Any]) -> JSON:
    """The DocGenerator as the operator reads it: plain JSON, its spec defaulted once.

    Items of a LIST and kopf's index values come without apiVersion and kind.
    """
    dg: JSON = plain(body)
    dg.setdefault("apiVersion", crd.API_VERSION)
    dg.setdefault("kind", crd.KIND)
    dg["spec"] = crd.with_defaults(dg.get("spec"))
    return dg


def _problem_of(kind: str, exc: ApiError) -> Problem | None:
    """The condition reason for an API error that stops the reconcile; None for a transient
    one (a conflict, a timeout, the server busy), which kopf simply retries."""
    if exc.rejected:
        return Problem("ChildRejected", f"The API server rejected the {kind}: {exc.message}")
    if exc.status == 403 and not exc.namespace_terminating:
        return Problem("ChildForbidden", f"The API server forbade the {kind}: {exc.message}")
    return None


class Reconciler:
    def __init__(self, kube: Kube, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self.defaults = children.Images(service=settings.default_service_image,
                                        converter=settings.default_converter_image)
        # The generation each child had after our last apply, by namespace, name and
        # kind: a different one after the next apply means it changed ("Updated"),
        # without reading it before. Empty after a restart: no event for that apply.
        self.generations: dict[tuple[str, str, str], object] = {}
        # One reconcile of a DocGenerator at a time (kopf's handler, the resync
        # and the child watches run in different threads), by uid.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def reconcile(self, dg: JSON, *, newest: Callable[[], JSON | None] | None = None) -> None:
        """Bring the children and the status in line with the spec (`dg` from `fleet`).

        newest: where to read the DocGenerator once this reconcile's turn has come
        (the index): a copy taken before waiting for another reconcile of the same
        one may be older than what that one wrote, and would write the older spec
        back. None when gone or being deleted: nothing to do.

        Raises InvalidSpec when the spec cannot be realised, Blocked when
        something outside it stops the reconcile (both reported in the status
        first), ApiError for anything the API server may accept on a later try.
        """
        with self._lock(str(dg["metadata"].get("uid"))):
            current = newest() if newest is not None else dg
            if current is not None and not current["metadata"].get("deletionTimestamp"):
                self._reconcile(current)

    def _lock(self, uid: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(uid, threading.Lock())

    def _reconcile(self, dg: JSON) -> None:
        found = validation.problems(dg["spec"], defaults=self.defaults)
        if found:
            self._fail(dg, Problem("InvalidSpec", "; ".join(found)), InvalidSpec)
        self._check_references(dg)
        deployment: JSON | None = None
        for child in children.children_for(dg, defaults=self.defaults):
            applied = self._apply(dg, child)
            if child["kind"] == "Deployment":
                deployment = applied
        problem = self._pod_problem(dg)
        self._report(dg, deployment=deployment, problem=problem)
        if problem is not None:
            raise Blocked(problem.message)

    def _pod_problem(self, dg: JSON) -> Problem | None:
        """What the kubelet says stops the fleet's pods (status.pod_problem)."""
        namespace = dg["metadata"]["namespace"]
        pods = self.kube.list_pods(namespace, children.selector_string(dg))
        if all((p.get("status") or {}).get("phase") == "Running" for p in pods):
            return None  # the common case: no events to read
        failures = self.kube.list_events(
            namespace, "involvedObject.kind=Pod,type=Warning,reason=FailedMount")
        return pod_problem(pods, failures)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """The DocGenerator is gone: what was kept about it is no longer needed."""
        for key in [k for k in self.generations if k[:2] == (namespace, name)]:
            del self.generations[key]
        with self._locks_lock:
            self._locks.pop(uid, None)

    def _check_references(self, dg: JSON) -> None:
        namespace = dg["metadata"]["namespace"]
        missing = [ref for ref in validation.references(dg["spec"])
                   if not self.kube.exists(ref.kind, namespace, ref.name)]
        if missing:
            message = "; ".join(f"{r.kind} {r.name} ({r.field}) does not exist in namespace "
                                f"{namespace}" for r in missing)
            self._fail(dg, Problem("ReferenceNotFound", message), Blocked)

    def _apply(self, dg: JSON, child: JSON) -> JSON:
        kind, name = child["kind"], child["metadata"]["name"]
        kopf.adopt(child, owner=dg)  # type: ignore[arg-type]  # a plain dict works
        try:
            applied = self.kube.apply(child)
        except ApiError as exc:
            problem = _problem_of(kind, exc)
            if problem is not None:
                self._fail(dg, problem, InvalidSpec if exc.rejected else Blocked)
            raise
        key = (dg["metadata"]["namespace"], name, kind)
        generation = (applied.body.get("metadata") or {}).get("generation")
        if applied.created:
            self._event(dg, "Normal", "Created", f"Created {kind} {name}.")
        elif self.generations.get(key, generation) != generation:
            self._event(dg, "Normal", "Updated",
                        f"Updated {kind} {name} to match the DocGenerator's spec.")
        self.generations[key] = generation
        return applied.body

    def _event(self, dg: JSON, type_: str, reason: str, message: str) -> None:
        """An Event on the DocGenerator: through kopf's poster inside a kopf handler,
        through the events API elsewhere (the resync loop), where kopf has no poster."""
        try:
            # kopf types its object as a Body; any mapping with metadata works.
            kopf.event(dg, type=type_, reason=reason,  # type: ignore[arg-type]
                       message=message)
        except LookupError:  # kopf's posting queue is a context variable of its handlers
            try:
                self.kube.post_event(dg, type=type_, reason=reason, message=message,
                                     component=self.settings.field_manager, now=timestamp())
            except ApiError as exc:
                if not exc.namespace_terminating:
                    log.warning("event %s on %s not posted: %s", reason,
                                dg["metadata"]["name"], exc)

    def _fail(self, dg: JSON, problem: Problem, error: type[Exception]) -> None:
        """Report `problem` (status and event), then stop the reconcile with `error`."""
        meta = dg["metadata"]
        # The one read left: the pods kept running are counted in the status.
        deployment = self.kube.read("Deployment", meta["namespace"], meta["name"])
        self._report(dg, deployment=deployment, problem=problem)
        raise error(problem.message)

    def _report(self, dg: JSON, *, deployment: JSON | None, problem: Problem | None) -> None:
        """Apply the status if it changed; post an event for each condition that flipped."""
        spec, meta = dg["spec"], dg["metadata"]
        wanted = status_for(
            dg, desired=children.clamped_replicas(spec), selector=children.selector_string(dg),
            spec_hash=children.spec_hash(spec), deployment=deployment, problem=problem,
            now=timestamp(),
        )
        current = dg.get("status") or {}
        if not changed(current, wanted, CONDITIONS):
            return
        self.kube.apply_docgenerator_status(meta["namespace"], meta["name"], wanted,
                                            manager=self.settings.field_manager)
        before = {c.get("type"): c for c in current.get("conditions") or []}
        for cond in wanted["conditions"]:
            old = before.get(cond["type"]) or {}
            if (old.get("status"), old.get("reason")) == (cond["status"], cond["reason"]):
                continue
            message = f"{cond['type']} is {cond['status']}: {cond['message']}"
            if cond["type"] == "Degraded" and cond["status"] == "True":
                self._event(dg, "Warning", cond["reason"], message)
            elif cond["type"] == "Ready" and cond["status"] == "True":
                self._event(dg, "Normal", cond["reason"], message)
        log.debug("status of %s/%s written", meta["namespace"], meta["name"])
