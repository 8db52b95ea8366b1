"""A real Kubernetes control plane on this machine, shared by two test tiers.

etcd + kube-apiserver (RBAC and OwnerReferencesPermissionEnforcement on) +
kube-controller-manager, as envtest does: the Kubernetes API tier
(tests/kubernetes) runs it alone on 127.0.0.1; the cluster tier (tests/cluster)
binds the API server to its node's address instead, adds Node authorization
and the kubelet's client certificate, and runs a node beside it. Flags are the
ones docs/k8s-test-tier.md explains; every port is free; every wait is
`wait_until` on a real check.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gendoc.readiness import Abort, wait_until

REPO = Path(__file__).resolve().parents[1]
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


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct free ports on `host` (held open together, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def sign_cert(d: Path, name: str, subject: str, ext: str) -> None:
    """{name}.crt/.key in `d`, signed by d/ca.crt with the x509 extensions `ext`."""
    openssl("req", "-new", *_EC, "-subj", subject, "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
            "-out", f"{name}.crt", cwd=d)


def server_ext(sans: str) -> str:
    return (f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment")


def _make_pki(d: Path, api_sans: str) -> None:
    """A throw-away CA, the API server's serving cert, client certs, SA key pair."""
    openssl("req", "-x509", *_EC, "-days", "2", "-subj", "/CN=gendoc-test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)

    def sign(name: str, subject: str, ext: str) -> None:
        sign_cert(d, name, subject, ext)

    sign("apiserver", "/CN=kube-apiserver", server_ext(api_sans))
    # system:masters bypasses RBAC, like kubeadm's admin.conf: the tests' own user.
    sign("admin", "/O=system:masters/CN=gendoc-admin", "extendedKeyUsage=clientAuth")
    # The user the bootstrap RBAC policy grants the controller-manager's rights to.
    sign("kcm", "/CN=system:kube-controller-manager", "extendedKeyUsage=clientAuth")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "sa.key", cwd=d)
    openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)


@dataclass
class ControlPlane:
    """etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, in `workdir`."""

    bin_dir: Path
    workdir: Path
    api_port: int = 0
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    # Where the API server listens (the cluster tier: its node's address, which
    # pods can reach), extra names in its certificate, and flags that replace or
    # add to the defaults below ("" drops a flag).
    host: str = "127.0.0.1"
    api_sans: tuple[str, ...] = ()
    apiserver_flags: dict[str, str] = field(default_factory=dict)
    # Called with the PKI directory once the CA exists, before anything starts.
    extra_pki: list[Callable[[Path], None]] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.api_port}"

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
        sans = ",".join(["IP:127.0.0.1", "DNS:localhost", f"IP:{self.host}", *self.api_sans])
        _make_pki(d, sans)
        for make in self.extra_pki:
            make(d)
        etcd_port, peer_port, kcm_port = free_ports(3)
        (self.api_port,) = free_ports(1, self.host)
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

        flags = {
            "--etcd-servers": f"http://127.0.0.1:{etcd_port}",
            "--bind-address": self.host, "--advertise-address": self.host,
            "--secure-port": str(self.api_port), "--cert-dir": str(d / "apiserver-certs"),
            "--tls-cert-file": str(d / "apiserver.crt"),
            "--tls-private-key-file": str(d / "apiserver.key"),
            "--client-ca-file": str(d / "ca.crt"),
            "--authorization-mode": "RBAC",
            # OpenShift and hardened clusters enable it: only who may update an
            # owner's finalizers may set blockOwnerDeletion on a reference to it.
            "--enable-admission-plugins": "OwnerReferencesPermissionEnforcement",
            "--service-account-issuer": self.server,
            "--service-account-key-file": str(d / "sa.pub"),
            "--service-account-signing-key-file": str(d / "sa.key"),
            "--service-cluster-ip-range": "10.0.0.0/24",
            # No kubelet, no real endpoints: the master-service reconciler has nothing to do.
            "--endpoint-reconciler-type": "none",
            "--allow-privileged": "true",
        }
        flags.update(self.apiserver_flags)
        self._spawn("kube-apiserver", [f"{k}={v}" for k, v in flags.items() if v != ""])
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
                stack.callback(terminate, proc, timeout)
        self.procs.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


