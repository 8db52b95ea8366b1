"""The children a DocGenerator turns into, as pure functions of its spec."""

from __future__ import annotations

from typing import Any

import pytest
from gendoc_operator import children, crd
from gendoc_operator.children import Images

DEFAULTS = Images(service="gendoc-service:9", converter="gendoc-converter:9")


def dg(spec: dict[str, Any] | None = None, name: str = "invoices") -> dict[str, Any]:
    return {"apiVersion": crd.API_VERSION, "kind": crd.KIND,
            "metadata": {"name": name, "namespace": "billing", "uid": "u-1", "generation": 1},
            "spec": crd.with_defaults(spec)}


def containers(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"]}


def test_every_child_is_named_labelled_and_selects_the_fleet() -> None:
    objs = children.children_for(dg(), defaults=DEFAULTS)
    assert [o["kind"] for o in objs] == ["Deployment", "Service", "PodDisruptionBudget",
                                         "NetworkPolicy"]
    selector = children.selector_labels(dg())
    for obj in objs:
        assert obj["metadata"]["name"] == "invoices"
        assert obj["metadata"]["namespace"] == "billing"
        assert obj["metadata"]["labels"].items() >= selector.items()
    deployment = objs[0]
    assert deployment["spec"]["selector"]["matchLabels"] == selector
    assert deployment["spec"]["template"]["metadata"]["labels"].items() >= selector.items()
    assert children.selector_string(dg()) == (
        "app.kubernetes.io/component=docgenerator,app.kubernetes.io/instance=invoices,"
        "app.kubernetes.io/name=gendoc")


@pytest.mark.parametrize(("replicas", "low", "high", "expected"),
                         [(3, 1, 10, 3), (0, 1, 10, 1), (50, 2, 8, 8), (2, 2, 2, 2)])
def test_replicas_are_clamped(replicas: int, low: int, high: int, expected: int) -> None:
    spec = {"replicas": replicas, "minReplicas": low, "maxReplicas": high}
    assert children.deployment_for(dg(spec))["spec"]["replicas"] == expected
    assert children.deployment_for(dg(spec), replicas=5)["spec"]["replicas"] == 5


def test_pod_runs_service_and_converter_with_settings_from_the_spec() -> None:
    d = children.deployment_for(dg({"converter": {"poolSize": 3}, "service": {
        "concurrency": 4, "queueCapacity": 10, "requestTimeoutSeconds": 12.5,
        "renderWorkers": 2, "logLevel": "debug"}}), defaults=DEFAULTS)
    c = containers(d)
    service, converter = c["gendoc-service"], c["gendoc-converter"]
    assert service["image"] == "gendoc-service:9"
    assert converter["image"] == "gendoc-converter:9"
    assert service["args"] == ["--host", "0.0.0.0", "--port", "8080"]
    assert converter["args"] == ["--host", "127.0.0.1", "--port", "3000", "--pool-size", "3"]
    assert env(service) == {
        "GENDOC_STORE_DIR": "/var/lib/gendoc/templates", "GENDOC_JOBS_DIR": "/tmp/gendoc-jobs",
        "GENDOC_CONVERTER_URL": "http://127.0.0.1:3000",
        "GENDOC_CONCURRENCY": "4", "GENDOC_QUEUE_CAPACITY": "10",
        "GENDOC_REQUEST_TIMEOUT": "12.5", "GENDOC_RENDER_WORKERS": "2",
        "GENDOC_FLEET_MAX_REPLICAS": "2",
        "GENDOC_LOG_LEVEL": "debug", "GENDOC_LOG_FORMAT": "json"}
    assert env(converter)["HOME"] == "/tmp"
    assert service["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert service["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "/health" in converter["livenessProbe"]["exec"]["command"][-1]
    assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 27


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    for spec in ({}, {"converter": {"gotenberg": {"image": "gotenberg/gotenberg:8"}}}):
        pod = children.deployment_for(dg(spec), defaults=DEFAULTS)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["readOnlyRootFilesystem"] is True
            assert {"name": c["name"].replace("gendoc-", "") + "-tmp",
                    "mountPath": "/tmp"} in c["volumeMounts"]


@pytest.mark.parametrize(("templates", "volume", "read_only"), [
    ({}, {"name": "templates", "emptyDir": {"sizeLimit": "1Gi"}}, False),
    ({"persistentVolumeClaim": {"claimName": "store", "readOnly": False}},
     {"name": "templates", "persistentVolumeClaim": {"claimName": "store", "readOnly": False}},
     False),
    ({"persistentVolumeClaim": {"claimName": "store"}},
     {"name": "templates", "persistentVolumeClaim": {"claimName": "store", "readOnly": True}},
     True),
    ({"configMaps": [{"name": "a"}, {"name": "b", "items": [{"key": "k", "path": "x/current"}]}]},
     {"name": "templates", "projected": {"defaultMode": 0o444, "sources": [
         {"configMap": {"name": "a"}},
         {"configMap": {"name": "b", "items": [{"key": "k", "path": "x/current"}]}}]}},
     True),
])
def test_templates_are_mounted_at_the_store(templates: dict[str, Any], volume: dict[str, Any],
                                            read_only: bool) -> None:
    d = children.deployment_for(dg({"templates": templates}), defaults=DEFAULTS)
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes["templates"] == volume
    (mount,) = (m for m in containers(d)["gendoc-service"]["volumeMounts"]
                if m["name"] == "templates")
    assert mount == {"name": "templates", "mountPath": "/var/lib/gendoc/templates",
                     "readOnly": read_only}


def test_gotenberg_replaces_the_built_in_converter() -> None:
    gotenberg = {"converter": {"gotenberg": {"image": "gotenberg/gotenberg:8"}}}
    d = children.deployment_for(dg(gotenberg), defaults=DEFAULTS)
    converter = containers(d)["gendoc-converter"]
    assert converter["image"] == "gotenberg/gotenberg:8"
    assert converter["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "args" in converter and "--api-port=3000" in converter["args"]


def test_spec_hash_follows_the_pod_not_the_scale() -> None:
    base = children.spec_hash(dg()["spec"])
    assert children.spec_hash(dg({"replicas": 7, "maxReplicas": 9})["spec"]) == base
    assert children.spec_hash(dg({"target": {"requestsPerMinute": 900}})["spec"]) == base
    assert children.spec_hash(dg({"autoscaling": {"enabled": False}})["spec"]) == base
    assert children.spec_hash(dg({"service": {"concurrency": 9}})["spec"]) != base
    assert children.spec_hash(dg({"images": {"service": "x:2"}})["spec"]) != base
    d = children.deployment_for(dg())
    assert d["spec"]["template"]["metadata"]["annotations"][children.SPEC_HASH_ANNOTATION] == base


def test_network_policy_denies_all_egress_and_admits_only_the_service_port() -> None:
    policy = children.network_policy_for(dg())["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in policy
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]


def test_service_and_pdb() -> None:
    service = children.service_for(dg())["spec"]
    assert service["ports"] == [{"name": "http", "port": 8080, "targetPort": "http",
                                 "protocol": "TCP", "appProtocol": "http"}]
    pdb = children.pdb_for(dg())["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_api_keys_come_from_a_secret_mounted_read_only() -> None:
    d = children.deployment_for(dg({"service": {"apiKeysSecret": "invoice-keys"}}),
                                defaults=DEFAULTS)
    service = containers(d)["gendoc-service"]
    assert env(service)["GENDOC_API_KEYS_FILE"] == "/etc/gendoc/api-keys/api-keys"
    mount = next(m for m in service["volumeMounts"] if m["name"] == "api-keys")
    assert mount == {"name": "api-keys", "mountPath": "/etc/gendoc/api-keys", "readOnly": True}
    volume = next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == "api-keys")
    assert volume["secret"]["secretName"] == "invoice-keys"
    assert volume["secret"]["items"] == [{"key": "api-keys", "path": "api-keys"}]
    # Without the field, no key file and no volume.
    plain = children.deployment_for(dg(), defaults=DEFAULTS)
    assert "GENDOC_API_KEYS_FILE" not in env(containers(plain)["gendoc-service"])


STORE = {"endpoint": "http://10.20.0.7:7070", "bucket": "templates", "prefix": "billing/",
         "region": "eu-central-1", "credentialsSecret": "s3-credentials"}


def test_an_object_store_is_wired_into_the_service_container() -> None:
    service = containers(children.deployment_for(
        dg({"maxReplicas": 6, "templates": {"objectStore": STORE}}), defaults=DEFAULTS))[
        "gendoc-service"]
    plain = {e["name"]: e["value"] for e in service["env"] if "value" in e}
    assert {k: plain[k] for k in ("GENDOC_STORE_URL", "GENDOC_S3_ENDPOINT_URL",
                                  "GENDOC_S3_REGION", "GENDOC_S3_PATH_STYLE",
                                  "GENDOC_FLEET_MAX_REPLICAS")} == {
        "GENDOC_STORE_URL": "s3://templates/billing",
        "GENDOC_S3_ENDPOINT_URL": "http://10.20.0.7:7070",
        "GENDOC_S3_REGION": "eu-central-1", "GENDOC_S3_PATH_STYLE": "true",
        "GENDOC_FLEET_MAX_REPLICAS": "2"}
    secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in service["env"]
              if "valueFrom" in e}
    assert secret == {
        "GENDOC_S3_ACCESS_KEY_ID": {"name": "s3-credentials", "key": "accessKeyId"},
        "GENDOC_S3_SECRET_ACCESS_KEY": {"name": "s3-credentials", "key": "secretAccessKey"}}


def test_without_an_object_store_no_s3_setting_and_one_replica_is_one() -> None:
    service = containers(children.deployment_for(dg({"maxReplicas": 1}), defaults=DEFAULTS))[
        "gendoc-service"]
    names = {e["name"] for e in service["env"]}
    assert not any(n.startswith("GENDOC_S3_") or n == "GENDOC_STORE_URL" for n in names)
    assert env(service)["GENDOC_FLEET_MAX_REPLICAS"] == "1"


@pytest.mark.parametrize(("url", "egress"), [
    ("http://10.20.0.7:7070", [{"to": [{"ipBlock": {"cidr": "10.20.0.7/32"}}],
                                "ports": [{"protocol": "TCP", "port": 7070}]}]),
    ("https://[fd00::7]", [{"to": [{"ipBlock": {"cidr": "fd00::7/128"}}],
                            "ports": [{"protocol": "TCP", "port": 443}]}]),
    ("http://minio.storage.svc:9000", [
        {"ports": [{"protocol": "TCP", "port": 9000}]},
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]),
])
def test_egress_goes_to_the_object_store_only(url: str, egress: list[dict[str, Any]]) -> None:
    policy = children.network_policy_for(dg({"templates": {"objectStore": {**STORE,
                                                                            "endpoint": url}}}))
    assert policy["spec"]["egress"] == egress
    assert "egress" not in children.network_policy_for(dg())["spec"]


def test_locale_and_timezone_defaults_reach_the_service() -> None:
    service = containers(children.deployment_for(
        dg({"service": {"locale": "de_DE", "timezone": "Europe/Berlin"}}),
        defaults=DEFAULTS))["gendoc-service"]
    assert env(service)["GENDOC_DEFAULT_LOCALE"] == "de_DE"
    assert env(service)["GENDOC_DEFAULT_TIMEZONE"] == "Europe/Berlin"
    plain = containers(children.deployment_for(dg(), defaults=DEFAULTS))["gendoc-service"]
    assert "GENDOC_DEFAULT_LOCALE" not in env(plain)  # the service's own default
