"""One Kubernetes node on this machine: containerd 2.x, kubelet, kube-scheduler, kube-proxy.

It joins the control plane of tests/k8s_plane.py, whose API server listens on
the node's address so that pods reach it through the `kubernetes` Service.
Addresses are the tier's own, from the benchmarking range 198.18.0.0/15 that
nothing on this machine routes: the node's /32 on `lo` (the kubelet refuses a
loopback node IP and this kernel has no `dummy` links), pods on the bridge
`gendoc0`, Services on kube-proxy's iptables rules. Pods get no masquerade and
no default route beyond the bridge's gateway, so they reach nothing else.

Everything lives under one fixed directory (RUN_DIR) so that `cleanup()` can
remove the leftovers of a run that was killed: processes (by their binary's
path and by the pods' cgroups), mounts, cgroups, the bridge, the node address,
iptables rules and the few files the kubelet and containerd write elsewhere
(docs/k8s-test-tier.md lists them). One cluster at a time per machine: a lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from k8s_plane import ControlPlane, free_ports, server_ext, sign_cert, terminate

from gendoc.readiness import Abort, wait_until

RUN_DIR = Path(os.environ.get("GENDOC_CLUSTER_DIR", "/var/lib/gendoc-cluster"))
# containerd's content store and snapshots outlive a run: importing and unpacking
# the images (about 2 GB) again each session would cost minutes.
CONTAINERD_ROOT = Path(os.environ.get("GENDOC_CACHE", Path.home() / ".cache" / "gendoc"),
                       "cluster", "containerd-root")
NODE_NAME = "gendoc-node"
NODE_IP = "198.18.0.1"
POD_CIDR = "198.18.1.0/24"
SERVICE_CIDR = "198.18.2.0/24"
API_SERVICE_IP = "198.18.2.1"  # the first address: the `kubernetes` Service
BRIDGE = "gendoc0"
CNI_NETWORK = "gendoc"
CGROUP_ROOT = "gendoc-cluster"  # the kubelet's --cgroup-root: all pods below it
RULE_TAG = "gendoc-cluster"  # comment on the tier's own iptables rules
# The NetworkPolicy agent (kube-router's firewall alone): its chains and ipsets.
POLICY_AGENT = "kube-router"
POLICY_CHAINS = ("KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-")
POLICY_IPSETS = ("KUBE-SRC-", "KUBE-DST-", "kube-router-")
CNI_BIN_DIRS = ["/usr/lib/cni"]  # Debian's containernetworking-plugins
START_TIMEOUT = float(os.environ.get("GENDOC_K8S_START_TIMEOUT", "120"))


def log(msg: str) -> None:
    print(f"cluster: {msg}", flush=True)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


# -- configuration files (pure: values in, text out) ---------------------------
def containerd_config(run_dir: Path, root: Path, pause_image: str) -> str:
    d = run_dir / "containerd"
    return f"""version = 3
root = "{root}"
state = "{d / 'state'}"
# NRI and tracing would listen on fixed paths outside the tier's directory.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{d / 'containerd.sock'}"
[ttrpc]
  address = "{d / 'containerd.sock.ttrpc'}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'opt'}"

[plugins."io.containerd.grpc.v1.cri"]
  # exec/attach/port-forward: only the kubelet on this machine talks to it.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.images"]
  [plugins."io.containerd.cri.v1.images".pinned_images]
    # No registry can be reached: the pause image is built and imported.
    sandbox = "{pause_image}"

[plugins."io.containerd.cri.v1.runtime"]
  # The VM lacks CAP_SYS_RESOURCE: a sandbox's oomScoreAdj of -998 makes runc
  # fail ("can't get final child's PID from pipe"); never go below our own.
  restrict_oom_score_adj = true
  # Network namespaces under the state directory, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = {json.dumps(CNI_BIN_DIRS)}
    conf_dir = "{run_dir / 'cni' / 'conf'}"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "runc"
      # runc's state beside containerd's, not in /run/containerd/runc.
      Root = "{d / 'runc'}"
      SystemdCgroup = false
