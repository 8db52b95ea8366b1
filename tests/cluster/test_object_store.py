"""A two-replica fleet that keeps its templates in object storage, and its NetworkPolicy
enforced by a real agent, on a real node (issues 15 and 14).

The S3-compatible server of the store tests (versitygw) runs as a pod of the
restricted namespace; the README's second DocGenerator (`templates.objectStore`)
points at that pod's address, so the operator's NetworkPolicy lets the fleet's
pods reach exactly that address and port. A template uploaded once through the
fleet's Service is then rendered by each pod, addressed by its own IP.

Then a NetworkPolicy agent (kube-router's firewall, a process of the node like
kube-proxy) enforces that policy: the fleet's pods can no longer open a
connection to a listener pod they reached before, clients in the namespace still
reach port 8080, and the pods still reach the object store.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
import yaml
from botocore.config import Config
from cluster.kube import EXAMPLES, KubeCluster, pods_ready
from cluster.node import BRIDGE
from cluster.test_fleet import client_pod
from k8s_plane import REPO

S3_PORT = 7070
API_KEY = "k-" + "7" * 30
RESTRICTED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
              "capabilities": {"drop": ["ALL"]}}


def readme_object_store_docgenerator() -> dict[str, Any]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n(# docgenerator-s3\.yaml\n.*?)```", text, re.S)
    assert block, "README.md lost its object-store DocGenerator"
    return dict(yaml.safe_load(block.group(1)))


@dataclass
class S3Pod:
    ip: str
    access_key: str
    secret_key: str
    region: str

    @property
    def endpoint(self) -> str:
        return f"http://{self.ip}:{S3_PORT}"

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          connect_timeout=5, read_timeout=10))


def serving_pod(kube: KubeCluster, ns: str, name: str, container: dict[str, Any], port: int,
                volumes: list[dict[str, Any]] | None = None) -> str:
    """A pod of one container under the restricted profile, Ready when `port` accepts
    connections; its IP."""
    kube.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                **container, "imagePullPolicy": "Never", "securityContext": RESTRICTED,
                "ports": [{"containerPort": port}],
                "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
            }],
            "volumes": volumes or [],
        },
    })
    try:
        kube.wait_for(lambda: pods_ready(kube, ns, f"app={name}", 1), f"pod {name} Ready")
    except Exception as exc:
        raise AssertionError(f"{exc}\n{kube.diagnostics(ns)}") from exc
    return str(kube.get_json("pod", name, "-n", ns)["status"]["podIP"])


def s3_pod(kube: KubeCluster, ns: str, region: str) -> S3Pod:
    """versitygw as a pod under the restricted profile, its data in an emptyDir."""
    access, secret = "gendoc-cluster", secrets.token_hex(16)
    kube.kubectl("create", "secret", "generic", "s3-root", "-n", ns,
                 f"--from-literal=ROOT_ACCESS_KEY={access}",
                 f"--from-literal=ROOT_SECRET_KEY={secret}")
    ip = serving_pod(kube, ns, "s3", {
        "name": "versitygw", "image": kube.images.tools["s3"],
        "command": ["/usr/local/bin/versitygw", "--port", f":{S3_PORT}",
                    "--region", region, "posix", "/data"],
        "envFrom": [{"secretRef": {"name": "s3-root"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }, S3_PORT, volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}])
    return S3Pod(ip, access, secret, region)


@dataclass
class StoreFleet:
    namespace: str
    name: str
    s3: S3Pod
    bucket: str


def object_store_fleet(kube: KubeCluster, ns: str) -> StoreFleet:
    """The README's object-store DocGenerator, two replicas, against the S3 pod."""
    dg = readme_object_store_docgenerator()
    store = dg["spec"]["templates"]["objectStore"]
    s3 = s3_pod(kube, ns, store.get("region") or "us-east-1")
    s3.client().create_bucket(Bucket=store["bucket"])
    kube.kubectl("create", "secret", "generic", store["credentialsSecret"], "-n", ns,
                 f"--from-literal=accessKeyId={s3.access_key}",
                 f"--from-literal=secretAccessKey={s3.secret_key}")
    kube.kubectl("create", "secret", "generic", dg["spec"]["service"]["apiKeysSecret"],
                 "-n", ns, f"--from-literal=api-keys={API_KEY}")
    dg["metadata"]["namespace"] = ns
    store["endpoint"] = s3.endpoint  # an IP: the NetworkPolicy names exactly it
    # Two replicas on the 2 cores: small CPU requests, no autoscaling, images never pulled.
    dg["spec"].update(minReplicas=2, maxReplicas=2, replicas=2,
                      autoscaling={"enabled": False}, images={"pullPolicy": "Never"},
                      converter={"poolSize": 1},
                      resources={"service": {"requests": {"cpu": "50m", "memory": "256Mi"},
                                             "limits": {"memory": "1Gi"}},
                                 "converter": {"requests": {"cpu": "50m", "memory": "384Mi"},
                                               "limits": {"memory": "1536Mi"}}})
    kube.apply(dg)
    name = dg["metadata"]["name"]
    try:
        kube.wait_for(lambda: pods_ready(kube, ns, f"app.kubernetes.io/instance={name}", 2),
                      f"two pods of {name} Ready", timeout=300)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{kube.diagnostics(ns)}") from exc
    return StoreFleet(ns, name, s3, store["bucket"])


