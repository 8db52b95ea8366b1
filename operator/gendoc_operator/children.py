"""What a DocGenerator turns into: pure functions from the resource to child manifests.

Nothing here talks to the API server. Each function takes the DocGenerator body
(its `spec` defaulted, see crd.with_defaults) and returns the manifest that the
handlers server-side-apply. Owner references are added by the handlers
(kopf.adopt); names, labels and selectors are decided here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .objects import JSON

SERVICE_PORT = 8080  # the service's port (ServiceSettings.port)
CONVERTER_PORT = 3000  # the converter, on localhost of the pod (ConverterSettings.port)
STORE_DIR = "/var/lib/gendoc/templates"  # images/service/Dockerfile's GENDOC_STORE_DIR
JOBS_DIR = "/tmp/gendoc-jobs"  # on the service-tmp emptyDir
API_KEYS_DIR = "/etc/gendoc/api-keys"  # GENDOC_API_KEYS_FILE points into it
RUN_AS = 10001  # the images' user (images/*/Dockerfile); set here so any image runs non-root

MANAGED_BY = "gendoc-operator"
SPEC_HASH_ANNOTATION = "gendoc.io/spec-hash"
DG_LABEL = "gendoc.io/docgenerator"

# Parts of the spec that shape the pods. Scaling fields (replicas, min/max,
# target, autoscaling) are left out: changing them must not restart pods.
POD_FIELDS = ("images", "converter", "templates", "service", "resources")


def _name(dg: Mapping[str, Any]) -> str:
    return str(dg["metadata"]["name"])


def _namespace(dg: Mapping[str, Any]) -> str:
    return str(dg["metadata"]["namespace"])


def selector_labels(dg: Mapping[str, Any]) -> dict[str, str]:
    """The Deployment's (immutable) selector: this fleet's pods and no others."""
    return {
        "app.kubernetes.io/name": "gendoc",
        "app.kubernetes.io/instance": _name(dg),
        "app.kubernetes.io/component": "docgenerator",
    }


def selector_string(dg: Mapping[str, Any]) -> str:
    """status.selector, for the scale subresource (labelSelectorPath)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(dg).items()))


def labels(dg: Mapping[str, Any]) -> dict[str, str]:
    return {**selector_labels(dg), "app.kubernetes.io/managed-by": MANAGED_BY,
            DG_LABEL: _name(dg)}


def _metadata(dg: Mapping[str, Any]) -> JSON:
    return {"name": _name(dg), "namespace": _namespace(dg), "labels": labels(dg)}


def clamped_replicas(spec: Mapping[str, Any]) -> int:
    """spec.replicas clamped into [minReplicas, maxReplicas]."""
    return max(int(spec["minReplicas"]), min(int(spec["replicas"]), int(spec["maxReplicas"])))


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A short digest of the pod-shaping spec; on the pod template, so a change rolls the pods."""
    relevant = {k: spec.get(k) for k in POD_FIELDS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# -- images -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Images:
    """The operator's default images (settings), used where spec.images leaves one empty."""

    service: str = ""
    converter: str = ""


def images_for(spec: Mapping[str, Any], defaults: Images) -> Images:
    return Images(service=spec["images"].get("service") or defaults.service,
                  converter=spec["images"].get("converter") or defaults.converter)


