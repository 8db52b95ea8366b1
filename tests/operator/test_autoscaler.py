"""The autoscaler's wiring without a cluster: spec -> Target/Policy, status, schedule."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from gendoc_operator import crd
from gendoc_operator.autoscaler import Autoscaler, policy_for, status_patch, target_for
from gendoc_operator.collector import Collection
from gendoc_operator.reconcile import fleet
from gendoc_operator.scaling import Decision, FleetMetrics
from gendoc_operator.settings import OperatorSettings


def test_spec_to_target_and_policy() -> None:
    spec = crd.with_defaults({"minReplicas": 2, "maxReplicas": 6,
                              "target": {"capacityPerPodPerMinute": 120},
                              "autoscaling": {"scaleDownStabilizationSeconds": 60}})
    t = target_for(spec)
    assert (t.requests_per_minute, t.p95_seconds, t.max_queue_per_pod,
            t.capacity_per_pod_rpm) == (300, 2, 4, 120)
    p = policy_for(spec)
    assert (p.min_replicas, p.max_replicas, p.tolerance, p.scale_down_window_seconds) == (
        2, 6, 0.1, 60)
    assert target_for(crd.with_defaults({})).capacity_per_pod_rpm is None  # measured


def test_status_says_what_the_decision_saw() -> None:
    fleet = FleetMetrics(pods=2, arrival_rps=4.0, completion_rps=3.5, rejection_rps=0.5,
                         p95_seconds=0.4321, queue=3, inflight=6)
    decision = Decision(3, "scale up 2->3 by the rate rule: ...", capacity_rps=2.0,
                        capacity_source="measured")
    before = {"metadata": {"generation": 4}, "status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "PodsNotReady", "message": "",
         "lastTransitionTime": "T0"}]}}
    patch = status_patch(before, Collection(fleet, 2, 1, 4), decision, current=2,
                         now="2026-11-24T10:00:00Z")
    assert patch["scaleReason"].startswith("scale up 2->3")
    assert patch["lastScaleTime"] == "2026-11-24T10:00:00Z"
    assert patch["metrics"] == {
        "collectedAt": "2026-11-24T10:00:00Z", "requestsPerMinute": 240.0,
        "completionsPerMinute": 210.0, "rejectionsPerMinute": 30.0, "p95LatencySeconds": 0.432,
        "queueDepth": 3, "inflight": 6, "capacityPerPodPerMinute": 120.0,
        "capacitySource": "measured", "podsMeasured": 2, "podsWithoutMetrics": 1,
        "podsNotReady": 4}
    # Only the autoscaler's own conditions: the reconciler's are applied by the reconciler.
    assert [(c["type"], c["status"], c["reason"], c["observedGeneration"])
            for c in patch["conditions"]] == [
        ("AbleToScale", "True", "SucceededRescale", 4),
        ("ScalingLimited", "False", "DesiredWithinRange", 4)]
    # No metrics: the measured fields are left out (the apply removes them), and the
    # last scale time is carried over when nothing changed.
    held = status_patch({"metadata": {}, "status": {"lastScaleTime": "T9"}},
                        Collection(None, 0, 2, 0), Decision(2, "no pod reported metrics"),
                        current=2, now="t")
    assert held["lastScaleTime"] == "T9"
    assert "requestsPerMinute" not in held["metrics"]
    assert "capacitySource" not in held["metrics"]
    assert held["metrics"]["podsWithoutMetrics"] == 2
    assert "lastScaleTime" not in status_patch(
        {"metadata": {}}, Collection(None, 0, 2, 0), Decision(2, "held"), current=2, now="t")
    # A scale that failed is no scale: AbleToScale says why.
    failed = status_patch(before, Collection(fleet, 2, 1, 4), decision, current=2, now="t",
                          failure="403 Forbidden: no")
    assert "lastScaleTime" not in failed
    assert failed["conditions"][0]["reason"] == "FailedUpdateScale"


class RecordingKube:
    """The few calls the autoscaler makes, recorded (the Kubernetes tier runs the real ones)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_pods", (namespace, selector)))
        return []

    def apply_docgenerator_status(self, namespace: str, name: str, status: Any, *,
                                  manager: str) -> dict[str, Any]:
        assert manager == "gendoc-autoscaler"
        self.calls.append(("status", (name, status)))
        return {}

    def scale_docgenerator(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("scale", args))
        return {}

    def post_event(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("event", kwargs))
        return {}


def dg(name: str, **spec: Any) -> dict[str, Any]:
    """As the index holds it (reconcile.fleet): the spec defaulted."""
    return fleet({"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
                  "spec": spec})


def test_each_enabled_fleet_is_handled_once_per_period() -> None:
    kube = RecordingKube()
    now = [100.0]
    fleets = [dg("fast", replicas=2, autoscaling={"periodSeconds": 5}),
              dg("slow", autoscaling={"periodSeconds": 15}),
              dg("off", autoscaling={"enabled": False})]

    async def run() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            scaler = Autoscaler(kube, OperatorSettings(), http,  # type: ignore[arg-type]
                                clock=lambda: now[0], wall=lambda: "t")
            for t in (100.0, 101.0, 105.0, 115.0):
                now[0] = t
                await scaler.round(fleets)
            assert set(scaler.fleets) == {"uid-fast", "uid-slow"}
            await scaler.round(fleets[:1])  # "slow" deleted: forgotten
            assert set(scaler.fleets) == {"uid-fast"}

    asyncio.run(run())
    listed = [args[1] for call, args in kube.calls if call == "list_pods"]
    assert listed.count("app.kubernetes.io/component=docgenerator,"
                        "app.kubernetes.io/instance=fast,app.kubernetes.io/name=gendoc") == 3
    assert sum("instance=slow" in s for s in listed) == 2
    assert not any("instance=off" in s for s in listed)
    # No pod has metrics: the fleet is held, the status says so, nothing is scaled.
    statuses = [args[1] for call, args in kube.calls if call == "status"]
    assert statuses[0]["scaleReason"] == "no pod reported metrics: holding 2"
    assert not [c for c, _ in kube.calls if c in ("scale", "event")]


def test_switching_autoscaling_off_says_so_once() -> None:
    kube = RecordingKube()
    fleet = dg("fleet", autoscaling={"periodSeconds": 5})
    off = dg("fleet", autoscaling={"enabled": False})

    async def run() -> None:
        async with httpx.AsyncClient(trust_env=False) as http:
            scaler = Autoscaler(kube, OperatorSettings(), http,  # type: ignore[arg-type]
                                clock=lambda: 0.0, wall=lambda: "t")
            await scaler.round([fleet])
            await scaler.round([off])
            await scaler.round([off])

    asyncio.run(run())
    statuses = [args[1] for call, args in kube.calls if call == "status"]
    assert len(statuses) == 2
    # Only the reason: the apply removes the autoscaler's metrics and conditions.
    assert statuses[1] == {"scaleReason": "autoscaling disabled: spec.replicas (kubectl scale) "
                                          "decides"}