def fleet_pod_ips(kube: KubeCluster, fleet: StoreFleet) -> dict[str, str]:
    pods = kube.get_json("pods", "-n", fleet.namespace, "-l",
                         f"app.kubernetes.io/instance={fleet.name}")["items"]
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in pods
            if p["metadata"].get("deletionTimestamp") is None}


def check_every_pod_serves_an_upload(kube: KubeCluster, fleet: StoreFleet) -> None:
    """Upload through the Service once; each pod renders it, by version and as current."""
    ip = kube.get_json("service", fleet.name, "-n", fleet.namespace)["spec"]["clusterIP"]
    docx = (EXAMPLES / "invoice.docx").read_bytes()
    data = json.loads((EXAMPLES / "invoice.json").read_text())
    name = f"invoice-{secrets.token_hex(3)}"
    with httpx.Client(timeout=60, headers={"X-API-Key": API_KEY}) as http:
        put = http.put(f"http://{ip}:8080/v1/templates/{name}", content=docx, headers={
            "Content-Type": "application/octet-stream"})
        assert put.status_code == 201, put.text
        version = put.json()["version"]
        # The version landed in the bucket (under the DocGenerator's prefix).
        keys = [o["Key"] for o in fleet.s3.client().list_objects_v2(
            Bucket=fleet.bucket).get("Contents", [])]
        assert any(version in k for k in keys), keys

        pods = fleet_pod_ips(kube, fleet)
        assert len(pods) == 2, pods
        for pod, pod_ip in pods.items():
            url = f"http://{pod_ip}:8080/v1/render"
            # A named version is seen at once by every replica.
            for fmt, head in (("pdf", b"%PDF-"), ("docx", b"PK")):
                got = http.post(url, json={"template": name, "version": version,
                                           "format": fmt, "data": data})
                assert got.status_code == 200, (pod, fmt, got.text)
                assert got.content.startswith(head), (pod, fmt, got.content[:8])

            # "current" too, within the store's current TTL (2 s) of the upload.
            def current_renders(url: str = url) -> bool:
                got = http.post(url, json={"template": name, "format": "pdf", "data": data})
                return got.status_code == 200 and got.content.startswith(b"%PDF-")

            kube.wait_for(current_renders, f"{pod} rendering {name}'s current version",
                          timeout=30)


@pytest.fixture(scope="module")
def store_fleet(kube: KubeCluster, release: str) -> Iterator[StoreFleet]:
    ns = kube.restricted_namespace("letters")
    t0 = time.monotonic()
    fleet = object_store_fleet(kube, ns)
    kube.figures["object-store DocGenerator applied -> 2 pods Ready (s)"] = round(
        time.monotonic() - t0, 1)
    yield fleet
    kube.kubectl("delete", "namespace", ns, "--wait=false")


def test_two_replicas_serve_a_template_uploaded_through_the_service(
        kube: KubeCluster, store_fleet: StoreFleet) -> None:
    policy = kube.get_json("networkpolicy", store_fleet.name, "-n", store_fleet.namespace)
    # The operator's policy lets the pods out to the S3 pod's address and port only.
    assert policy["spec"]["egress"] == [{
        "to": [{"ipBlock": {"cidr": f"{store_fleet.s3.ip}/32"}}],
        "ports": [{"protocol": "TCP", "port": S3_PORT}]}], policy["spec"]
    check_every_pod_serves_an_upload(kube, store_fleet)

