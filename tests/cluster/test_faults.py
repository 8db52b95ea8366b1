"""Faults under load: a retrying client (cluster/load.py) loses no document.

One fleet of 2 replicas (autoscaling off) for the module. Each test starts
from the whole fleet, runs the load through the Service from the host, breaks
something, waits for the fleet to be whole again with PDFs still flowing, and
then counts: every document the clients started was delivered; the only
answers besides 200 are 429/503 with Retry-After (retried as told).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.kube import Fleet, KubeCluster, fleet, invoice_body, small_docgenerator
from cluster.load import Load, Tally
from cluster.node import NODE_NAME
from prometheus_client.parser import text_string_to_metric_families

CLIENTS = 4
CONVERTER = "gendoc-converter"

# The converter image has no shell and no `kill`: its own Python finds soffice.
KILL_SOFFICE = """
import os, signal
killed = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        exe = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")[0]
    except OSError:
        continue
    if os.path.basename(exe).startswith(b"soffice"):
        os.kill(int(pid), signal.SIGKILL)
        killed += 1
print(killed)
"""
CONVERTER_METRICS = """
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:3000/prometheus/metrics", timeout=10)
      .read().decode())
"""
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget"


@pytest.fixture(scope="module")
def pair(kube: KubeCluster, release: str) -> Iterator[Fleet]:
    dg = small_docgenerator("")
    # A name no other fleet has: `kubectl drain --pod-selector` selects in every
    # namespace, and the chart's example fleet is also called "invoices".
    dg["metadata"]["name"] = "faults"
    dg["spec"].update(minReplicas=2)
    with fleet(kube, "faults", dg) as f:
        f.wait_whole(2)
        yield f


def settled(tally: Tally, what: str) -> None:
    print(f"MEASURED {what}: {tally.summary()}")
    assert tally.lost == [], tally.summary()
    assert set(tally.answers) <= {200, 429, 503}, tally.summary()
    assert tally.documents > 0


def converter_restarts(f: Fleet, pod: str) -> float:
    """Instances the converter's pool replaced, any reason (its own metric)."""
    text = f.exec_python(pod, CONVERTER, CONVERTER_METRICS)
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "gendoc_converter_restarts_total")


def container_status(f: Fleet, pod: str, name: str) -> dict[str, Any]:
    p = f.kube.get_json("pod", pod, "-n", f.namespace)
    (status,) = [c for c in p["status"]["containerStatuses"] if c["name"] == name]
    return dict(status)


def test_libreoffice_killed_inside_the_converter(kube: KubeCluster, pair: Fleet) -> None:
    f = pair
    f.wait_whole(2)
    pod = f.ready()[0]["metadata"]["name"]
    before = converter_restarts(f, pod)
    restarts = container_status(f, pod, CONVERTER)["restartCount"]
    with Load(f.url(), invoice_body(), clients=CLIENTS, max_seconds=600) as load:
        load.wait_documents(20, "20 PDFs before the fault")
        killed = int(f.exec_python(pod, CONVERTER, KILL_SOFFICE))
        assert killed >= 1, "no soffice process in the converter container"
        # The pool replaces its instances in place; the kubelet restarts nothing.
        kube.wait_for(lambda: converter_restarts(f, pod) >= before + 1,
                      "the pool replacing the killed instances")
        f.wait_whole(2)
        load.wait_documents(20, "20 PDFs after the pool healed")
        tally = load.stop()
    settled(tally, f"soffice killed ({killed} processes) in one of 2 pods")
    assert container_status(f, pod, CONVERTER)["restartCount"] == restarts


def test_converter_container_killed(kube: KubeCluster, pair: Fleet) -> None:
    f = pair
    f.wait_whole(2)
    pod = f.ready()[0]["metadata"]["name"]
    status = container_status(f, pod, CONVERTER)
    container_id = status["containerID"].split("://", 1)[1]
    with Load(f.url(), invoice_body(), clients=CLIENTS, max_seconds=600) as load:
        load.wait_documents(20, "20 PDFs before the fault")
        # SIGKILL to the container's init (tini): the kernel ends its whole PID namespace.
        kube.node.ctr("tasks", "kill", "--signal", "SIGKILL", container_id)
        kube.wait_for(lambda: container_status(f, pod, CONVERTER)["restartCount"]
                      > status["restartCount"], "the kubelet restarting the converter")
        f.wait_whole(2)
        load.wait_documents(20, "20 PDFs after the converter restarted")
        tally = load.stop()
    settled(tally, "converter container killed in one of 2 pods")