# -- the pods -------------------------------------------------------------------------------
def _container_security() -> JSON:
    """The restricted Pod Security Standard, per container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def _resources(spec: Mapping[str, Any], container: str) -> JSON:
    rr = (spec.get("resources") or {}).get(container) or {}
    return {k: dict(rr[k]) for k in ("requests", "limits") if rr.get(k)}


def _log_env(spec: Mapping[str, Any]) -> list[JSON]:
    return [
        {"name": "GENDOC_LOG_LEVEL", "value": spec["service"]["logLevel"]},
        {"name": "GENDOC_LOG_FORMAT", "value": spec["service"]["logFormat"]},
    ]


def _templates_volume(spec: Mapping[str, Any]) -> tuple[JSON, bool]:
    """The volume at the store directory, and whether it is mounted read-only."""
    templates = spec.get("templates") or {}
    if templates.get("persistentVolumeClaim"):
        pvc = templates["persistentVolumeClaim"]
        read_only = bool(pvc.get("readOnly", True))
        return {"name": "templates", "persistentVolumeClaim": {
            "claimName": pvc["claimName"], "readOnly": read_only}}, read_only
    if templates.get("configMaps"):
        sources = []
        for cm in templates["configMaps"]:
            source: JSON = {"name": cm["name"]}
            if cm.get("items"):
                source["items"] = [{"key": i["key"], "path": i["path"]} for i in cm["items"]]
            sources.append({"configMap": source})
        return {"name": "templates",
                "projected": {"sources": sources, "defaultMode": 0o444}}, True
    # Uploads then live as long as the pod: fine for a trial, documented.
    return {"name": "templates", "emptyDir": {"sizeLimit": "1Gi"}}, False


# -- the object store ---------------------------------------------------------------------
CREDENTIAL_KEYS = {"GENDOC_S3_ACCESS_KEY_ID": "accessKeyId",
                   "GENDOC_S3_SECRET_ACCESS_KEY": "secretAccessKey"}


def object_store(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return (spec.get("templates") or {}).get("objectStore") or None


def store_url(store: Mapping[str, Any]) -> str:
    """GENDOC_STORE_URL: s3://BUCKET/PREFIX (store_s3.py reads the prefix after the bucket)."""
    prefix = str(store.get("prefix") or "").strip("/")
    return f"s3://{store['bucket']}/{prefix}" if prefix else f"s3://{store['bucket']}"


def _store_env(spec: Mapping[str, Any]) -> list[JSON]:
    """The service's S3 settings (service settings.py: store_url, s3_*); the credentials by
    secretKeyRef, so the operator never reads them and they appear in no manifest."""
    store = object_store(spec)
    if store is None:
        return []
    env: list[JSON] = [
        {"name": "GENDOC_STORE_URL", "value": store_url(store)},
        {"name": "GENDOC_S3_ENDPOINT_URL", "value": str(store["endpoint"]).rstrip("/")},
        {"name": "GENDOC_S3_PATH_STYLE", "value": "true" if store.get("pathStyle", True)
         else "false"},
    ]
    if store.get("region"):
        env.append({"name": "GENDOC_S3_REGION", "value": store["region"]})
    env += [{"name": name, "valueFrom": {"secretKeyRef": {
        "name": store["credentialsSecret"], "key": key}}} for name, key in CREDENTIAL_KEYS.items()]
    return env


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None  # None: a DNS name


