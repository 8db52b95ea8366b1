"""The Kubernetes tier: a real control plane on loopback, as envtest does.

etcd + kube-apiserver (RBAC and OwnerReferencesPermissionEnforcement on) +
kube-controller-manager (garbage collector,
Deployment and ReplicaSet controllers), no kubelet: pods stay Pending. The
flags are the ones scripts/k8s-smoke.sh proves (docs/k8s-test-tier.md); every
port is a free 127.0.0.1 port; every wait is `wait_until` on a real check. One
control plane per session, one namespace per test.

scripts/k8s-tools.sh builds the binaries once (long on a cold machine) and
reuses them after. A machine where they cannot be built fails this tier
loudly; nothing here is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gendoc_operator import crd
from k8s_plane import REPO, ControlPlane, ToolsUnavailable, k8s_bin_dir

from gendoc.procs import GendocProcess, free_port, spawn_gendoc
from gendoc.readiness import wait_until

WAIT = float(os.environ.get("GENDOC_K8S_WAIT", "30"))  # seconds for the operator to act


class Cluster:
    """kubectl against the test control plane, answers as parsed JSON."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        return self.plane.kubectl(*args, check=check, input=input).stdout

    def try_kubectl(self, *args: str, input: str | None = None) -> tuple[int, str]:
        proc = self.plane.kubectl(*args, check=False, input=input)
        return proc.returncode, proc.stdout + proc.stderr

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("apply", "-o", "json", "-f", "-",
                                            input=json.dumps(obj))))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        code, out = self.try_kubectl("get", kind, name, "-n", namespace, "-o", "json")
        if code != 0:
            if "NotFound" in out:
                return None
            raise AssertionError(out)
        return dict(json.loads(out))

    def new_namespace(self, name: str) -> None:
        """Create it and wait for its default ServiceAccount (pods need it)."""
        self.try_kubectl("create", "namespace", name)
        self.wait_for(lambda: self.try_kubectl("get", "sa", "default", "-n", name)[0] == 0,
                      f"namespace {name} ready")

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        return wait_until(predicate, timeout, interval=0.25, what=what)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        bin_dir = k8s_bin_dir()
    except ToolsUnavailable as exc:
        pytest.fail(f"the Kubernetes tier needs scripts/k8s-tools.sh's binaries: {exc}")
    plane = ControlPlane(bin_dir, tmp_path_factory.mktemp("k8s"))
    try:
        plane.start()
    except BaseException:
        logs = "\n".join(f"--- {n}\n{plane.log_tail(n)}" for n, _ in plane.procs)
        plane.stop()
        pytest.fail(f"the control plane did not start:\n{logs}")
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def cluster(control_plane: ControlPlane) -> Cluster:
    """The control plane with the DocGenerator CRD applied and served."""
    c = Cluster(control_plane)
    c.kubectl("apply", "--server-side", "-f", str(crd.CRD_PATH))
    c.kubectl("wait", "--for", "condition=Established", "--timeout=60s",
              "crd/docgenerators.gendoc.io")
    # Established comes a moment before the storage answers ("storage is
    # (re)initializing"): wait until a LIST works.
    c.wait_for(lambda: c.try_kubectl("get", "dg", "-A")[0] == 0, "DocGenerators listable")
    return c


CHART = REPO / "charts" / "gendoc"
OPERATOR_RELEASE, OPERATOR_NAMESPACE = "gendoc", "gendoc-system"


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    plane = cluster.plane
    proc = subprocess.run(
        [str(plane.bin_dir / "helm"), "--kubeconfig", str(plane.kubeconfig), *args],
        capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "HELM_CACHE_HOME": str(plane.workdir / "helm-cache"),
             "HELM_CONFIG_HOME": str(plane.workdir / "helm-config"),
             "HELM_DATA_HOME": str(plane.workdir / "helm-data")},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def token_kubeconfig(cluster: Cluster, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the service account (a bound token)."""
    token = cluster.kubectl("create", "token", service_account, "-n", namespace,
                            "--duration=2h").strip()
    plane = cluster.plane
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: gendoc-test
  cluster: {{server: "{plane.server}", certificate-authority: "{plane.workdir / 'ca.crt'}"}}
users:
- name: {service_account}
  user: {{token: "{token}"}}
contexts:
- name: gendoc-test
  context: {{cluster: gendoc-test, user: {service_account}}}
current-context: gendoc-test
""")
    return path