def test_pod_deleted_under_load(kube: KubeCluster, pair: Fleet) -> None:
    f = pair
    f.wait_whole(2)
    victim = f.ready()[0]["metadata"]["name"]
    with Load(f.url(), invoice_body(), clients=CLIENTS, max_seconds=600) as load:
        load.wait_documents(20, "20 PDFs before the fault")
        kube.kubectl("delete", "pod", victim, "-n", f.namespace, "--wait=false")
        f.wait_whole(2)
        assert victim not in {p["metadata"]["name"] for p in f.pods()}
        load.wait_documents(20, "20 PDFs with the replacement")
        tally = load.stop()
    settled(tally, "one of 2 pods deleted")


def test_drain_evicts_only_what_the_disruption_budget_allows(
        kube: KubeCluster, pair: Fleet, tmp_path: Path) -> None:
    f = pair
    f.wait_whole(2)
    kube.wait_for(lambda: kube.get_json("pdb", f.name, "-n", f.namespace)
                  .get("status", {}).get("disruptionsAllowed") == 1,
                  "the PodDisruptionBudget allowing one disruption")
    before = {p["metadata"]["name"] for p in f.ready()}
    out = tmp_path / "drain.log"
    drain: subprocess.Popen[bytes] | None = None
    try:
        with Load(f.url(), invoice_body(), clients=CLIENTS, max_seconds=600) as load, \
                out.open("wb") as log:
            load.wait_documents(20, "20 PDFs before the drain")
            drain = kube.kubectl_popen(
                "drain", NODE_NAME, f"--pod-selector={f.selector}", "--ignore-daemonsets",
                "--delete-emptydir-data", "--timeout=600s", stdout=log)

            def refusals() -> int:
                return out.read_text().count(REFUSED)

            kube.wait_for(refusals, "kubectl drain refused an eviction (429)")
            evicting = re.findall(r"^evicting pod (\S+)/", out.read_text(), re.M)
            assert set(evicting) == {f.namespace}, out.read_text()
            left = f.pods()
            # One pod evicted, the other kept: the replacement cannot schedule on the
            # cordoned node, so the budget refuses the second eviction again and again.
            kept = [p for p in left if p["metadata"]["name"] in before]
            assert len(kept) == 1 and kept[0]["status"]["phase"] == "Running", left
            kube.wait_for(lambda: before - {p["metadata"]["name"] for p in kube.get_json(
                "pods", "-n", f.namespace, "-l", f.selector)["items"]},
                "the evicted pod gone")
            seen = refusals()
            kube.wait_for(lambda: refusals() > seen, "a refusal after the evicted pod went")
            (pending,) = [p for p in f.pods() if p["metadata"]["name"] not in before]
            assert pending["status"]["phase"] == "Pending", pending["status"]
            assert {p["metadata"]["name"] for p in f.ready()} == {kept[0]["metadata"]["name"]}
            assert drain.poll() is None, out.read_text()
            drain.terminate()
            drain.wait(30)
            kube.kubectl("uncordon", NODE_NAME)
            f.wait_whole(2)
            load.wait_documents(20, "20 PDFs with the fleet whole again")
            tally = load.stop()
        print(f"MEASURED drain: {refusals()} refusals; kubectl drain said:\n{out.read_text()}")
        settled(tally, "a drain of the node, 2 pods, budget maxUnavailable 1")
    finally:
        if drain is not None and drain.poll() is None:
            drain.kill()
            drain.wait(30)
        kube.try_kubectl("uncordon", NODE_NAME)
    assert not kube.get_json("node", NODE_NAME)["spec"].get("unschedulable")
