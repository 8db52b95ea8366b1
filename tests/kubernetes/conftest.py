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
import shutil
import signal
import socket
import ssl
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from gendoc_operator import crd

from gendoc.procs import GendocProcess, free_port, spawn_gendoc
from gendoc.readiness import Abort, wait_until

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("GENDOC_K8S_START_TIMEOUT", "120"))


class ToolsUnavailable(RuntimeError):
    """scripts/k8s-tools.sh could not build or find the binaries."""


def k8s_bin_dir() -> Path:
    """Build (first time, long) or reuse the cached binaries; return their directory."""
    if os.environ.get("K8S_BIN"):
        return Path(os.environ["K8S_BIN"])
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "k8s-tools.sh")],
        capture_output=True, text=True, check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ToolsUnavailable(
            f"scripts/k8s-tools.sh failed with exit code {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    return Path(lines[-1])


def _free_ports(n: int) -> list[int]:
    """n distinct free ports on 127.0.0.1 (held open together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_pki(d: Path) -> None:
    """A throw-away CA, the API server's serving cert, client certs, SA key pair."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=gendoc-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)

    def sign(name: str, subject: str, ext: str) -> None:
        _openssl("req", "-new", *ec, "-subj", subject, "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.crt", cwd=d)

    sign("apiserver", "/CN=kube-apiserver",
         "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
         "keyUsage=critical,digitalSignature,keyEncipherment")
    # system:masters bypasses RBAC, like kubeadm's admin.conf: the tests' own user.
    sign("admin", "/O=system:masters/CN=gendoc-admin", "extendedKeyUsage=clientAuth")
    # The user the bootstrap RBAC policy grants the controller-manager's rights to.
    sign("kcm", "/CN=system:kube-controller-manager", "extendedKeyUsage=clientAuth")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "sa.key", cwd=d)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


@dataclass
class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, in `workdir`."""

    bin_dir: Path
    workdir: Path
    api_port: int = 0
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig),
             "--request-timeout=20s", *args],
            capture_output=True, text=True, input=input, timeout=timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    # -- start ------------------------------------------------------------------
    def start(self) -> None:
        d = self.workdir
        d.mkdir(parents=True, exist_ok=True)
        _make_pki(d)
        etcd_port, peer_port, self.api_port, kcm_port = _free_ports(4)
        self._kubeconfig_for("admin", d / "admin.kubeconfig")
        self._kubeconfig_for("kcm", d / "kcm.kubeconfig")

        self._spawn("etcd", [
            "--name", "gendoc-test", "--data-dir", str(d / "etcd-data"),
            "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
            "--initial-cluster", f"gendoc-test=http://127.0.0.1:{peer_port}",
            # Test data is thrown away: fsync only costs time.
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        self._wait_http("etcd", f"http://127.0.0.1:{etcd_port}/health")

        self._spawn("kube-apiserver", [
            "--etcd-servers", f"http://127.0.0.1:{etcd_port}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.api_port), "--cert-dir", str(d / "apiserver-certs"),
            "--tls-cert-file", str(d / "apiserver.crt"),
            "--tls-private-key-file", str(d / "apiserver.key"),
            "--client-ca-file", str(d / "ca.crt"),
            "--authorization-mode", "RBAC",
            # OpenShift and hardened clusters enable it: only who may update an
            # owner's finalizers may set blockOwnerDeletion on a reference to it.
            "--enable-admission-plugins", "OwnerReferencesPermissionEnforcement",
            "--service-account-issuer", self.server,
            "--service-account-key-file", str(d / "sa.pub"),
            "--service-account-signing-key-file", str(d / "sa.key"),
            "--service-cluster-ip-range", "10.0.0.0/24",
            # No kubelet, no real endpoints: the master-service reconciler has nothing to do.
            "--endpoint-reconciler-type", "none",
            "--allow-privileged=true",
        ])
        self._wait_http("kube-apiserver", f"{self.server}/readyz", client_cert=True)

        self._spawn("kube-controller-manager", [
            "--kubeconfig", str(d / "kcm.kubeconfig"),
            "--authentication-kubeconfig", str(d / "kcm.kubeconfig"),
            "--authorization-kubeconfig", str(d / "kcm.kubeconfig"),
            "--bind-address", "127.0.0.1", "--secure-port", str(kcm_port),
            "--cert-dir", str(d / "kcm-certs"),
            "--service-account-private-key-file", str(d / "sa.key"),
            "--root-ca-file", str(d / "ca.crt"),
            "--use-service-account-credentials=true",
            "--cluster-signing-cert-file", str(d / "ca.crt"),
            "--cluster-signing-key-file", str(d / "ca.key"),
            "--controllers", "*", "--leader-elect=false",
        ])
        self._wait_http("kube-controller-manager", f"https://127.0.0.1:{kcm_port}/healthz",
                        verify=False)

    def _kubeconfig_for(self, user: str, path: Path) -> None:
        d = self.workdir
        path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: gendoc-test
  cluster:
    server: {self.server}
    certificate-authority: {d / 'ca.crt'}
users:
- name: {user}
  user:
    client-certificate: {d / f'{user}.crt'}
    client-key: {d / f'{user}.key'}
contexts:
- name: gendoc-test
  context: {{cluster: gendoc-test, user: {user}}}
current-context: gendoc-test
""")

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        try:
            proc = subprocess.Popen([str(self.bin_dir / name), *args], cwd=self.workdir,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        finally:
            log.close()
        self.procs.append((name, proc))

    def _wait_http(self, name: str, url: str, *, client_cert: bool = False,
                   verify: bool = True) -> None:
        ctx: ssl.SSLContext | None = None
        if url.startswith("https"):
            ctx = ssl.create_default_context(cafile=str(self.workdir / "ca.crt"))
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if client_cert:
                ctx.load_cert_chain(self.workdir / "admin.crt", self.workdir / "admin.key")
        proc = dict(self.procs)[name]

        def ready() -> bool:
            if proc.poll() is not None:
                raise Abort(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            with httpx.Client(verify=ctx if ctx is not None else True, timeout=2) as http:
                return http.get(url).status_code == 200

        wait_until(ready, START_TIMEOUT, interval=0.2, what=f"{name} at {url}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- stop -------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        """Newest first (controller-manager, API server, etcd): SIGTERM, then SIGKILL."""
        with ExitStack() as stack:
            for _name, proc in self.procs:
                stack.callback(_terminate, proc, timeout)
        self.procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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
