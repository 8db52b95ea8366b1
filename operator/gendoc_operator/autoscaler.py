"""The autoscaler: collect (collector.py), decide (scaling.py), apply, report.

One task for the whole operator, like the resync loop and for the same reason:
kopf puts a finalizer on every object that has a timer or daemon, and a
finalizer makes deleting a DocGenerator wait for a running operator. Every
TICK it takes the DocGenerators kopf's index holds, and for each whose
`spec.autoscaling.enabled` is true and whose `periodSeconds` have passed since
its last round: lists its pods, scrapes the ready ones, asks
`desired_replicas`, sets the replicas through the scale subresource when they
change (the reconcile then applies them to the Deployment, clamped), applies
its part of the status (`metrics`, `scaleReason`, `lastScaleTime` and the
conditions AbleToScale and ScalingLimited, under its own field manager), and
posts a `ScaledUp`/`ScaledDown` Event. Disabled: its part of the status shrinks
to a `scaleReason` saying so, nothing else is read or written, and what the
autoscaler remembered of that fleet is dropped (`kubectl scale` rules).

The index holds each DocGenerator with its spec already defaulted
(reconcile.fleet), so a round defaults nothing.

What is remembered per fleet (in memory; a restart starts afresh, which
scaling.py treats conservatively): each pod's last scrape and the decision
history (recent recommendations, the learned capacity, the last scale time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import children, collector
from .collector import Collection, ScrapeMemory
from .kubeapi import ApiError, Kube
from .objects import JSON, timestamp
from .scaling import Decision, History, Policy, Target, desired_replicas
from .settings import OperatorSettings
from .status import merge_conditions, scaling_conditions

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between looks for a due fleet: periodSeconds is at least 1
# The field manager of the autoscaler's part of the status, and its events' component.
MANAGER = "gendoc-autoscaler"
# Applied once when autoscaling is switched off: the autoscaler's other status
# fields (metrics, conditions) go, so no stale decision is shown.
DISABLED_STATUS: JSON = {
    "scaleReason": "autoscaling disabled: spec.replicas (kubectl scale) decides",
}


def target_for(spec: Mapping[str, Any]) -> Target:
    t = spec["target"]
    capacity = t.get("capacityPerPodPerMinute")
    return Target(p95_seconds=float(t["p95LatencySeconds"]),
                  max_queue_per_pod=float(t["maxQueuePerPod"]),
                  requests_per_minute=float(t["requestsPerMinute"]),
                  capacity_per_pod_rpm=float(capacity) if capacity else None,
                  max_job_age_seconds=float(t["maxJobAgeSeconds"]))


def policy_for(spec: Mapping[str, Any]) -> Policy:
    a = spec["autoscaling"]
    return Policy(min_replicas=int(spec["minReplicas"]), max_replicas=int(spec["maxReplicas"]),
                  tolerance=float(a["tolerance"]),
                  scale_down_window_seconds=float(a["scaleDownStabilizationSeconds"]))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def metrics_status(collection: Collection, decision: Decision, collected_at: str) -> JSON:
    """status.metrics: what the decision saw (a field not measured is left out)."""
    m = collection.fleet
    capacity = decision.capacity_rps
    fields = {
        "collectedAt": collected_at,
        "requestsPerMinute": _round(m.arrival_rps * 60, 1) if m else None,
        "completionsPerMinute": _round(m.completion_rps * 60, 1) if m else None,
        "rejectionsPerMinute": _round(m.rejection_rps * 60, 1) if m else None,
        "p95LatencySeconds": _round(m.p95_seconds, 3) if m else None,
        "queueDepth": round(m.queue) if m else None,
        "inflight": round(m.inflight) if m else None,
        "jobsBacklog": round(m.backlog) if m and m.backlog is not None else None,
        "oldestJobSeconds": _round(m.oldest_seconds, 1) if m else None,
        "capacityPerPodPerMinute": _round(capacity * 60, 1) if capacity and m else None,
        "capacitySource": decision.capacity_source if m else None,
        "podsMeasured": collection.measured,
        "podsWithoutMetrics": collection.without_metrics,
        "podsNotReady": collection.not_ready,
    }
    return {k: v for k, v in fields.items() if v is not None}


def status_patch(dg: Mapping[str, Any], collection: Collection, decision: Decision, *,
                 current: int, now: str, failure: str = "") -> JSON:
    """The autoscaler's whole part of the status, applied as one (what it leaves out goes).

    failure: why setting the replicas failed, if it did.
    """
    status = dg.get("status") or {}
    scaled = decision.replicas != current and not failure
    patch: JSON = {
        "scaleReason": decision.reason,
        "metrics": metrics_status(collection, decision, now),
        "conditions": merge_conditions(
            status.get("conditions") or [],
            scaling_conditions(decision, current=current, failure=failure),
            generation=int(dg["metadata"].get("generation") or 0), now=now),
    }
    last = now if scaled else status.get("lastScaleTime")
    if last:
        patch["lastScaleTime"] = last
    return patch


@dataclass
class FleetState:
    """What the autoscaler remembers of one DocGenerator between rounds."""

    memory: ScrapeMemory = field(default_factory=ScrapeMemory)
    history: History = field(default_factory=History)
    due: float = 0.0  # monotonic time of the next round


def enabled(dg: Mapping[str, Any]) -> bool:
    """`dg` from the index: its spec is defaulted."""
    return bool(dg["spec"]["autoscaling"]["enabled"]) \
        and not dg["metadata"].get("deletionTimestamp")


class Autoscaler:
    def __init__(self, kube: Kube, settings: OperatorSettings, http: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], str] = timestamp) -> None:
        self.kube, self.settings, self.http = kube, settings, http
        self.clock, self.wall = clock, wall
        self.fleets: dict[str, FleetState] = {}  # by DocGenerator uid

    async def run(self, docgenerators: Callable[[], Iterable[Mapping[str, Any]]],
                  stop: asyncio.Event) -> None:
        """Until `stop`: every TICK, a round for each fleet that is due."""
        while not stop.is_set():
            await self.round(list(docgenerators()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=TICK)

    async def round(self, dgs: list[Mapping[str, Any]]) -> None:
        now = self.clock()
        wanted = {dg["metadata"]["uid"]: dg for dg in dgs if enabled(dg)}
        present = {dg["metadata"]["uid"]: dg for dg in dgs}
        due = []
        for uid in set(self.fleets) - set(wanted):
            del self.fleets[uid]  # deleted or disabled: a fresh start if it comes back
            if uid in present and not present[uid]["metadata"].get("deletionTimestamp"):
                due.append(self._guarded(present[uid], None))  # just disabled: say so
        for uid, dg in wanted.items():
            state = self.fleets.setdefault(uid, FleetState())
            if state.due <= now:
                state.due = now + float(dg["spec"]["autoscaling"]["periodSeconds"])
                due.append(self._guarded(dg, state))
        await asyncio.gather(*due)

    async def _guarded(self, dg: Mapping[str, Any], state: FleetState | None) -> None:
        """A round for one fleet (state None: its autoscaling was just switched off)."""
        meta = dg["metadata"]
        try:
            if state is None:
                await asyncio.to_thread(self._apply_status, dg, DISABLED_STATUS)
            else:
                await self.step(dg, state)
        except ApiError as exc:
            if exc.status == 404 or exc.namespace_terminating:
                return  # gone or going: the index drops it soon
            log.warning("autoscaling %s/%s: %s", meta["namespace"], meta["name"], exc)
        except Exception:
            log.exception("autoscaling %s/%s failed", meta["namespace"], meta["name"])

    def _apply_status(self, dg: Mapping[str, Any], status: JSON) -> None:
        meta = dg["metadata"]
        self.kube.apply_docgenerator_status(meta["namespace"], meta["name"], status,
                                            manager=MANAGER)

    async def step(self, dg: Mapping[str, Any], state: FleetState) -> Decision:
        """One round for one fleet: collect, decide, apply, report."""
        spec = dg["spec"]
        pods = await asyncio.to_thread(self.kube.list_pods, dg["metadata"]["namespace"],
                                       children.selector_string(dg))
        seen = collector.census(pods, port=children.SERVICE_PORT)
        now = self.clock()
        scrapes = await collector.scrape(self.http, seen.ready, self.settings.scrape_timeout)
        collection = state.memory.update(seen, scrapes, now)
        current = children.clamped_replicas(spec)
        decision = desired_replicas(
            current, collection.fleet, target_for(spec), policy_for(spec), state.history, now,
            pods_without_metrics=collection.without_metrics,
            pods_not_ready=collection.not_ready)
        state.history = decision.history
        failure = await self._scale(dg, current, decision)
        stamp = self.wall()
        await asyncio.to_thread(self._apply_status, dg, status_patch(
            dg, collection, decision, current=current, now=stamp, failure=failure))
        if decision.replicas != current and not failure:
            reason = "ScaledUp" if decision.replicas > current else "ScaledDown"
            await asyncio.to_thread(self.kube.post_event, dg, type="Normal", reason=reason,
                                    message=decision.reason, component=MANAGER, now=stamp)
        return decision

    async def _scale(self, dg: Mapping[str, Any], current: int, decision: Decision) -> str:
        """Set the decided replicas if they changed; why that failed, or "" (also unchanged)."""
        if decision.replicas == current:
            return ""
        meta = dg["metadata"]
        try:
            await asyncio.to_thread(self.kube.scale_docgenerator, meta["namespace"],
                                    meta["name"], decision.replicas)
        except ApiError as exc:
            if exc.status == 404 or exc.namespace_terminating:
                raise  # gone or going: nothing to report on
            log.warning("%s/%s: cannot scale to %d: %s", meta["namespace"], meta["name"],
                        decision.replicas, exc)
            return f"{exc.status} {exc.reason}: {exc.message}"
        log.info("%s/%s: %s", meta["namespace"], meta["name"], decision.reason)
        return ""
