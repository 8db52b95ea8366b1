"""The chart and the README's DocGenerator on a real node: pods Ready, PDFs through the Service.

Each namespace enforces the restricted Pod Security Standard. The node has
2 cores, so the README's fleet runs here with one replica and smaller CPU
requests (its 1.5 CPU per pod would leave a second pod unschedulable); every
other field is the README's.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from cluster.kube import (
    API_KEY,
    EXAMPLES,
    OPERATOR_NS,
    RELEASE,
    KubeCluster,
    invoice_body,
    pods_ready,
    small_docgenerator,
)
from cluster.load import Load
from cluster.node import CGROUP_ROOT


def client_pod(kube: KubeCluster, namespace: str, name: str, script: str,
               args: list[str]) -> dict[str, Any]:
    """Run `script` in a pod of the service image (Python, no curl) and return its JSON line."""
    kube.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "restartPolicy": "Never", "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "client",
                "image": f"{kube.images.registry}/gendoc-service:{kube.images.tag}",
                "imagePullPolicy": "Never",
                "command": ["/opt/gendoc/bin/python", "-c", script, *args],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })

    def finished() -> bool:
        pod = kube.get_json("pod", name, "-n", namespace)
        return pod["status"].get("phase") in ("Succeeded", "Failed")

    kube.wait_for(finished, f"client pod {name} finished")
    out = kube.kubectl("logs", name, "-n", namespace)
    return dict(json.loads(out.strip().splitlines()[-1]))


RENDER_CLIENT = """
import json, sys, urllib.request, urllib.error
url, key, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, data=body.encode(), method="POST",
                             headers={"Content-Type": "application/json"})
if key:
    req.add_header("X-API-Key", key)
try:
    with urllib.request.urlopen(req, timeout=60) as r:
        data = r.read()
        print(json.dumps({"status": r.status, "type": r.headers["Content-Type"],
                          "head": data[:5].decode("latin-1"), "size": len(data)}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "type": e.headers["Content-Type"]}))
