"""The autoscaler: collect (collector.py), decide (scaling.py), apply, report.

One task for the whole operator, like the resync loop and for the same reason:
kopf puts a finalizer on every object that has a timer or daemon, and a
finalizer makes deleting a DocGenerator wait for a running operator. Every
TICK it takes the DocGenerators kopf's index holds, and for each whose
`spec.autoscaling.enabled` is true and whose `periodSeconds` have passed since
its last round: lists its pods, scrapes the ready ones, asks
`desired_replicas`, sets the replicas through the scale subresource when they
change (the reconcile then applies them to the Deployment, clamped), writes
`status.metrics`, `status.scaleReason` and `status.lastScaleTime`, and posts a
`ScaledUp`/`ScaledDown` Event. Disabled: nothing is read or written, and what
the autoscaler remembered of that fleet is dropped (`kubectl scale` rules).

What is remembered per fleet (in memory; a restart starts afresh, which
scaling.py treats conservatively): each pod's last scrape and the decision
history (recent recommendations, the learned capacity, the last scale time).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import children, collector, crd
from .collector import Collection, ScrapeMemory
from .kubeapi import ApiError, Kube
from .scaling import Decision, History, Policy, Target, desired_replicas
from .settings import OperatorSettings

log = logging.getLogger(__name__)

JSON = dict[str, Any]
TICK = 1.0  # seconds between looks for a due fleet: periodSeconds is at least 1
EVENT_COMPONENT = "gendoc-autoscaler"
# Written once when autoscaling is switched off, so no stale decision is shown.
DISABLED_STATUS: JSON = {
    "scaleReason": "autoscaling disabled: spec.replicas (kubectl scale) decides",
    "metrics": None,
}


def target_for(spec: Mapping[str, Any]) -> Target:
    t = spec["target"]
    capacity = t.get("capacityPerPodPerMinute")
    return Target(p95_seconds=float(t["p95LatencySeconds"]),
                  max_queue_per_pod=float(t["maxQueuePerPod"]),
                  requests_per_minute=float(t["requestsPerMinute"]),
                  capacity_per_pod_rpm=float(capacity) if capacity else None)


def policy_for(spec: Mapping[str, Any]) -> Policy:
    a = spec["autoscaling"]
    return Policy(min_replicas=int(spec["minReplicas"]), max_replicas=int(spec["maxReplicas"]),
                  tolerance=float(a["tolerance"]),
                  scale_down_window_seconds=float(a["scaleDownStabilizationSeconds"]))


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def metrics_status(collection: Collection, decision: Decision, collected_at: str) -> JSON:
    """status.metrics: what the decision saw (None removes a field: JSON merge patch)."""
    m = collection.fleet
    capacity = decision.capacity_rps
    return {
        "collectedAt": collected_at,
        "requestsPerMinute": _round(m.arrival_rps * 60, 1) if m else None,
        "completionsPerMinute": _round(m.completion_rps * 60, 1) if m else None,
        "rejectionsPerMinute": _round(m.rejection_rps * 60, 1) if m else None,
        "p95LatencySeconds": _round(m.p95_seconds, 3) if m else None,
        "queueDepth": round(m.queue) if m else None,
        "inflight": round(m.inflight) if m else None,
        "capacityPerPodPerMinute": _round(capacity * 60, 1) if capacity and m else None,
        "capacitySource": decision.capacity_source if m else None,
        "podsMeasured": collection.measured,
        "podsWithoutMetrics": collection.without_metrics,
        "podsNotReady": collection.not_ready,
    }


def status_patch(collection: Collection, decision: Decision, *, scaled: bool, now: str) -> JSON:
    patch: JSON = {"scaleReason": decision.reason,
                   "metrics": metrics_status(collection, decision, now)}
    if scaled:
        patch["lastScaleTime"] = now
    return patch


def _wall() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FleetState:
    """What the autoscaler remembers of one DocGenerator between rounds."""

    memory: ScrapeMemory = field(default_factory=ScrapeMemory)
    history: History = field(default_factory=History)
    due: float = 0.0  # monotonic time of the next round


def enabled(dg: Mapping[str, Any]) -> bool:
    return bool(crd.with_defaults(dg.get("spec"))["autoscaling"]["enabled"]) \
        and not dg["metadata"].get("deletionTimestamp")


class Autoscaler:
    def __init__(self, kube: Kube, settings: OperatorSettings, http: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], str] = _wall) -> None:
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
                period = crd.with_defaults(dg["spec"])["autoscaling"]["periodSeconds"]
                state.due = now + float(period)
                due.append(self._guarded(dg, state))
        await asyncio.gather(*due)

    async def _guarded(self, dg: Mapping[str, Any], state: FleetState | None) -> None:
        """A round for one fleet (state None: its autoscaling was just switched off)."""
        meta = dg["metadata"]
        try:
            if state is None:
                await asyncio.to_thread(self.kube.patch_docgenerator_status, meta["namespace"],
                                        meta["name"], DISABLED_STATUS)
            else:
                await self.step(dg, state)
        except ApiError as exc:
            if exc.status == 404 or exc.namespace_terminating:
                return  # gone or going: the index drops it soon
            log.warning("autoscaling %s/%s: %s", meta["namespace"], meta["name"], exc)
        except Exception:
            log.exception("autoscaling %s/%s failed", meta["namespace"], meta["name"])

    async def step(self, dg: Mapping[str, Any], state: FleetState) -> Decision:
        """One round for one fleet: collect, decide, apply, report."""
        meta = dg["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        spec = crd.with_defaults(dg["spec"])
        pods = await asyncio.to_thread(self.kube.list_pods, namespace,
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
        scaled = decision.replicas != current
        if scaled:
            await asyncio.to_thread(self.kube.scale_docgenerator, namespace, name,
                                    decision.replicas)
            log.info("%s/%s: %s", namespace, name, decision.reason)
        stamp = self.wall()
        await asyncio.to_thread(self.kube.patch_docgenerator_status, namespace, name,
                                status_patch(collection, decision, scaled=scaled, now=stamp))
        if scaled:
            obj = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, **dg}
            reason = "ScaledUp" if decision.replicas > current else "ScaledDown"
            await asyncio.to_thread(self.kube.post_event, obj, type="Normal", reason=reason,
                                    message=decision.reason, component=EVENT_COMPONENT,
                                    now=stamp)
        return decision
