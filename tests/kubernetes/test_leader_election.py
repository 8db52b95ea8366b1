"""Two `gendoc operator` processes, one Lease: only the leader writes; kill -9 it and the
other takes over within 15 s (docs/operator.md, "Leader election").

Both run as the chart's ServiceAccount (its RBAC for the Lease is what is tested) and
watch only this test's namespace; each writes under a field manager of its own, so the
managedFields of what they write say which one wrote. This file needs no session
operator, so it runs before that one starts (conftest orders it) and the two never
meet it.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import time
from pathlib import Path
from typing import Any

import kopf
import kubernetes.config
import pytest
from gendoc_operator import crd, main
from gendoc_operator.kubeapi import Kube
from gendoc_operator.settings import OperatorSettings
from kubernetes.config import kube_config

from gendoc.procs import GendocProcess, free_port, spawn_gendoc

Cluster = Any  # tests/kubernetes/conftest.py's Cluster
LEASE_NAMESPACE, LEASE_NAME = "gendoc-system", "gendoc-operator"  # the chart's, release gendoc


def _start(cluster: Cluster, namespace: str, manager: str, kubeconfig: Path,
           log: Path) -> GendocProcess:
    port = free_port()
    return spawn_gendoc(["operator"], port, "/healthz", log=log, timeout=60, env={
        "KUBECONFIG": str(kubeconfig),
        "GENDOC_OPERATOR_NAMESPACES": namespace,
        "GENDOC_OPERATOR_HEALTH_HOST": "127.0.0.1",
        "GENDOC_OPERATOR_HEALTH_PORT": str(port),
        "GENDOC_OPERATOR_RESYNC_SECONDS": "2",
        "GENDOC_OPERATOR_FIELD_MANAGER": manager,
        "GENDOC_OPERATOR_LEASE_NAMESPACE": LEASE_NAMESPACE,
        "GENDOC_OPERATOR_LEASE_NAME": LEASE_NAME,
        "GENDOC_OPERATOR_DEFAULT_SERVICE_IMAGE": "gendoc-service:test",
        "GENDOC_OPERATOR_DEFAULT_CONVERTER_IMAGE": "gendoc-converter:test",
    })


def _lease(cluster: Cluster) -> dict[str, Any]:
    return dict((cluster.get("lease", LEASE_NAME, LEASE_NAMESPACE) or {}).get("spec") or {})


def _managers(cluster: Cluster, kind: str, name: str, namespace: str) -> set[str]:
    """The field managers that server-side applied to the object (kubectl hides them
    unless asked)."""
    obj = json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json",
                                     "--show-managed-fields"))
    return {m["manager"] for m in obj["metadata"].get("managedFields") or []
            if m["operation"] == "Apply"}


def _seconds(micro_time: str) -> float:
    return datetime.datetime.strptime(micro_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.UTC).timestamp()


def test_only_the_leader_writes_and_the_other_takes_over(
        cluster: Cluster, operator_kubeconfig: Path, namespace: str,
        tmp_path: Path) -> None:
    kubeconfig = operator_kubeconfig
    cluster.kubectl("delete", "lease", LEASE_NAME, "-n", LEASE_NAMESPACE, "--ignore-not-found")
    a = _start(cluster, namespace, "op-a", kubeconfig, tmp_path / "a.log")
    procs = [a]
    try:
        cluster.wait_for(lambda: "holds Lease" in a.logs(), "operator a leads")
        b = _start(cluster, namespace, "op-b", kubeconfig, tmp_path / "b.log")
        procs.append(b)
        cluster.wait_for(lambda: "waits for Lease" in b.logs(), "operator b stands by")
        leader = _lease(cluster)["holderIdentity"]

        cluster.apply({"apiVersion": crd.API_VERSION, "kind": crd.KIND,
                       "metadata": {"name": "fleet", "namespace": namespace},
                       "spec": {"replicas": 1}})
        cluster.wait_for(lambda: cluster.get("deployment", "fleet", namespace),
                               "the leader creates the Deployment")
        cluster.wait_for(lambda: (cluster.get("dg", "fleet", namespace).get("status") or {})
                         .get("observedGeneration"), "the leader writes the status")
        # Several resync rounds (2 s) of the leader: the standby still wrote nothing.
        cluster.wait_for(lambda: (lambda s: _seconds(s["renewTime"]) - _seconds(
            s["acquireTime"]) >= 4)(_lease(cluster)), "two resync rounds of the leader")
        assert _managers(cluster, "deployment", "fleet", namespace) == {"op-a"}
        assert _managers(cluster, "dg", "fleet", namespace) & {"op-a", "op-b"} == {"op-a"}
        assert "holds Lease" not in b.logs()

        a.proc.send_signal(signal.SIGKILL)
        killed = time.time()
        a.proc.wait()
        lease = cluster.wait_for(
            lambda: (lambda s: s if s.get("holderIdentity") not in (None, leader) else None)(
                _lease(cluster)), "operator b takes the Lease")
        took = _seconds(lease["acquireTime"]) - killed
        assert lease["leaseTransitions"] >= 1
        # The takeover bound (lease duration + 2 retry periods, settings.py) with room
        # for kopf's start-up: what the chart promises.
        assert took <= 15, f"takeover after {took:.1f} s"

        # The new leader acts: a spec change reaches the Deployment under its manager.
        cluster.kubectl("patch", "dg", "fleet", "-n", namespace, "--type=merge", "-p",
                        json.dumps({"spec": {"service": {"concurrency": 7}}}))

        def changed() -> dict[str, Any] | None:
            d = cluster.get("deployment", "fleet", namespace)
            envs = {e["name"]: e.get("value") for c in d["spec"]["template"]["spec"][
                "containers"] for e in c.get("env", [])}
            return d if envs.get("GENDOC_CONCURRENCY") == "7" else None

        cluster.wait_for(changed, "operator b applies the change")
        acted = time.time() - killed
        assert "op-b" in _managers(cluster, "deployment", "fleet", namespace)
        print(f"takeover: Lease after {took:.1f} s, first write after {acted:.1f} s")

        # A standby stopped (a rollout, a scale-down) leaves quietly, as a leader does.
        c = _start(cluster, namespace, "op-c", kubeconfig, tmp_path / "c.log")
        procs.append(c)
        cluster.wait_for(lambda: "waits for Lease" in c.logs(), "operator c stands by")
        assert c.stop() == 0, c.logs()

        # A graceful stop releases the Lease: nobody holds it afterwards.
        assert b.stop() == 0
        assert not _lease(cluster).get("holderIdentity")
        assert "released Lease" in b.logs()
    finally:
        for p in procs:
            p.stop()


def test_a_leader_whose_kopf_stops_on_an_error_releases_the_lease(
        cluster: Cluster, operator_kubeconfig: Path, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf ends the operator when a startup handler fails permanently: a real error exit
    of kopf. The leader still releases its Lease, so a standby need not wait it out."""
    # The client reads $KUBECONFIG once, at import, into both modules' default: point
    # those at the chart's ServiceAccount instead (Kube and kopf's login both use them).
    for module in (kubernetes.config, kube_config):
        monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(operator_kubeconfig))
    cluster.kubectl("delete", "lease", LEASE_NAME, "-n", LEASE_NAMESPACE, "--ignore-not-found")
    settings = OperatorSettings(
        namespaces=[namespace], health_host="127.0.0.1", health_port=free_port(),
        field_manager="op-fails", lease_namespace=LEASE_NAMESPACE, lease_name=LEASE_NAME)
    kube = Kube.from_environment(field_manager=settings.field_manager, timeout=10)
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def refuse(**_: Any) -> None:
        raise kopf.PermanentError("this operator may not start (the test's failure)")

    with pytest.raises(Exception, match="handlers failed"):  # kopf's ActivityError, private
        asyncio.run(main._operate(settings, kube, registry))
    # The Lease was deleted above: it stands because this leader created it holding it,
    # and it is left released (no holder, client-go's one-second duration).
    lease = _lease(cluster)
    assert not lease.get("holderIdentity") and lease.get("leaseDurationSeconds") == 1, lease