"""


def cni_config(run_dir: Path) -> str:
    return json.dumps({
        "cniVersion": "1.0.0", "name": CNI_NETWORK,
        "plugins": [{
            "type": "bridge", "bridge": BRIDGE, "isGateway": True,
            # No masquerade: pods reach the node and each other, nothing outside.
            "ipMasq": False, "hairpinMode": True,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                     "routes": [{"dst": "0.0.0.0/0"}],
                     "dataDir": str(run_dir / "cni" / "ipam")},
        }],
    }, indent=2)


def kubelet_config(run_dir: Path, pki: Path, port: int, healthz_port: int) -> str:
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        # This VM has cgroup v1 (hybrid); 1.35+ refuse it unless told.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{CGROUP_ROOT}",
        "containerRuntimeEndpoint": f"unix://{run_dir / 'containerd' / 'containerd.sock'}",
        "address": NODE_IP, "port": port, "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": healthz_port,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        # A shared test machine: evict only when really out of room, never GC images
        # (they cannot be pulled again).
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "podLogsDir": str(run_dir / "pod-logs"),
        "resolvConf": "/etc/resolv.conf", "maxPods": 40,
        "serializeImagePulls": False,
        # Status reaches the API server promptly: tests wait on it.
        "nodeStatusUpdateFrequency": "2s", "syncFrequency": "10s",
        "fileCheckFrequency": "5s",
        "shutdownGracePeriod": "0s",
    }, indent=2)


def kube_proxy_config(kubeconfig: Path, healthz_port: int, metrics_port: int) -> str:
    return json.dumps({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "mode": "iptables", "hostnameOverride": NODE_NAME,
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": POD_CIDR,
        # No sysctl writes: the machine's conntrack settings stay as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False,
                     "syncPeriod": "5s", "minSyncPeriod": "0s"},
    }, indent=2)


def node_pki(pki: Path) -> None:
    """The node's certificates, signed by the control plane's CA."""
    sign_cert(pki, "kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}",
              "extendedKeyUsage=clientAuth")
    sign_cert(pki, "kubelet-serving", f"/CN={NODE_NAME}", server_ext(f"IP:{NODE_IP}"))
    # The API server's identity towards the kubelet (exec, logs).
    sign_cert(pki, "apiserver-kubelet", "/O=system:masters/CN=kube-apiserver-kubelet-client",
              "extendedKeyUsage=clientAuth")
    sign_cert(pki, "scheduler", "/CN=system:kube-scheduler", "extendedKeyUsage=clientAuth")
    sign_cert(pki, "proxy", "/CN=system:kube-proxy", "extendedKeyUsage=clientAuth")


def apiserver_flags(pki: Path) -> dict[str, str]:
    return {
        "--authorization-mode": "Node,RBAC",
        "--enable-admission-plugins": "OwnerReferencesPermissionEnforcement,NodeRestriction",
        "--service-cluster-ip-range": SERVICE_CIDR,
        # Pods reach the API server through the `kubernetes` Service: its endpoint
        # is the node's address.
        "--endpoint-reconciler-type": "lease",
        "--kubelet-client-certificate": str(pki / "apiserver-kubelet.crt"),
        "--kubelet-client-key": str(pki / "apiserver-kubelet.key"),
        "--kubelet-certificate-authority": str(pki / "ca.crt"),
        "--kubelet-preferred-address-types": "InternalIP",
        "--allow-privileged": "false",
    }


# -- the node --------------------------------------------------------------------
@dataclass
class Node:
    bin_dir: Path
    plane: ControlPlane
    pause_image: str
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def run_dir(self) -> Path:
        return RUN_DIR

    @property
    def containerd_sock(self) -> Path:
        return RUN_DIR / "containerd" / "containerd.sock"

    def start(self) -> None:
        d = RUN_DIR
        for sub in ("containerd", "cni/conf", "cni/ipam", "kubelet", "pod-logs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "containerd" / "config.toml").write_text(
            containerd_config(d, CONTAINERD_ROOT, self.pause_image))
        (d / "cni" / "conf" / "10-gendoc.conflist").write_text(cni_config(d))
        self._spawn("containerd", ["--config", str(d / "containerd" / "config.toml")])
        wait_until(self._containerd_up, START_TIMEOUT, interval=0.2, what="containerd")
        # Containers of an earlier session are still recorded in the kept root:
        # their processes are gone; forget them before a kubelet sees them.
        leftovers = self.ctr("containers", "ls", "-q").stdout.split()
        if leftovers:
            self.ctr("containers", "rm", *leftovers)

    def start_kubelet(self) -> None:
        d, pki = RUN_DIR, self.plane.workdir
        khealth, phealth, pmetrics, sport = free_ports(4)
        (kport,) = free_ports(1, NODE_IP)
        for user in ("kubelet", "scheduler", "proxy"):
            self.plane._kubeconfig_for(user, d / f"{user}.kubeconfig")
        (d / "kubelet.json").write_text(kubelet_config(d, pki, kport, khealth))
        self._spawn("kubelet", [
            "--config", str(d / "kubelet.json"), "--kubeconfig", str(d / "kubelet.kubeconfig"),
            "--root-dir", str(d / "kubelet"), "--cert-dir", str(d / "kubelet-certs"),
            "--hostname-override", NODE_NAME, "--node-ip", NODE_IP, "--v", "1",
        ])
        self._spawn("kube-scheduler", [
            "--kubeconfig", str(d / "scheduler.kubeconfig"),
            "--authentication-kubeconfig", str(d / "scheduler.kubeconfig"),
            "--authorization-kubeconfig", str(d / "scheduler.kubeconfig"),
            "--bind-address", "127.0.0.1", "--secure-port", str(sport),
            "--leader-elect=false",
        ])
        (d / "kube-proxy.json").write_text(
            kube_proxy_config(d / "proxy.kubeconfig", phealth, pmetrics))
        self._spawn("kube-proxy", ["--config", str(d / "kube-proxy.json")])
        wait_until(lambda: self._healthy(f"http://127.0.0.1:{khealth}/healthz", "kubelet"),
                   START_TIMEOUT, interval=0.2, what="the kubelet's healthz")
        wait_until(lambda: self._healthy(f"http://127.0.0.1:{phealth}/healthz", "kube-proxy"),
                   START_TIMEOUT, interval=0.2, what="kube-proxy's healthz")

    def start_policy_agent(self) -> None:
        """kube-router's NetworkPolicy controller alone (no routing, no service proxy):
        iptables and ipset, which this kernel has; kube-network-policies needs
        nftables' queue expression, which it lacks (docs/k8s-test-tier.md). Its
        health and metrics servers would listen on every address: off."""
        self._spawn(POLICY_AGENT, [
            "--kubeconfig", str(self.plane.kubeconfig),
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            f"--hostname-override={NODE_NAME}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--enable-ipv6=false", "--health-port=0", "--metrics-port=0",
            "--iptables-sync-period=5s", "--v=1",
        ])

    def policy_agent_rules(self) -> str:
        """The agent's filter rules (`iptables -S`); raises if the agent ran and exited."""
        if POLICY_AGENT in dict(self.procs):
            self._check_alive(POLICY_AGENT)
        listing = run("iptables", "-w", "-S", check=False).stdout.splitlines()
        return "\n".join(line for line in listing if any(c in line for c in POLICY_CHAINS))

    def stop_policy_agent(self) -> None:
        procs = dict(self.procs)
        if POLICY_AGENT in procs:
            terminate(procs[POLICY_AGENT], 10)
            self.procs = [(n, p) for n, p in self.procs if n != POLICY_AGENT]
        remove_policy_agent_rules()

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(str(self.bin_dir / "ctr"), "--address", str(self.containerd_sock),
                   "--namespace", "k8s.io", *args)

    def import_images(self, tars: list[Path]) -> None:
        """Import what containerd lacks (a tar NAME-TAG.tar holds NAME:TAG); forget the rest."""
        wanted = {f"docker.io/library/{t.stem.rsplit('-', 1)[0]}:{t.stem.rsplit('-', 1)[1]}": t
                  for t in tars}
        have = set(self.ctr("images", "ls", "-q").stdout.split())
        for ref, tar in wanted.items():
            if ref not in have:
                self.ctr("images", "import", str(tar))
        stale = [ref for ref in have if ref.startswith("docker.io/library/gendoc-")
                 and ref not in wanted]
        if stale:
            self.ctr("images", "rm", *stale)

    # -- helpers -------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> None:
        env = {**os.environ, "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '')}"}
        log_file = (RUN_DIR / f"{name}.log").open("ab")
        try:
            proc = subprocess.Popen([str(self.bin_dir / name), *args], cwd=RUN_DIR,
                                    stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        finally:
            log_file.close()
        self.procs.append((name, proc))

    def _check_alive(self, name: str) -> None:
        proc = dict(self.procs)[name]
        if proc.poll() is not None:
            raise Abort(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def _containerd_up(self) -> bool:
        self._check_alive("containerd")
        return self.containerd_sock.exists() and run(
            str(self.bin_dir / "ctr"), "--address", str(self.containerd_sock), "version",
            check=False).returncode == 0

    def _healthy(self, url: str, name: str) -> bool:
        import httpx

        self._check_alive(name)
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = RUN_DIR / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """The kubelet first (it would restart what we stop), then everything else."""
        by_name = dict(self.procs)
        for name in ("kubelet", "kube-scheduler", "kube-proxy", POLICY_AGENT):
            if name in by_name:
                terminate(by_name[name], 10)
        kill_pods()
        if "containerd" in by_name:
            terminate(by_name["containerd"], 10)
        self.procs.clear()


# -- clean-up, also of a run that was killed ---------------------------------------
@contextmanager
def machine_lock() -> Iterator[None]:
    """One cluster per machine: kube-proxy's and the kubelet's iptables chains are global."""
    RUN_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{RUN_DIR}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _cgroup_dirs() -> list[Path]:
    """The tier's cgroups in every v1 controller, deepest first."""
    found: list[Path] = []
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        # os.walk ignores directories that vanish under it (the kubelet removes pods').
        found.extend(Path(here) for here, _dirs, _files in os.walk(ctrl / CGROUP_ROOT))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _pids_in_cgroups() -> set[int]:
    pids: set[int] = set()
    for cg in _cgroup_dirs():
        with suppress(OSError):
            pids.update(int(x) for x in (cg / "cgroup.procs").read_text().split())
    return pids


def _exe_under(pid: int, directory: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).is_relative_to(directory)
    except OSError:
        return False


def _our_processes(bin_dir: Path) -> set[int]:
    """Processes of the tier's binaries that name RUN_DIR on their command line.

    The control plane's binaries are shared with the Kubernetes API tier, whose
    processes (other sessions' too) name their own directories: never those.
    The containerd shims re-parent to init, so their parent tells nothing.
    """
    pids = set()
    marker = str(RUN_DIR).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _exe_under(int(entry.name), bin_dir):
            continue
        with suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                pids.add(int(entry.name))
    return pids


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_pods() -> None:
    """Every container process of the tier (all live in its cgroups), and wait for them."""
    for _ in range(50):
        pids = _pids_in_cgroups()
        if not pids:
            return
        _kill(pids)
        time.sleep(0.1)


def _mounts_under(root: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if Path(point).is_relative_to(root):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _iptables_cleanup(prefixes: tuple[str, ...] = ("KUBE-",), tag: str = RULE_TAG) -> None:
    """Rules that jump to chains named with `prefixes` or carry `tag`, then those chains.

    kube-proxy --cleanup removes its own; the kubelet's (KUBE-FIREWALL,
    KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) stay. Other rules of the machine
    are left alone: one rule at a time, no save/restore of whole tables.
    """
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listing = run(tool, "-w", "-t", table, "-S", check=False).stdout.splitlines()
            chains = [line.split()[1] for line in listing
                      if line.startswith("-N ") and line.split()[1].startswith(prefixes)]
            for line in listing:
                parts = line.split()
                if not line.startswith("-A ") or parts[1].startswith(prefixes):
                    continue
                if any(prefix in line for prefix in prefixes) or tag in line:
                    run(tool, "-w", "-t", table, "-D", *_unquote(parts[1:]), check=False)
            for chain in chains:
                run(tool, "-w", "-t", table, "-F", chain, check=False)
            for chain in chains:
                run(tool, "-w", "-t", table, "-X", chain, check=False)


def _unquote(parts: list[str]) -> list[str]:
    """iptables -S quotes comments with spaces: rejoin them into one argument."""
    joined = " ".join(parts)
    return [m.group(1) if m.group(1) is not None else m.group(2)
            for m in re.finditer(r'"([^"]*)"|(\S+)', joined)]


def remove_policy_agent_rules() -> None:
    """kube-router's NetworkPolicy chains and the rules that jump to them, then its ipsets
    (which those rules name). The rest of the tier's rules (kube-proxy's) stay."""
    _iptables_cleanup(POLICY_CHAINS, tag=f"{RULE_TAG}-policy-agent")
    for name in run("ipset", "list", "-n", check=False).stdout.split():
        if name.removeprefix("inet6:").startswith(POLICY_IPSETS):
            run("ipset", "destroy", name, check=False)


def cleanup(bin_dir: Path) -> None:
    """Remove everything the tier may have left, from this run or a killed one."""
    kill_pods()
    _kill(_our_processes(bin_dir))
    wait_until(lambda: not _our_processes(bin_dir), 30, interval=0.1,
               what="the tier's processes gone")
    if (RUN_DIR / "kube-proxy.json").exists():
        run(str(bin_dir / "kube-proxy"), "--cleanup", check=False)
    for point in _mounts_under(RUN_DIR):
        run("umount", "-l", point, check=False)
    for cg in _cgroup_dirs():
        with suppress(OSError):
            cg.rmdir()
    run("ip", "link", "del", BRIDGE, check=False)
    run("ip", "addr", "del", f"{NODE_IP}/32", "dev", "lo", check=False)
    _iptables_cleanup()
    remove_policy_agent_rules()
    # What the kubelet and the CNI plugins write outside RUN_DIR.
    for path in (Path("/var/lib/kubelet/device-plugins/kubelet.sock"),):
        path.unlink(missing_ok=True)
    for link in Path("/var/log/containers").glob("*.log") if Path(
            "/var/log/containers").is_dir() else []:
        with suppress(OSError):
            if Path(os.readlink(link)).is_relative_to(RUN_DIR):
                link.unlink()
    for result in Path("/var/lib/cni/results").glob(f"{CNI_NETWORK}-*"):
        result.unlink(missing_ok=True)
    for directory in ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet",
                      "/var/log/containers", "/var/lib/cni/results", "/var/lib/cni"):
        with suppress(OSError):
            Path(directory).rmdir()  # only when empty: it may be someone else's
    run("rm", "-rf", "--one-file-system", str(RUN_DIR), check=False)


def prepare_host() -> None:
    """The node's address and the one forwarding rule the bridge needs.

    A Docker daemon elsewhere may have set the FORWARD policy to DROP while
    bridged traffic passes iptables (bridge-nf-call-iptables): accept what
    stays within the tier's bridge.
    """
    run("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    # The kubelet wants its --cgroup-root to exist in every controller.
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        top = ctrl / CGROUP_ROOT
        top.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):  # empty in a new cpuset cgroup
            if (ctrl / knob).exists():
                (top / knob).write_text((ctrl / knob).read_text())
    for args in (["-i", BRIDGE], ["-o", BRIDGE]):
        run("iptables", "-w", "-I", "FORWARD", *args, "-m", "comment", "--comment",
            RULE_TAG, "-j", "ACCEPT")


def wait_node_ready(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    def ready() -> bool:
        out = kubectl("get", "node", NODE_NAME, "-o",
                      "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
        return out.returncode == 0 and out.stdout.strip() == "True"

    wait_until(ready, START_TIMEOUT, interval=0.5, what=f"node {NODE_NAME} Ready")