# -- the NetworkPolicy, enforced by a real agent (issue 14, item 6) ----------------------
LISTENER_PORT = 8000

CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("open")
except OSError as exc:
    print(type(exc).__name__)
"""

CLIENT_CHECKS = """
import json, socket, sys, urllib.request
listener, port, pods = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
out = {}
try:
    socket.create_connection((listener, port), timeout=30).close()
    out["listener"] = "open"
except OSError as exc:
    out["listener"] = type(exc).__name__
for ip in pods:
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/healthz", timeout=30) as r:
            out[ip] = r.status
    except Exception as exc:
        out[ip] = repr(exc)
print(json.dumps(out))
"""


def connect_from(kube: KubeCluster, ns: str, pod: str, host: str, port: int,
                 timeout: float = 10) -> str:
    """"open", or the error a connection from the pod's service container met."""
    return kube.kubectl("exec", pod, "-n", ns, "-c", "gendoc-service", "--",
                        "/opt/gendoc/bin/python", "-c", CONNECT, host, str(port),
                        str(timeout)).strip()


def listener_pod(kube: KubeCluster, ns: str) -> str:
    """A TCP listener in the namespace that no policy selects (the service image's Python)."""
    return serving_pod(kube, ns, "listener", {
        "name": "listener", "image": f"{kube.images.registry}/gendoc-service:{kube.images.tag}",
        "command": ["/opt/gendoc/bin/python", "-m", "http.server", str(LISTENER_PORT),
                    "--bind", "0.0.0.0", "--directory", "/tmp"],
    }, LISTENER_PORT)


@pytest.fixture(scope="module")
def listener(kube: KubeCluster, store_fleet: StoreFleet) -> str:
    return listener_pod(kube, store_fleet.namespace)


@pytest.fixture(scope="module")
def policy_agent(kube: KubeCluster) -> Iterator[None]:
    """kube-router's NetworkPolicy controller as a process of the node, for this module's
    tests only (tests/cluster/node.py: Node.start_policy_agent)."""
    kube.node.start_policy_agent()
    try:
        yield
    finally:
        kube.node.stop_policy_agent()


@pytest.fixture(scope="module")
def bridge_listener() -> Iterator[tuple[str, int]]:
    """A TCP listener on the node's own address on the pods' bridge (their gateway)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE],
                         capture_output=True, text=True, check=True).stdout
    ip = str(ipaddress.ip_interface(out.split()[3]).ip)
    server = socket.create_server((ip, 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield ip, server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def test_without_an_agent_the_policy_is_not_enforced(
        kube: KubeCluster, store_fleet: StoreFleet, listener: str,
        bridge_listener: tuple[str, int]) -> None:
    """The control for the next test: the same connections open when nothing enforces."""
    (pod, *_) = fleet_pod_ips(kube, store_fleet)
    assert kube.node.policy_agent_rules() == ""
    for host, port in ((listener, LISTENER_PORT), bridge_listener):
        assert kube.wait_for(lambda host=host, port=port: connect_from(
            kube, store_fleet.namespace, pod, host, port) == "open",
            f"{pod} reaching {host}:{port} without an agent")


def test_an_agent_enforces_the_operators_policy(
        kube: KubeCluster, store_fleet: StoreFleet, listener: str, policy_agent: None,
        bridge_listener: tuple[str, int]) -> None:
    ns = store_fleet.namespace
    pods = fleet_pod_ips(kube, store_fleet)
    kube.wait_for(lambda: all(ip in kube.node.policy_agent_rules() for ip in pods.values()),
                  "the agent's rules for the fleet's pods")
    # The fleet's pods cannot open a connection out, to a pod or to the node...
    for pod in pods:
        for what, (host, port) in (("a pod", (listener, LISTENER_PORT)),
                                   ("the node", bridge_listener)):
            got = connect_from(kube, ns, pod, host, port)
            assert got != "open", (pod, what, host)
            kube.figures[f"fleet pod -> a listener on {what}, agent on"] = got
    # ... while a client pod of the namespace, which no policy selects, reaches that
    # listener and port 8080 of every fleet pod.
    got = client_pod(kube, ns, "client-policy", CLIENT_CHECKS,
                     [listener, str(LISTENER_PORT), *pods.values()])
    assert got == {"listener": "open", **{ip: 200 for ip in pods.values()}}, got
    # The one egress the policy allows: the object store.
    check_every_pod_serves_an_upload(kube, store_fleet)