@pytest.fixture(scope="session")
def chart_release(cluster: Cluster) -> str:
    """The chart installed once (release "gendoc" in gendoc-system); its ServiceAccount's user.

    The session's operator runs as that ServiceAccount, so it has exactly the
    chart's RBAC (docs/operator.md, "Permissions"): a rule the chart lacks fails
    this tier, not a cluster. The chart's own operator Deployment stays Pending
    (no kubelet); the test's operator process stands in for it.
    """
    helm(cluster, "install", OPERATOR_RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE,
         "--create-namespace", "--wait=false", "--set", "images.registry=test.invalid/gendoc")
    # The ServiceAccount is the release's full name ("gendoc": release and chart agree).
    return f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_RELEASE}"


@pytest.fixture
def operator_kubeconfig(cluster: Cluster, chart_release: str, tmp_path: Path) -> Path:
    """A kubeconfig of the chart's ServiceAccount, for operators a test starts itself."""
    return token_kubeconfig(cluster, OPERATOR_NAMESPACE, OPERATOR_RELEASE,
                            tmp_path / "operator.kubeconfig")


@pytest.fixture(scope="session")
def operator(cluster: Cluster, chart_release: str,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[GendocProcess]:
    """`gendoc operator`, a real subprocess with only its own RBAC, watching all namespaces."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("operator")
    log = workdir / "operator.log"
    proc = spawn_gendoc(
        ["operator"], port, "/healthz", log=log, timeout=60,
        env={
            "KUBECONFIG": str(token_kubeconfig(cluster, OPERATOR_NAMESPACE, OPERATOR_RELEASE,
                                               workdir / "kubeconfig")),
            "GENDOC_OPERATOR_HEALTH_HOST": "127.0.0.1",
            "GENDOC_OPERATOR_HEALTH_PORT": str(port),
            "GENDOC_OPERATOR_RESYNC_SECONDS": "5",
            "GENDOC_OPERATOR_DEFAULT_SERVICE_IMAGE": "gendoc-service:test",
            "GENDOC_OPERATOR_DEFAULT_CONVERTER_IMAGE": "gendoc-converter:test",
            "GENDOC_OPERATOR_LOG_LEVEL": "info",
        },
    )
    yield proc
    code = proc.stop()
    assert code == 0, f"the operator exited with {code}:\n{proc.logs()[-4000:]}"
    # A 403 for a namespace being deleted is the API server refusing new objects
    # there (a test's namespace going away under a fleet), and one for a quota a
    # test set to zero on purpose (test_operator.py) is the point of that test:
    # neither is a missing RBAC rule.
    expected = ("because it is being terminated", "exceeded quota")
    problems = [line for line in proc.logs().splitlines()
                if ("Traceback" in line or "Patching failed with inconsistencies" in line
                    or "Forbidden" in line or " 403" in line)
                and not any(e in line for e in expected)]
    assert not problems, "the operator logged errors:\n" + proc.logs()[-6000:]


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own; deleted afterwards without waiting."""
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    places = [i for i, item in enumerate(items) if Path(str(item.fspath)).is_relative_to(here)]
    for i in places:
        items[i].add_marker(pytest.mark.kubernetes)
    # Tests without the operator first: once started (a session fixture) it acts on
    # every DocGenerator in the cluster, including those of tests that write a
    # status by hand. A stable sort keeps each group's order.
    ours = sorted((items[i] for i in places),
                  key=lambda item: "operator" in getattr(item, "fixturenames", ()))
    for i, item in zip(places, ours, strict=True):
        items[i] = item


@pytest.fixture(scope="session")
def run_helm(cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """helm against the test control plane: run_helm("install", ..., check=True)."""
    return lambda *args, check=True: helm(cluster, *args, check=check)


@pytest.fixture(scope="session")
def chart() -> Path:
    return CHART
