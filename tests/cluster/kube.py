"""kubectl and helm against the cluster tier's one-node cluster (tests/cluster/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import yaml
from cluster.node import Node
from k8s_plane import REPO, ControlPlane

from gendoc.readiness import wait_until

WAIT = float(os.environ.get("GENDOC_CLUSTER_WAIT", "120"))  # seconds for pods to act
CHART = REPO / "charts" / "gendoc"
RELEASE, OPERATOR_NS = "gendoc", "gendoc-system"  # the chart's release (conftest.release)
EXAMPLES = REPO / "src" / "gendoc" / "examples"
API_KEY = "k-" + "5" * 30


@dataclass
class Images:
    registry: str
    tag: str
    pause: str
    tars: list[str]
    # Static Go programs run as pods, by role: "s3" (versitygw).
    tools: dict[str, str] = field(default_factory=dict)


@dataclass
class KubeCluster:
    """kubectl and helm against the one-node cluster; figures measured on the way."""

    plane: ControlPlane
    node: Node
    images: Images
    figures: dict[str, Any]

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 120) -> str:
        proc = self.plane.kubectl(*args, check=check, input=input, timeout=timeout)
        return proc.stdout

    def kubectl_popen(self, *args: str, stdout: IO[bytes]) -> subprocess.Popen[bytes]:
        """kubectl in the background (a drain that retries until stopped), output to `stdout`."""
        return subprocess.Popen(
            [str(self.plane.bin_dir / "kubectl"), "--kubeconfig", str(self.plane.kubeconfig),
             *args], stdout=stdout, stderr=subprocess.STDOUT)

    def try_kubectl(self, *args: str, input: str | None = None) -> tuple[int, str]:
        proc = self.plane.kubectl(*args, check=False, input=input)
        return proc.returncode, proc.stdout + proc.stderr

    def get_json(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", "-o", "json", *args)))

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def helm(self, *args: str, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
        w = self.plane.workdir
        proc = subprocess.run(
            [str(self.plane.bin_dir / "helm"), "--kubeconfig", str(self.plane.kubeconfig),
             *args],
            capture_output=True, text=True, timeout=timeout, check=False,
            env={**os.environ, "HELM_CACHE_HOME": str(w / "helm-cache"),
                 "HELM_CONFIG_HOME": str(w / "helm-config"),
                 "HELM_DATA_HOME": str(w / "helm-data")},
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def restricted_namespace(self, prefix: str) -> str:
        """A namespace that enforces the restricted Pod Security Standard."""
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        self.kubectl("create", "namespace", name)
        self.kubectl("label", "namespace", name,
                     "pod-security.kubernetes.io/enforce=restricted",
                     "pod-security.kubernetes.io/enforce-version=latest")
        wait_until(lambda: self.try_kubectl("get", "sa", "default", "-n", name)[0] == 0,
                   WAIT, interval=0.25, what=f"namespace {name}'s default ServiceAccount")
        return name

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        return wait_until(predicate, timeout, interval=0.5, what=what)

    def diagnostics(self, namespace: str) -> str:
        parts = []
        for args in (("get", "pods,deploy,svc,events", "-n", namespace, "-o", "wide"),
                     ("describe", "pods", "-n", namespace)):
            parts.append(self.try_kubectl(*args)[1][-6000:])
        pods = self.get_json("pods", "-n", namespace)["items"]
        for pod in pods:
            for c in pod["spec"]["containers"]:
                for previous in ("--previous=false", "--previous=true"):
                    out = self.try_kubectl("logs", pod["metadata"]["name"], "-n", namespace,
                                           "-c", c["name"], previous, "--tail=40")[1]
                    parts.append(f"--- logs {pod['metadata']['name']}/{c['name']} "
                                 f"{previous}\n{out}")
        parts.append("--- kubelet\n" + self.node.log_tail("kubelet", 30))
        return "\n".join(parts)




def readme_docgenerator() -> dict[str, Any]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# docgenerator\.yaml\n.*?)```", text, re.S)
    assert block, "README.md lost its example DocGenerator"
    return dict(yaml.safe_load(block.group(1)))


def live(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods not being deleted."""
    return [p for p in pods if p["metadata"].get("deletionTimestamp") is None]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions", []))


