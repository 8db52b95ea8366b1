"""The cluster tier: a one-node Kubernetes on this machine that runs the fleet's pods.

The control plane of the Kubernetes API tier (tests/k8s_plane.py) on the
node's address, plus the node of tests/cluster/node.py, and the three images
built from this repository (scripts/cluster-images.sh) imported into its
containerd. One cluster per session, started once, removed at the end, also
after a failure; leftovers of a killed run are removed before it starts.
docs/k8s-test-tier.md explains each piece. Nothing here is skipped: a machine
that cannot build or run a piece fails the tier loudly.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.kube import CHART, OPERATOR_NS, RELEASE, Images, KubeCluster, pods_ready
from cluster.node import (
    API_SERVICE_IP,
    NODE_IP,
    RUN_DIR,
    Node,
    apiserver_flags,
    cleanup,
    machine_lock,
    node_pki,
    prepare_host,
    wait_node_ready,
)
from k8s_plane import REPO, ControlPlane, ToolsUnavailable


def _script_last_line(*args: str) -> str:
    proc = subprocess.run(["bash", *args], capture_output=True, text=True, check=False,
                          cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ToolsUnavailable(f"{' '.join(args)} failed with exit code {proc.returncode}:\n"
                               f"{proc.stderr[-3000:]}")
    return lines[-1]


def _build_images() -> Images:
    raw = _script_last_line(str(REPO / "scripts" / "cluster-images.sh"))
    data = json.loads(raw)
    return Images(data["registry"], data["tag"], data["pause"], list(data["tars"]),
                  dict(data["tools"]))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    try:
        bin_dir = Path(_script_last_line(str(REPO / "scripts" / "k8s-tools.sh"), "node"))
        images = _build_images()
    except ToolsUnavailable as exc:
        pytest.fail(f"the cluster tier cannot build its pieces: {exc}")
    with machine_lock():
        cleanup(bin_dir)  # a killed run's leftovers
        pki = RUN_DIR / "plane"
        plane = ControlPlane(bin_dir, pki, host=NODE_IP, api_sans=(f"IP:{API_SERVICE_IP}",),
                             apiserver_flags=apiserver_flags(pki), extra_pki=[node_pki])
        node = Node(bin_dir, plane, images.pause)
        figures: dict[str, Any] = {}
        try:
            RUN_DIR.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            prepare_host()
            plane.start()
            node.start()
            t1 = time.monotonic()
            node.import_images([Path(tar) for tar in images.tars])
            figures["image import (s)"] = round(time.monotonic() - t1, 1)
            node.start_kubelet()
            wait_node_ready(plane.kubectl)
            figures["cluster up, images imported (s)"] = round(time.monotonic() - t0, 1)
            yield KubeCluster(plane, node, images, figures)
            # The figures docs/k8s-test-tier.md quotes: printed (pytest -s), and kept
            # where GENDOC_CLUSTER_FIGURES points.
            print("cluster figures:", json.dumps(figures, indent=1))
            if os.environ.get("GENDOC_CLUSTER_FIGURES"):
                Path(os.environ["GENDOC_CLUSTER_FIGURES"]).write_text(
                    json.dumps(figures, indent=1) + "\n")
        except BaseException:
            logs = "\n".join(f"--- {n}\n{node.log_tail(n)}" for n, _ in node.procs)
            logs += "\n".join(f"--- {n}\n{plane.log_tail(n)}" for n, _ in plane.procs)
            print(logs)
            raise
        finally:
            node.stop()
            plane.stop()
            cleanup(bin_dir)


@pytest.fixture(scope="session")
def release(kube: KubeCluster) -> Iterator[str]:
    """The chart with the images built here, never pulled, in a restricted namespace.

    Its example DocGenerator (default resources, no templates) is what `helm
    test` checks.
    """
    kube.kubectl("create", "namespace", OPERATOR_NS)
    kube.kubectl("label", "namespace", OPERATOR_NS,
                 "pod-security.kubernetes.io/enforce=restricted")
    t0 = time.monotonic()
    kube.helm("install", RELEASE, str(CHART), "--namespace", OPERATOR_NS,
              "--set", f"images.registry={kube.images.registry}",
              "--set", f"images.tag={kube.images.tag}",
              "--set", "images.pullPolicy=Never",
              # The example fleet, for `helm test` (test_fleet.test_helm_test_passes).
              "--set", "example.enabled=true")
    kube.wait_for(lambda: pods_ready(kube, OPERATOR_NS, "app.kubernetes.io/component=operator",
                                     1), "an operator pod Ready")
    kube.figures["helm install -> operator pod Ready (s)"] = round(time.monotonic() - t0, 1)
    yield RELEASE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.cluster)
