"""kubectl and helm against the cluster tier's one-node cluster (tests/cluster/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster.node import Node
from k8s_plane import REPO, ControlPlane

from gendoc.readiness import wait_until

WAIT = float(os.environ.get("GENDOC_CLUSTER_WAIT", "120"))  # seconds for pods to act
CHART = REPO / "charts" / "gendoc"


@dataclass
class Images:
    registry: str
    tag: str
    pause: str
    tars: list[str]


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