def pods_ready(kube: KubeCluster, namespace: str, selector: str, count: int) -> bool:
    pods = kube.get_json("pods", "-n", namespace, "-l", selector)["items"]
    return len([p for p in live(pods) if is_ready(p)]) >= count


def small_docgenerator(namespace: str) -> dict[str, Any]:
    """The README's DocGenerator cut to this 2-core node: one replica, no autoscaling.

    Its 1.5 CPU of requests per pod would leave a second pod unschedulable; with
    these, two pods of it fit beside the chart's example fleet (750m), a README
    fleet of test_fleet (300m) and the two operators (100m). Every other field is
    the README's.
    """
    dg = readme_docgenerator()
    dg["metadata"]["namespace"] = namespace
    dg["spec"].update(minReplicas=1)
    dg["spec"]["autoscaling"]["enabled"] = False
    dg["spec"]["images"] = {"pullPolicy": "Never"}
    dg["spec"]["resources"]["service"]["requests"]["cpu"] = "100m"
    dg["spec"]["resources"]["converter"]["requests"]["cpu"] = "200m"
    return dg


@dataclass
class Fleet:
    """A DocGenerator applied in its own namespace, and what tests ask of it."""

    kube: KubeCluster
    namespace: str
    name: str

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name}"

    def pods(self) -> list[dict[str, Any]]:
        """Its pods not being deleted."""
        return live(self.kube.get_json("pods", "-n", self.namespace, "-l",
                                       self.selector)["items"])

    def ready(self) -> list[dict[str, Any]]:
        return [p for p in self.pods() if is_ready(p)]

    def whole(self, count: int) -> bool:
        """Exactly `count` pods, all Ready, none being deleted."""
        pods = self.kube.get_json("pods", "-n", self.namespace, "-l", self.selector)["items"]
        return len(pods) == len(live(pods)) == count and all(is_ready(p) for p in pods)

    def wait_whole(self, count: int, timeout: float = 240) -> None:
        try:
            self.kube.wait_for(lambda: self.whole(count),
                               f"{count} pods of {self.name} Ready, no other", timeout=timeout)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{self.kube.diagnostics(self.namespace)}") from exc

    def url(self, path: str = "/v1/render") -> str:
        ip = self.kube.get_json("service", self.name, "-n", self.namespace)["spec"]["clusterIP"]
        return f"http://{ip}:8080{path}"

    def docgenerator(self) -> dict[str, Any]:
        return self.kube.get_json("docgenerator", self.name, "-n", self.namespace)

    def exec_python(self, pod: str, container: str, script: str) -> str:
        """Run `script` with the image's Python inside a running container (no shell there)."""
        return self.kube.kubectl("exec", pod, "-n", self.namespace, "-c", container, "--",
                                 "/opt/gendoc/bin/python", "-c", script)


def invoice_body() -> str:
    """The README's example render request: the example invoice to PDF."""
    return json.dumps({"template": "invoice", "format": "pdf",
                       "data": json.loads((EXAMPLES / "invoice.json").read_text())})


@contextmanager
def fleet(kube: KubeCluster, prefix: str, dg: dict[str, Any]) -> Iterator[Fleet]:
    """`dg` (see small_docgenerator) in a new restricted namespace with the example
    template and the API key; the namespace is deleted afterwards, also after a
    failure, so the next test's pods find the node's CPU free."""
    ns = kube.restricted_namespace(prefix)
    try:
        kube.kubectl("create", "configmap", "invoice-templates", "-n", ns,
                     f"--from-file=invoice.docx={EXAMPLES / 'invoice.docx'}")
        kube.kubectl("create", "secret", "generic", "invoice-api-keys", "-n", ns,
                     f"--from-literal=api-keys={API_KEY}")
        dg["metadata"]["namespace"] = ns
        kube.apply(dg)
        yield Fleet(kube, ns, dg["metadata"]["name"])
    finally:
        kube.try_kubectl("delete", "namespace", ns, "--wait=false")
        kube.wait_for(lambda: kube.try_kubectl("get", "namespace", ns)[0] != 0,
                      f"namespace {ns} deleted", timeout=240)
