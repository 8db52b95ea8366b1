"""The autoscaler end to end: the operator, a DocGenerator, and real service processes.

There is no kubelet, so the test plays its part for two pods: it creates Pod
objects with the fleet's selector labels, marks them Running and Ready with
their own 127.x.y.z address (status subresource, as the kubelet would), and a
real `gendoc serve` listens on each address at port 8080. These pods carry no
pod-template-hash label, so the Deployment's ReplicaSet neither adopts nor
deletes them; the ReplicaSet's own pods stay Pending. That is the case the
autoscaler meets in any cluster where a scale-up outruns the nodes:

* Pending (not ready) pods get no traffic, so the ready pods' arrival rate is
  the whole demand: they are set aside without holding a scale-down (else an
  unschedulable pod would hold the fleet up forever). Here the ReplicaSet's
  pending pods are there throughout, and the fleet still scales down.
* A ready pod whose /metrics cannot be read carries load nobody measured: it
  holds every scale-down. The test shows it with a third Ready pod on an
  address where nothing listens, then deletes it and the fleet scales down.

`target.capacityPerPodPerMinute` is set low (30/min), so a modest, bounded
load (3 renders/s of a DOCX, ~20 ms each) needs the maximum of 4 pods: the
rate rule fires without saturating the machine. Period 3 s, window 10 s.
"""

from __future__ import annotations

import errno
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gendoc_operator import children, crd

from gendoc.procs import GendocProcess
from gendoc.readiness import Abort, wait_until

Cluster = Any  # tests/kubernetes/conftest.py's Cluster (conftest modules are not importable)

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "gendoc" / "examples"
PORT = children.SERVICE_PORT  # the collector scrapes podIP:8080, as in a real pod
PERIOD, WINDOW = 3, 10  # seconds: spec.autoscaling.periodSeconds, scaleDownStabilizationSeconds
SLACK = 4.0  # seconds for the API round trips between a decision and the Deployment
RATE = 3.0  # renders per second while loaded (bounded in count and time below)
MAX_REQUESTS, MAX_LOAD_SECONDS = 300, 60.0


@pytest.fixture(autouse=True)
def _operator_running(operator: GendocProcess) -> None:
    """The session's operator (running as the chart's ServiceAccount) does the scaling."""


def free_loopback_address() -> str:
    """A 127.x.y.z address whose port 8080 nobody holds (all of 127/8 is loopback on Linux)."""
    for _ in range(50):
        address = f"127.{random.randint(20, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((address, PORT))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
        return address
    raise RuntimeError("no free 127.x.y.z:8080 found")


