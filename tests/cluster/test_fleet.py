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
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from cluster.kube import CHART, KubeCluster
from k8s_plane import REPO

RELEASE, OPERATOR_NS = "gendoc", "gendoc-system"
EXAMPLES = REPO / "src" / "gendoc" / "examples"
API_KEY = "k-" + "5" * 30


def readme_docgenerator() -> dict[str, Any]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# docgenerator\.yaml\n.*?)```", text, re.S)
    assert block, "README.md lost its example DocGenerator"
    return dict(yaml.safe_load(block.group(1)))


def pods_ready(kube: KubeCluster, namespace: str, selector: str, count: int) -> bool:
    pods = kube.get_json("pods", "-n", namespace, "-l", selector)["items"]
    ready = [p for p in pods if p["metadata"].get("deletionTimestamp") is None and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in p["status"].get("conditions", []))]
    return len(ready) >= count


@pytest.fixture(scope="module")
def release(kube: KubeCluster) -> Iterator[str]:
    """The chart with the images built here, never pulled, in a restricted namespace."""
    kube.kubectl("create", "namespace", OPERATOR_NS)
    kube.kubectl("label", "namespace", OPERATOR_NS,
                 "pod-security.kubernetes.io/enforce=restricted")
    t0 = time.monotonic()
    kube.helm("install", RELEASE, str(CHART), "--namespace", OPERATOR_NS,
              "--set", f"images.registry={kube.images.registry}",
              "--set", f"images.tag={kube.images.tag}",
              "--set", "images.pullPolicy=Never")
    kube.wait_for(lambda: pods_ready(kube, OPERATOR_NS, "app.kubernetes.io/component=operator",
                                     1), "an operator pod Ready")
    kube.figures["helm install -> operator pod Ready (s)"] = round(time.monotonic() - t0, 1)
    yield RELEASE


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
    dg = readme_docgenerator()
    dg["metadata"]["namespace"] = ns
    dg["spec"].update(minReplicas=1)
    dg["spec"]["autoscaling"]["enabled"] = False
    dg["spec"]["images"] = {"pullPolicy": "Never"}
    dg["spec"]["resources"]["service"]["requests"]["cpu"] = "100m"
    dg["spec"]["resources"]["converter"]["requests"]["cpu"] = "300m"
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
    body = json.dumps({"template": "invoice", "format": "pdf",
                       "data": json.loads((EXAMPLES / "invoice.json").read_text())})
    got = client_pod(kube, ns, "client-key", RENDER_CLIENT, [url, API_KEY, body])
    kube.figures["DocGenerator applied -> first PDF (s)"] = round(time.monotonic() - t0, 1)
    assert got["status"] == 200, got
    assert got["type"] == "application/pdf" and got["head"] == "%PDF-", got
    refused = client_pod(kube, ns, "client-no-key", RENDER_CLIENT, [url, "", body])
    assert refused["status"] == 401, refused
    assert refused["type"] == "application/problem+json"

