"""The DocGenerator's status: pure functions from what was observed to what is reported.

Conditions follow the Kubernetes convention (metav1.Condition): a type, a
status True/False/Unknown, a CamelCase reason, a human message, the time the
status last changed, and the generation it describes.

- Ready: every desired pod is ready.
- Progressing: the Deployment is rolling out or scaling (False once complete).
- Degraded: something needs a person: the spec cannot be realised, a ConfigMap
  or Secret the pods mount is missing, the API server rejected or forbade a
  child, the Deployment reports a failure, or the kubelet cannot start the pods
  (an image it cannot pull, a Secret it cannot find: `pod_problem`).

Those three are the reconciler's. The autoscaler owns two more, as the HPA
reports them (`scaling_conditions`):

- AbleToScale: whether the autoscaler may change the replicas now (False while
  a scale-down waits out the stabilisation window or for pods' metrics).
- ScalingLimited: whether the wanted replicas were cut by minReplicas,
  maxReplicas or the bounded scale-up step.

Each writer applies its own conditions with server-side apply under its own
field manager (conditions is a list-map keyed by type), so neither erases the
other's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .objects import JSON
from .scaling import Decision

CONDITIONS = ("Ready", "Progressing", "Degraded")  # the reconciler's
SCALING_CONDITIONS = ("AbleToScale", "ScalingLimited")  # the autoscaler's


@dataclass(frozen=True)
class Problem:
    """Why the spec cannot be (fully) realised."""

    reason: str  # CamelCase: InvalidSpec, ReferenceNotFound, ChildRejected, ChildForbidden,
    # ImagePullFailed, ContainerConfigError, MountFailed
    message: str


# Waiting reasons of a container whose image the node cannot get (kubelet's images.go).
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def pod_problem(pods: Sequence[Mapping[str, Any]],
                mount_failures: Sequence[Mapping[str, Any]]) -> Problem | None:
    """Why the fleet's pods cannot start, as the kubelet reports it, or None.

    The Deployment never calls these a failure (its pods just stay Pending), so they
    are read where the kubelet puts them: a container waiting on an image it cannot
    pull, or on a Secret or ConfigMap key its environment names
    (CreateContainerConfigError); and a volume it cannot mount (a missing API-keys
    Secret), which shows only as a FailedMount event (`mount_failures`, the
    namespace's Warning events of that reason) on a pod that has not started.
    """
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cs in [*(status.get("initContainerStatuses") or []),
                   *(status.get("containerStatuses") or [])]:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason, message = waiting.get("reason"), waiting.get("message") or ""
            if reason in PULL_FAILURES:
                return Problem("ImagePullFailed", f"Pod {name} cannot get the image "
                               f"{cs.get('image')} of container {cs.get('name')}: "
                               f"{reason}: {message}".rstrip(": "))
            if reason == "CreateContainerConfigError":
                return Problem("ReferenceNotFound" if "not found" in message
                               else "ContainerConfigError",
                               f"Pod {name}, container {cs.get('name')}: {message}")
    waiting_pods = {p["metadata"].get("uid"): p["metadata"]["name"] for p in pods
                    if (p.get("status") or {}).get("phase", "Pending") == "Pending"}
    for event in mount_failures:
        uid = (event.get("involvedObject") or {}).get("uid")
        if uid in waiting_pods:
            message = str(event.get("message") or "")
            return Problem("ReferenceNotFound" if "not found" in message else "MountFailed",
                           f"Pod {waiting_pods[uid]}: {message}")
    return None


def _condition(type_: str, ok: bool, reason: str, message: str) -> JSON:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason,
            "message": message}


def _deployment_condition(deployment: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def conditions_for(
    *, desired: int, deployment: Mapping[str, Any] | None, problem: Problem | None
) -> list[JSON]:
    """Ready, Progressing and Degraded, without times (see `merge_conditions`)."""
    if problem is not None:
        ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
        return [
            _condition("Ready", False, problem.reason,
                       f"{problem.message} ({ready} of {desired} pods ready; existing pods, "
                       "if any, are kept)"),
            _condition("Progressing", False, problem.reason,
                       "Nothing is rolled out until the spec is fixed."),
            _condition("Degraded", True, problem.reason, problem.message),
        ]
    if deployment is None:
        return [
            _condition("Ready", False, "Creating", "The Deployment does not exist yet."),
            _condition("Progressing", True, "Creating", "Creating the Deployment."),
            _condition("Degraded", False, "AsExpected", "No problem found."),
        ]
    ready_ok, ready_reason, ready_message = _pods_ready(desired, deployment)
    progressing = _progressing(desired, deployment)
    failure = _deployment_condition(deployment, "ReplicaFailure")
    deadline = _deployment_condition(deployment, "Progressing")
    if failure.get("status") == "True":
        degraded = _condition("Degraded", True, "ReplicaFailure",
                              f"{failure.get('reason')}: {failure.get('message')}")
    elif deadline.get("reason") == "ProgressDeadlineExceeded":
        degraded = _condition("Degraded", True, "ProgressDeadlineExceeded",
                              str(deadline.get("message")))
    else:
        degraded = _condition("Degraded", False, "AsExpected", "No problem found.")
    return [_condition("Ready", ready_ok, ready_reason, ready_message), progressing, degraded]


def _pods_ready(desired: int, deployment: Mapping[str, Any] | None) -> tuple[bool, str, str]:
    status = (deployment or {}).get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    if deployment is not None and ready >= desired:
        return True, "AllReplicasReady", f"{ready} of {desired} pods ready."
    return False, "PodsNotReady", (f"{ready} of {desired} pods ready; waiting for the pods "
                                   "to be scheduled, started and to pass /readyz.")


def _progressing(desired: int, deployment: Mapping[str, Any]) -> JSON:
    status = deployment.get("status") or {}
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0) >= generation
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    deadline = _deployment_condition(deployment, "Progressing")
    if deadline.get("reason") == "ProgressDeadlineExceeded":
        return _condition("Progressing", False, "ProgressDeadlineExceeded",
                          str(deadline.get("message")))
    if observed and updated >= desired and available >= desired and total == desired:
        return _condition("Progressing", False, "RolloutComplete",
                          f"All {desired} pods run the current spec and are available.")
    return _condition(
        "Progressing", True, "RollingOut",
        f"{updated} of {desired} pods run the current spec, {available} available, "
        f"{total} in total.",
    )


_ABLE = {
    "ScaleDownStabilized": (True, "recent recommendations were higher than the current one: "
                                  "applying the highest recent recommendation"),
    "MissingPodMetrics": (False, "ready pods without metrics carry load nobody measured: "
                                 "no scale-down until every ready pod reports"),
}
_LIMITED = {
    "TooManyReplicas": "the desired replica count is more than maxReplicas",
    "TooFewReplicas": "the desired replica count is less than minReplicas",
    "ScaleUpLimit": "the desired replica count is increasing faster than the step bound "
                    "(x2 or +4 a period)",
}


def scaling_conditions(decision: Decision, *, current: int, failure: str = "") -> list[JSON]:
    """AbleToScale and ScalingLimited, as the HPA reports them, without times.

    failure: why setting the decided replicas failed (AbleToScale False, FailedUpdateScale).
    """
    if failure:
        able = _condition("AbleToScale", False, "FailedUpdateScale",
                          f"the replicas could not be set to {decision.replicas}: {failure}")
    elif decision.held is not None:
        ok, message = _ABLE[decision.held]
        able = _condition("AbleToScale", ok, decision.held, message)
    elif decision.replicas != current:
        able = _condition("AbleToScale", True, "SucceededRescale",
                          f"the autoscaler set the replicas to {decision.replicas}")
    else:
        able = _condition("AbleToScale", True, "ReadyForNewScale",
                          "recommended size matches current size")
    if decision.limited is not None:
        limited = _condition("ScalingLimited", True, decision.limited,
                             _LIMITED[decision.limited])
    else:
        limited = _condition("ScalingLimited", False, "DesiredWithinRange",
                             "the desired count is within the acceptable range")
    return [able, limited]


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[JSON], *, generation: int, now: str
) -> list[JSON]:
    """Stamp each condition; lastTransitionTime moves only when its status changes."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in current:
        old = before.get(cond["type"]) or {}
        since = old.get("lastTransitionTime") if old.get("status") == cond["status"] else None
        merged.append({**cond, "observedGeneration": generation,
                       "lastTransitionTime": since or now})
    return merged


def status_for(
    dg: Mapping[str, Any],
    *,
    desired: int,
    selector: str,
    spec_hash: str,
    deployment: Mapping[str, Any] | None,
    problem: Problem | None,
    now: str,
) -> JSON:
    """The operator's part of .status (metrics and scaling fields belong to the autoscaler)."""
    generation = int(dg["metadata"].get("generation") or 0)
    previous = (dg.get("status") or {}).get("conditions") or []
    dep_status = (deployment or {}).get("status") or {}
    return {
        "observedGeneration": generation,
        "replicas": int(dep_status.get("replicas") or 0),
        "readyReplicas": int(dep_status.get("readyReplicas") or 0),
        "updatedReplicas": int(dep_status.get("updatedReplicas") or 0),
        "desiredReplicas": desired,
        "selector": selector,
        "specHash": spec_hash,
        "conditions": merge_conditions(
            previous, conditions_for(desired=desired, deployment=deployment, problem=problem),
            generation=generation, now=now,
        ),
    }


def changed(current: Mapping[str, Any] | None, wanted: Mapping[str, Any],
            types: Sequence[str]) -> bool:
    """Whether applying `wanted` (one writer's part of .status, owning the condition `types`)
    would change anything."""
    current = current or {}
    ours = [c for c in current.get("conditions") or [] if c.get("type") in types]
    by_type = {c["type"]: c for c in ours}
    return any(current.get(k) != v for k, v in wanted.items() if k != "conditions") \
        or by_type != {c["type"]: c for c in wanted.get("conditions") or []}