def serve(address: str, workdir: Path) -> GendocProcess:
    """A real `gendoc serve` on ADDRESS:8080 with the example invoice template uploaded."""
    log = workdir / f"service-{address}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gendoc", "serve", "--host", address, "--port", str(PORT),
             "--store-dir", str(workdir / f"store-{address}"), "--converter-url", "",
             "--concurrency", "2"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "GENDOC_RENDER_WORKERS": "1"},
        )
    server = GendocProcess(f"http://{address}:{PORT}", proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise Abort(f"gendoc serve on {address} exited:\n{server.logs()[-3000:]}")
        return httpx.get(server.url + "/readyz", timeout=2, trust_env=False).status_code == 200

    try:
        wait_until(ready, 60, interval=0.1, what=f"gendoc serve on {address}")
        put = httpx.put(server.url + "/v1/templates/invoice", trust_env=False, timeout=10,
                        content=(EXAMPLES / "invoice.docx").read_bytes())
        assert put.status_code in (200, 201), put.text
    except BaseException:
        server.stop()
        raise
    return server


class Load:
    """RATE renders/s of the example invoice (DOCX), round-robin over the pods' addresses,
    from one thread; stops when told, after MAX_REQUESTS, or after MAX_LOAD_SECONDS."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.stop = threading.Event()
        self.first_ok: float | None = None
        self.statuses: list[int] = []
        self.body = {"template": "invoice", "format": "docx",
                     "data": json.loads((EXAMPLES / "invoice.json").read_text())}
        self.thread = threading.Thread(target=self._run, name="load", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        with httpx.Client(trust_env=False, timeout=10) as http:
            for n in range(MAX_REQUESTS):
                if time.monotonic() - start > MAX_LOAD_SECONDS:
                    return
                try:
                    status = http.post(self.urls[n % len(self.urls)] + "/v1/render",
                                       json=self.body).status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses.append(status)
                if status == 200 and self.first_ok is None:
                    self.first_ok = time.monotonic()
                # The arrival process: the next request is due 1/RATE s after this one's slot.
                if self.stop.wait(max(0.0, start + (n + 1) / RATE - time.monotonic())):
                    return

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(15)


def make_ready_pod(cluster: Cluster, namespace: str, name: str, labels: dict[str, str],
                   address: str) -> None:
    """What the scheduler and kubelet would do: a Running, Ready pod at `address`."""
    cluster.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": namespace, "labels": labels},
                   "spec": {"automountServiceAccountToken": False, "containers": [
                       {"name": "gendoc-service", "image": "gendoc-service:test"}]}})
    cluster.kubectl("patch", "pod", name, "-n", namespace, "--subresource=status",
                    "--type=merge", "-p", json.dumps({"status": {
                        "phase": "Running", "podIP": address, "podIPs": [{"ip": address}],
                        "conditions": [{"type": "Ready", "status": "True"}]}}))


def replicas(cluster: Cluster, namespace: str, name: str) -> int:
    deployment = cluster.get("deployment", name, namespace)
    return int(deployment["spec"]["replicas"]) if deployment else -1


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return dict((cluster.get("dg", name, namespace) or {}).get("status") or {})


def condition(status: dict[str, Any], type_: str) -> tuple[str, str] | None:
    """(status, reason) of a condition, None when absent."""
    found = [(c["status"], c["reason"]) for c in status.get("conditions") or []
             if c["type"] == type_]
    return found[0] if found else None


def events(cluster: Cluster, namespace: str, name: str) -> list[tuple[str, str]]:
    found = json.loads(cluster.kubectl(
        "get", "events", "-n", namespace, "-o", "json", "--field-selector",
        f"involvedObject.kind=DocGenerator,involvedObject.name={name}"))["items"]
    return [(e["reason"], e["message"]) for e in found]


@pytest.fixture
def pods_workdir(tmp_path: Path) -> Iterator[tuple[Path, list[GendocProcess]]]:
    servers: list[GendocProcess] = []
    yield tmp_path, servers
    for server in servers:
        server.stop()


def test_load_scales_the_fleet_up_and_its_end_scales_it_down(
        cluster: Cluster, namespace: str, pods_workdir: tuple[Path, list[GendocProcess]]) -> None:
    workdir, servers = pods_workdir
    name = "autoscaled"
    cluster.wait_for(lambda: cluster.try_kubectl("get", "sa", "default", "-n", namespace)[0] == 0,
                     "the namespace's default ServiceAccount")
    cluster.apply({"apiVersion": crd.API_VERSION, "kind": crd.KIND,
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"replicas": 1, "minReplicas": 1, "maxReplicas": 4,
                            "target": {"requestsPerMinute": 1, "p95LatencySeconds": 5,
                                       "maxQueuePerPod": 4, "capacityPerPodPerMinute": 30},
                            "autoscaling": {"enabled": True, "periodSeconds": PERIOD,
                                            "scaleDownStabilizationSeconds": WINDOW}}})
    dg = cluster.get("dg", name, namespace)
    labels = children.selector_labels(dg)
    addresses = [free_loopback_address() for _ in range(2)]
    for address in addresses:
        servers.append(serve(address, workdir))
    for i, address in enumerate(addresses):
        make_ready_pod(cluster, namespace, f"{name}-kubelet-{i}", labels, address)

    # Both pods measured (each needs two scrapes), the fleet idle at its minimum.
    cluster.wait_for(lambda: status(cluster, namespace, name).get("metrics", {})
                     .get("podsMeasured") == 2, "both ready pods measured")
    assert replicas(cluster, namespace, name) == 1

    # Load: 180/min against a capacity of 30/min per pod (24 at 80 %) wants 8 pods,
    # bounded to the spec's 4.
    with Load([s.url for s in servers]) as load:
        cluster.wait_for(lambda: load.first_ok, "the first render")
        assert load.first_ok is not None
        cluster.wait_for(lambda: replicas(cluster, namespace, name) == 4,
                         "the Deployment scaled up to 4")
        rise = time.monotonic() - load.first_ok
        assert rise <= 2 * PERIOD + SLACK, f"scaled up {rise:.1f}s after the load began"
        # Two writers: the autoscaler's metrics and the reconciler's desiredReplicas, which
        # it writes just after setting the Deployment (the test can look in between).
        loaded = cluster.wait_for(lambda: (s := status(cluster, namespace, name)).get(
            "metrics", {}).get("requestsPerMinute", 0) > 60
            and s.get("desiredReplicas") == 4 and s, "the load and 4 desired in the status")
        assert loaded["lastScaleTime"]
        m = loaded["metrics"]
        assert (m["capacityPerPodPerMinute"], m["capacitySource"]) == (30, "spec")
        assert m["podsMeasured"] == 2 and m["podsWithoutMetrics"] == 0
        assert m["p95LatencySeconds"] < 5
        # It wants up to 8 and maxReplicas is 4: limited, as the HPA would say (in a
        # period where this loaded machine sent under 96/min, 4 are enough: wait for
        # one that says so). The reconciler's conditions stand beside the autoscaler's.
        limited = cluster.wait_for(lambda: (s := status(cluster, namespace, name)) and condition(
            s, "ScalingLimited") == ("True", "TooManyReplicas") and s, "ScalingLimited True")
        assert condition(limited, "Ready") is not None, limited
        # A ready pod whose metrics cannot be read (nothing listens at its address).
        make_ready_pod(cluster, namespace, f"{name}-mute", labels, free_loopback_address())
    stopped = time.monotonic()
    assert load.statuses.count(200) == len(load.statuses) > 0, load.statuses

    # The load is gone, but the mute pod's share is unseen: after the window the
    # autoscaler holds 4 and says why. The ReplicaSet's Pending pods hold nothing.
    held = cluster.wait_for(
        lambda: "pods without metrics" in (s := status(cluster, namespace, name)).get(
            "scaleReason", "") and s, "holding for the pod without metrics",
        timeout=WINDOW + 4 * PERIOD + SLACK)
    assert time.monotonic() - stopped >= WINDOW - PERIOD
    assert replicas(cluster, namespace, name) == 4
    assert held["metrics"]["podsWithoutMetrics"] == 1
    assert held["metrics"]["podsNotReady"] >= 1  # the ReplicaSet's Pending pods
    assert condition(held, "AbleToScale") == ("False", "MissingPodMetrics"), held

    cluster.kubectl("delete", "pod", f"{name}-mute", "-n", namespace, "--wait=true")
    deleted = time.monotonic()
    cluster.wait_for(lambda: replicas(cluster, namespace, name) == 1,
                     "the Deployment scaled down to 1")
    assert time.monotonic() - deleted <= 2 * PERIOD + SLACK
    final = cluster.wait_for(lambda: (s := status(cluster, namespace, name)).get(
        "desiredReplicas") == 1 and s, "status desiredReplicas 1")
    assert final["metrics"]["podsNotReady"] >= 1  # Pending pods remain, and did not hold it
    reasons = events(cluster, namespace, name)
    assert any(r == "ScaledUp" and m.startswith("scale up 1->4 by the rate rule")
               for r, m in reasons), reasons
    assert any(r == "ScaledDown" and m.startswith("scale down 4->1") for r, m in reasons), reasons


def test_disabled_autoscaling_leaves_replicas_to_kubectl_scale(cluster: Cluster,
                                                               namespace: str) -> None:
    name = "manual"
    cluster.apply({"apiVersion": crd.API_VERSION, "kind": crd.KIND,
                   "metadata": {"name": name, "namespace": namespace},
                   "spec": {"replicas": 2, "autoscaling": {"periodSeconds": 1}}})
    # Enabled: the pods stay Pending (no kubelet), so there are no metrics and it holds.
    cluster.wait_for(lambda: status(cluster, namespace, name).get("scaleReason")
                     == "no pod reported metrics: holding 2", "the autoscaler holding 2")
    cluster.kubectl("patch", "-n", namespace, f"dg/{name}", "--type=merge", "-p",
                    json.dumps({"spec": {"autoscaling": {"enabled": False}}}))
    off = cluster.wait_for(lambda: (s := status(cluster, namespace, name)).get(
        "scaleReason", "").startswith("autoscaling disabled") and s, "the autoscaler off")
    assert "metrics" not in off
    # The autoscaler's conditions went with its metrics; the reconciler's stay.
    assert condition(off, "AbleToScale") is None and condition(off, "Ready") is not None, off
    cluster.kubectl("scale", "-n", namespace, f"dg/{name}", "--replicas=3")
    cluster.wait_for(lambda: replicas(cluster, namespace, name) == 3, "3 replicas")
    done = cluster.wait_for(lambda: (s := status(cluster, namespace, name)).get(
        "desiredReplicas") == 3 and s, "status desiredReplicas 3")
    assert done["scaleReason"].startswith("autoscaling disabled")
    assert not [r for r, _ in events(cluster, namespace, name) if r.startswith("Scaled")]