def endpoint(url: str) -> Endpoint:
    """Host, port (the scheme's default when absent) and, for an IP literal, its address.

    ValueError for a port outside 1-65535 (validation.problems names it)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:  # above 65535, or not a number
        port = -1
    if port is not None and not 0 < port <= 65535:
        raise ValueError(f"the port of {url} is not one of 1-65535")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    return Endpoint(host, port, ip)


def store_egress(store: Mapping[str, Any]) -> list[JSON]:
    """NetworkPolicy egress rules to the object store, and nothing else.

    An IP endpoint: that address alone (/32, /128), on its port. A DNS name cannot
    be put in a NetworkPolicy (networking.k8s.io/v1 selects pods, namespaces and
    CIDRs, never names): the rule can only be its port, to any address, plus DNS
    (port 53) so the name resolves (docs/operator.md, "NetworkPolicy").
    """
    ep = endpoint(str(store["endpoint"]))
    port = {"protocol": "TCP", "port": ep.port}
    if ep.ip is not None:
        prefix = 32 if ep.ip.version == 4 else 128
        return [{"to": [{"ipBlock": {"cidr": f"{ep.ip}/{prefix}"}}], "ports": [port]}]
    return [{"ports": [port]},
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]


def _http_probe(path: str, port: str, *, period: int, failures: int, timeout: int = 3) -> JSON:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
            "timeoutSeconds": timeout, "failureThreshold": failures}


def service_container(spec: Mapping[str, Any], image: str) -> JSON:
    svc = spec["service"]
    templates_volume, read_only = _templates_volume(spec)
    env = [
        {"name": "GENDOC_STORE_DIR", "value": STORE_DIR},
        # Jobs, idempotency answers and the webhook outbox (without a queue URL) in
        # the pod's /tmp: by default they go under the store directory, which a
        # ConfigMap mounts read-only, and the service would not start.
        {"name": "GENDOC_JOBS_DIR", "value": JOBS_DIR},
        {"name": "GENDOC_CONVERTER_URL", "value": f"http://127.0.0.1:{CONVERTER_PORT}"},
        {"name": "GENDOC_CONCURRENCY", "value": str(svc["concurrency"])},
        {"name": "GENDOC_QUEUE_CAPACITY", "value": str(svc["queueCapacity"])},
        {"name": "GENDOC_REQUEST_TIMEOUT", "value": _number(svc["requestTimeoutSeconds"])},
        # The service asks only whether more than one replica may run (uploads to a
        # per-pod directory are refused then: store-not-shared); the exact maxReplicas
        # would restart every pod on each edit of a scaling field.
        {"name": "GENDOC_FLEET_MAX_REPLICAS", "value": str(min(int(spec["maxReplicas"]), 2))},
        *_store_env(spec),
        *_log_env(spec),
    ]
    if svc.get("renderWorkers") is not None:
        env.append({"name": "GENDOC_RENDER_WORKERS", "value": str(svc["renderWorkers"])})
    if svc.get("locale"):
        env.append({"name": "GENDOC_DEFAULT_LOCALE", "value": svc["locale"]})
    if svc.get("timezone"):
        env.append({"name": "GENDOC_DEFAULT_TIMEZONE", "value": svc["timezone"]})
    mounts = [
        {"name": "service-tmp", "mountPath": "/tmp"},
        {"name": templates_volume["name"], "mountPath": STORE_DIR, "readOnly": read_only},
    ]
    if svc.get("apiKeysSecret"):
        env.append({"name": "GENDOC_API_KEYS_FILE", "value": f"{API_KEYS_DIR}/api-keys"})
        mounts.append({"name": "api-keys", "mountPath": API_KEYS_DIR, "readOnly": True})
    return {
        "name": "gendoc-service",
        "image": image,
        "imagePullPolicy": spec["images"]["pullPolicy"],
        # The image's ENTRYPOINT is `gendoc serve` (images/service/Dockerfile).
        "args": ["--host", "0.0.0.0", "--port", str(SERVICE_PORT)],
        "ports": [{"name": "http", "containerPort": SERVICE_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": _resources(spec, "service"),
        # Start-up allows a minute; then /healthz only says "the process serves"
        # and /readyz gates traffic on the converter and the store (README).
        "startupProbe": _http_probe("/healthz", "http", period=2, failures=30),
        "livenessProbe": _http_probe("/healthz", "http", period=10, failures=3),
        "readinessProbe": _http_probe("/readyz", "http", period=5, failures=2),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
    }


def _converter_health_exec() -> JSON:
    # The built-in converter listens on 127.0.0.1 only and the kubelet probes
    # the pod IP, so an httpGet probe cannot reach it: the probe runs inside the
    # container instead. /usr/bin/python3 is in the image anyway (LibreOffice's
    # `uno` bridge exists only for it). urlopen raises on 503.
    return {"exec": {"command": [
        "/usr/bin/python3", "-I", "-c",
        "import urllib.request as u; "
        f"u.urlopen('http://127.0.0.1:{CONVERTER_PORT}/health', timeout=4)",
    ]}}


def converter_container(spec: Mapping[str, Any], image: str) -> JSON:
    conv = spec["converter"]
    if conv.get("gotenberg"):
        return _gotenberg_container(spec)
    probe = _converter_health_exec()
    return {
        "name": "gendoc-converter",
        "image": image,
        "imagePullPolicy": spec["images"]["pullPolicy"],
        # The image's ENTRYPOINT is tini + `gendoc converter` (images/converter/Dockerfile):
        # tini reaps the soffice processes the pool replaces.
        "args": ["--host", "127.0.0.1", "--port", str(CONVERTER_PORT),
                 "--pool-size", str(conv["poolSize"])],
        # LibreOffice profiles and temporary files go under $HOME=/tmp (an emptyDir).
        "env": [{"name": "HOME", "value": "/tmp"}, *_log_env(spec)],
        "resources": _resources(spec, "converter"),
        # Warming a pool of LibreOffice instances takes seconds: two minutes of grace.
        "startupProbe": {**probe, "periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {**probe, "periodSeconds": 15, "timeoutSeconds": 5,
                          "failureThreshold": 3},
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "converter-tmp", "mountPath": "/tmp"}],
    }


def _gotenberg_container(spec: Mapping[str, Any]) -> JSON:
    """A real Gotenberg 8 (same API); it listens on every interface, the NetworkPolicy
    admits only the service port from outside the pod."""
    return {
        "name": "gendoc-converter",
        "image": spec["converter"]["gotenberg"]["image"],
        "imagePullPolicy": spec["images"]["pullPolicy"],
        "args": ["gotenberg", f"--api-port={CONVERTER_PORT}"],
        "ports": [{"name": "converter", "containerPort": CONVERTER_PORT, "protocol": "TCP"}],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": _resources(spec, "converter"),
        "startupProbe": _http_probe("/health", "converter", period=2, failures=60),
        "livenessProbe": _http_probe("/health", "converter", period=15, failures=3, timeout=5),
        "securityContext": {**_container_security(), "runAsUser": 1001, "runAsGroup": 1001},
        "volumeMounts": [{"name": "converter-tmp", "mountPath": "/tmp"}],
    }


def pod_template(dg: Mapping[str, Any], *, defaults: Images) -> JSON:
    spec = dg["spec"]
    images = images_for(spec, defaults)
    templates_volume, _ = _templates_volume(spec)
    pod: JSON = {
        # No API access from the pods: nothing in them calls Kubernetes.
        "automountServiceAccountToken": False,
        # Service links would put GENDOC_PORT=tcp://... (a Service named gendoc)
        # into the environment, which the GENDOC_-prefixed settings would read.
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # A request may run requestTimeoutSeconds; the service drains on SIGTERM.
        "terminationGracePeriodSeconds": int(float(spec["service"]["requestTimeoutSeconds"])) + 15,
        "containers": [
            service_container(spec, images.service),
            converter_container(spec, images.converter),
        ],
        "volumes": [
            {"name": "service-tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            # LibreOffice profiles (one per pool instance) and conversion files.
            {"name": "converter-tmp", "emptyDir": {"sizeLimit": "2Gi"}},
            templates_volume,
        ],
    }
    if spec["service"].get("apiKeysSecret"):
        # Only the one key, readable by the (non-root) service user alone.
        pod["volumes"].append({"name": "api-keys", "secret": {
            "secretName": spec["service"]["apiKeysSecret"],
            "items": [{"key": "api-keys", "path": "api-keys"}], "defaultMode": 0o440}})
    if spec["images"].get("pullSecrets"):
        pod["imagePullSecrets"] = [{"name": n} for n in spec["images"]["pullSecrets"]]
    return {
        "metadata": {
            "labels": labels(dg),
            "annotations": {SPEC_HASH_ANNOTATION: spec_hash(spec)},
        },
        "spec": pod,
    }


# -- the children ---------------------------------------------------------------------------
def deployment_for(dg: Mapping[str, Any], *, defaults: Images = Images(),
                   replicas: int | None = None) -> JSON:
    """The fleet. `replicas` defaults to spec.replicas clamped to [min, max]."""
    spec = dg["spec"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(dg),
        "spec": {
            "replicas": clamped_replicas(spec) if replicas is None else replicas,
            "selector": {"matchLabels": selector_labels(dg)},
            # Surge, never reduce capacity: a new pod needs seconds to warm LibreOffice.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "revisionHistoryLimit": 5,
            "template": pod_template(dg, defaults=defaults),
        },
    }


def service_for(dg: Mapping[str, Any]) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(dg),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(dg),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http",
                       "protocol": "TCP", "appProtocol": "http"}],
        },
    }


def pdb_for(dg: Mapping[str, Any]) -> JSON:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(dg),
        "spec": {
            # One pod at a time, at any size: with one replica a drain still
            # proceeds (minAvailable: 1 would block it forever).
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(dg)},
            # Pods that are not ready serve nothing; evicting them never hurts.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def network_policy_for(dg: Mapping[str, Any]) -> JSON:
    """Deny the pods every egress (no DNS either: they only talk to 127.0.0.1) but to
    the object store when the spec names one; admit ingress only to the service port
    (the converter's port stays private)."""
    store = object_store(dg["spec"])
    policy: JSON = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(dg),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(dg)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": SERVICE_PORT}]}],
        },
    }
    if store is not None:
        policy["spec"]["egress"] = store_egress(store)
    return policy


def children_for(dg: Mapping[str, Any], *, defaults: Images = Images()) -> list[JSON]:
    """Every child, Deployment first (its status feeds the DocGenerator's)."""
    return [deployment_for(dg, defaults=defaults), service_for(dg), pdb_for(dg),
            network_policy_for(dg)]


def _number(value: float | int) -> str:
    """30.0 -> '30', 2.5 -> '2.5': what a person would write in the environment."""
    return f"{float(value):g}"