"""


def test_readme_fleet_serves_pdfs_through_its_service(kube: KubeCluster, release: str) -> None:
    ns = kube.restricted_namespace("billing")
    kube.kubectl("create", "configmap", "invoice-templates", "-n", ns,
                 f"--from-file=invoice.docx={EXAMPLES / 'invoice.docx'}")
    kube.kubectl("create", "secret", "generic", "invoice-api-keys", "-n", ns,
                 f"--from-literal=api-keys={API_KEY}")
    dg = small_docgenerator(ns)
    name = dg["metadata"]["name"]
    t0 = time.monotonic()
    kube.apply(dg)
    selector = f"app.kubernetes.io/instance={name}"
    try:
        kube.wait_for(lambda: pods_ready(kube, ns, selector, 1), f"a pod of {name} Ready",
                      timeout=240)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{kube.diagnostics(ns)}") from exc
    kube.figures["DocGenerator applied -> pod Ready (s)"] = round(time.monotonic() - t0, 1)
    pod = kube.get_json("pods", "-n", ns, "-l", selector)["items"][0]
    # Both containers Ready with the restricted profile and a read-only root.
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    assert set(statuses) == {"gendoc-service", "gendoc-converter"}
    assert all(c["ready"] for c in statuses.values())
    for c in pod["spec"]["containers"]:
        assert c["securityContext"]["readOnlyRootFilesystem"] is True

    ip = kube.get_json("service", name, "-n", ns)["spec"]["clusterIP"]
    url = f"http://{ip}:8080/v1/render"
    body = invoice_body()
    got = client_pod(kube, ns, "client-key", RENDER_CLIENT, [url, API_KEY, body])
    kube.figures["DocGenerator applied -> first PDF (s)"] = round(time.monotonic() - t0, 1)
    assert got["status"] == 200, got
    assert got["type"] == "application/pdf" and got["head"] == "%PDF-", got
    refused = client_pod(kube, ns, "client-no-key", RENDER_CLIENT, [url, "", body])
    assert refused["status"] == 401, refused
    assert refused["type"] == "application/problem+json"

    # Throughput of the one pod through the Service, from the host (kube-proxy's
    # OUTPUT rules), and what its containers held meanwhile against their limits.
    tally = Load(url, body, clients=4, max_seconds=30).run()
    assert set(tally.answers) == {200}, tally.summary()
    kube.figures["PDFs/min through the Service, 1 pod, 4 clients"] = round(tally.per_minute)
    pod = kube.get_json("pods", "-n", ns, "-l", selector)["items"][0]
    for name, (rss, peak, limit) in container_memory(pod).items():
        kube.figures[f"{name} RSS / peak / limit under load (MiB)"] = f"{rss} / {peak} / {limit}"
        assert peak < limit, (name, peak, limit)
    assert all(c["restartCount"] == 0 for c in pod["status"]["containerStatuses"]), pod


def container_memory(pod: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """RSS, peak usage and limit of each container, MiB, from its memory cgroup (v1)."""
    uid = pod["metadata"]["uid"]
    limits = {c["name"]: c["resources"]["limits"]["memory"] for c in pod["spec"]["containers"]}
    found = {}
    for status in pod["status"]["containerStatuses"]:
        cid = status["containerID"].split("://", 1)[1]
        (cg,) = Path("/sys/fs/cgroup/memory", CGROUP_ROOT).glob(f"kubepods/**/pod{uid}/{cid}")
        stat = dict(line.split() for line in (cg / "memory.stat").read_text().splitlines())
        peak = int((cg / "memory.max_usage_in_bytes").read_text())
        found[status["name"]] = (int(stat["total_rss"]) >> 20, peak >> 20,
                                 _mebibytes(limits[status["name"]]))
    return found


def _mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def test_helm_test_passes(kube: KubeCluster, release: str) -> None:
    """The chart's test pod (the service image's Python) reaches the example fleet."""
    selector = "app.kubernetes.io/instance=invoices"
    try:
        kube.wait_for(lambda: pods_ready(kube, OPERATOR_NS, selector, 1),
                      "a pod of the example fleet Ready", timeout=240)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{kube.diagnostics(OPERATOR_NS)}") from exc
    # No --logs: the hook's delete policy removes the pod once it succeeded.
    done = kube.helm("test", release, "--namespace", OPERATOR_NS, "--timeout", "4m",
                     check=False)
    assert done.returncode == 0, done.stdout + done.stderr + kube.diagnostics(OPERATOR_NS)
    assert re.search(r"Phase:\s+Succeeded", done.stdout), done.stdout



def lease_holder(kube: KubeCluster) -> str:
    lease = kube.get_json("lease", f"{RELEASE}-operator", "-n", OPERATOR_NS)
    # The operator's identity is its host name (the pod's name) and a random suffix.
    return str(lease["spec"].get("holderIdentity") or "").rsplit("_", 1)[0]


def test_two_operator_replicas_one_leader_takes_over_when_it_is_deleted(
        kube: KubeCluster, release: str) -> None:
    selector = "app.kubernetes.io/component=operator"
    kube.wait_for(lambda: pods_ready(kube, OPERATOR_NS, selector, 2), "two operator pods Ready")
    pods = [p["metadata"]["name"] for p in
            kube.get_json("pods", "-n", OPERATOR_NS, "-l", selector)["items"]]
    leader = kube.wait_for(lambda: lease_holder(kube) in pods and lease_holder(kube),
                           "an operator pod holding the Lease")
    (standby,) = [p for p in pods if p != leader]
    t0 = time.monotonic()
    kube.kubectl("delete", "pod", leader, "-n", OPERATOR_NS, "--wait=false")
    kube.wait_for(lambda: lease_holder(kube) == standby, f"{standby} holding the Lease",
                  timeout=30)
    took = time.monotonic() - t0
    kube.figures["operator leader deleted -> the other holds the Lease (s)"] = round(took, 1)
    assert took <= 15, took
