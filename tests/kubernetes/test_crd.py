"""The DocGenerator CRD as the real API server serves it: schema, defaults, CEL, scale."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gendoc_operator import crd

Cluster = Any  # tests/kubernetes/conftest.py's Cluster (conftest modules are not importable)


def docgenerator(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": crd.API_VERSION, "kind": crd.KIND,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec or {}}


def test_crd_is_established_and_named(cluster: Cluster) -> None:
    stored = json.loads(cluster.kubectl("get", "crd", "docgenerators.gendoc.io", "-o", "json"))
    conditions = {c["type"]: c["status"] for c in stored["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert stored["spec"]["names"]["shortNames"] == ["dg"]
    assert stored["spec"]["scope"] == "Namespaced"
    resources = cluster.kubectl("api-resources", "--api-group=gendoc.io", "-o", "wide")
    assert "docgenerators" in resources and "dg" in resources and "DocGenerator" in resources


def test_the_server_defaults_a_spec_as_the_operator_does(cluster: Cluster, namespace: str) -> None:
    """crd.with_defaults (used by the operator) and the API server read one schema alike."""
    s3 = cluster.apply(docgenerator("s3", namespace, {"templates": {"objectStore": S3}}))
    assert s3["spec"] == crd.with_defaults({"templates": {"objectStore": S3}})
    assert s3["spec"]["templates"]["objectStore"] == {**S3, "prefix": "", "pathStyle": True}
    stored = cluster.apply(docgenerator("plain", namespace, {"templates": {"configMaps": [
        {"name": "invoices"}]}}))
    assert stored["spec"] == crd.with_defaults({"templates": {"configMaps": [
        {"name": "invoices"}]}})
    assert stored["spec"]["autoscaling"] == {
        "enabled": True, "periodSeconds": 15, "scaleDownStabilizationSeconds": 300,
        "tolerance": 0.1}


S3 = {"endpoint": "http://10.20.0.7:7070", "bucket": "templates",
      "credentialsSecret": "s3-credentials"}

INVALID = [
    pytest.param({"service": {"locale": "de DE", "timezone": "Europe/../Berlin"}},
                 ["service.locale: de DE is not a locale identifier",
                  "service.timezone: Europe/../Berlin is not an IANA time zone name"],
                 id="locale-timezone"),
    pytest.param({"templates": {"configMaps": [{"name": "a"}], "objectStore": S3}},
                 ["objectStore replaces configMaps and persistentVolumeClaim"],
                 id="object-store-and-configmaps"),
    pytest.param({"templates": {"objectStore": {**S3, "endpoint": "ftp://10.0.0.1/x"}}},
                 ["ftp://10.0.0.1/x is not an http(s)://HOST[:PORT] URL without a path"],
                 id="object-store-endpoint"),
    pytest.param({"templates": {"objectStore": {**S3, "endpoint": "http://s3:9000/b/k"}}},
                 ["is not an http(s)://HOST[:PORT] URL without a path"],
                 id="object-store-endpoint-path"),
    pytest.param({"templates": {"objectStore": {**S3, "bucket": "My_Bucket",
                                                "prefix": "/abs"}}},
                 ["My_Bucket is not a valid bucket name",
                  "prefix must be relative"], id="object-store-bucket-prefix"),
    pytest.param({"templates": {"objectStore": {"endpoint": "http://10.0.0.1"}}},
                 ["bucket: Required value", "credentialsSecret: Required value"],
                 id="object-store-required"),
    pytest.param({"minReplicas": 5, "maxReplicas": 2},
                 ["minReplicas must be less than or equal to maxReplicas"], id="min-above-max"),
    pytest.param({"target": {"requestsPerMinute": -60}},
                 ["target.requestsPerMinute must be positive"], id="negative-throughput"),
    pytest.param({"target": {"p95LatencySeconds": 0, "maxQueuePerPod": -1}},
                 ["target.p95LatencySeconds must be positive",
                  "target.maxQueuePerPod must be positive"], id="zero-latency-negative-queue"),
    pytest.param({"templates": {"configMaps": [{"name": "Invoices_2024"}]}},
                 ["Invoices_2024 is not a valid ConfigMap name"], id="bad-configmap-name"),
    pytest.param({"templates": {"persistentVolumeClaim": {"claimName": "-store"}}},
                 ["-store is not a valid PersistentVolumeClaim name"], id="bad-pvc-name"),
    pytest.param({"images": {"pullSecrets": ["registry creds"]}},
                 ["registry creds is not a valid Secret name"], id="bad-secret-name"),
    pytest.param({"templates": {"configMaps": [{"name": "a"}],
                                "persistentVolumeClaim": {"claimName": "b"}}},
                 ["give configMaps or persistentVolumeClaim, not both"], id="two-template-sources"),
    pytest.param({"templates": {"configMaps": [{"name": "a", "items": [
        {"key": "k", "path": "../etc/passwd"}]}]}},
                 ["must be relative and must not contain '..'"], id="path-escape"),
    pytest.param({"target": {"capacityPerPodPerMinute": 0}},
                 ["target.capacityPerPodPerMinute must be positive"], id="zero-capacity"),
    pytest.param({"autoscaling": {"tolerance": 1}},
                 ["autoscaling.tolerance must be at least 0 and less than 1"], id="tolerance-1"),
    pytest.param({"service": {"requestTimeoutSeconds": 0}},
                 ["service.requestTimeoutSeconds must be positive"], id="zero-timeout"),
    pytest.param({"resources": {"service": {"requests": {"cpu": "a lot"}}}},
                 ["spec.resources.service.requests.cpu", "should match"], id="bad-quantity"),
]


@pytest.mark.parametrize(("spec", "messages"), INVALID)
def test_invalid_objects_are_rejected_with_the_rules_message(
    cluster: Cluster, namespace: str, spec: dict[str, Any], messages: list[str]
) -> None:
    code, out = cluster.try_kubectl("apply", "-f", "-",
                                    input=json.dumps(docgenerator("bad", namespace, spec)))
    assert code != 0
    assert "is invalid" in out
    for message in messages:
        assert message in out
    assert cluster.get("dg", "bad", namespace) is None


def test_names_that_cannot_name_the_children_are_rejected(cluster: Cluster, namespace: str) -> None:
    code, out = cluster.try_kubectl("apply", "-f", "-",
                                    input=json.dumps(docgenerator("invoices.eu", namespace)))
    assert code != 0
    assert "metadata.name must be a DNS-1035 label" in out


def test_kubectl_scale_uses_the_scale_subresource(cluster: Cluster, namespace: str) -> None:
    cluster.apply(docgenerator("fleet", namespace))
    cluster.kubectl("scale", "-n", namespace, "dg/fleet", "--replicas=3")
    assert cluster.get("dg", "fleet", namespace)["spec"]["replicas"] == 3  # type: ignore[index]

    # status.replicas and status.selector are what the scale subresource reports
    # (what an HPA or `kubectl get --subresource=scale` reads).
    selector = "app.kubernetes.io/instance=fleet,app.kubernetes.io/name=gendoc"
    cluster.kubectl("patch", "-n", namespace, "dg/fleet", "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"replicas": 2, "selector": selector}}))
    scale = json.loads(cluster.kubectl("get", "-n", namespace, "dg/fleet",
                                       "--subresource=scale", "-o", "json"))
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 2, "selector": selector}


def test_status_is_structural_unknown_fields_are_pruned(cluster: Cluster, namespace: str) -> None:
    """Why kopf's bookkeeping lives in annotations: the status schema prunes what it
    does not declare."""
    cluster.apply(docgenerator("pruned", namespace))
    cluster.kubectl("patch", "-n", namespace, "dg/pruned", "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"observedGeneration": 1,
                                                 "kopf": {"progress": {"x": 1}}}}))
    status = cluster.get("dg", "pruned", namespace)["status"]  # type: ignore[index]
    assert status == {"observedGeneration": 1}


def test_printer_columns(cluster: Cluster, namespace: str) -> None:
    cluster.apply(docgenerator("shown", namespace, {"replicas": 2}))
    cluster.kubectl("patch", "-n", namespace, "dg/shown", "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {
                        "readyReplicas": 1, "desiredReplicas": 2,
                        "metrics": {"requestsPerMinute": 240.5, "p95LatencySeconds": 0.42,
                                    "jobsBacklog": 1200}}}))
    header, row = cluster.kubectl("get", "-n", namespace, "dg", "shown").splitlines()
    assert header.split() == ["NAME", "REPLICAS", "READY", "DESIRED", "THROUGHPUT", "P95",
                              "BACKLOG", "AGE"]
    assert row.split()[:7] == ["shown", "2", "1", "2", "240.5", "0.42", "1200"]
    wide = cluster.kubectl("get", "-n", namespace, "dg", "shown", "-o", "wide").splitlines()[0]
    assert "STATUS" in wide.split()
