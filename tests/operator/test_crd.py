"""The CRD source and the operator's defaulting, without a cluster (the Kubernetes
tier checks the same defaults against the real API server)."""

from __future__ import annotations

from typing import Any

from gendoc_operator import crd


def test_names_and_subresources() -> None:
    m = crd.manifest()
    assert m["metadata"]["name"] == "docgenerators.gendoc.io"
    assert m["spec"]["names"]["shortNames"] == ["dg"]
    (version,) = m["spec"]["versions"]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Replicas", "Ready", "Desired", "Throughput", "P95", "Backlog", "Status",
                       "Age"]


def _fields(node: dict[str, Any], path: str = "spec") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for key, sub in (node.get("properties") or {}).items():
        found += _fields(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += _fields(node["items"], f"{path}[]")
    return found


def test_every_spec_field_is_described() -> None:
    """`kubectl explain dg.spec...` has something to say about every field."""
    spec = crd.schema()["properties"]["spec"]
    assert [path for path, node in _fields(spec)
            if "description" not in node and not path.endswith("[]")] == []


def test_no_preserve_unknown_fields_hole_in_the_status() -> None:
    status = crd.schema()["properties"]["status"]
    assert all("x-kubernetes-preserve-unknown-fields" not in node for _, node in _fields(status))


def test_defaults_fill_an_empty_spec() -> None:
    spec = crd.with_defaults({})
    assert (spec["replicas"], spec["minReplicas"], spec["maxReplicas"]) == (1, 1, 10)
    assert spec["autoscaling"] == {"enabled": True, "periodSeconds": 15,
                                   "scaleDownStabilizationSeconds": 300, "tolerance": 0.1}
    assert spec["target"] == {"requestsPerMinute": 300, "p95LatencySeconds": 2,
                              "maxQueuePerPod": 4, "maxJobAgeSeconds": 300}
    assert spec["converter"] == {"poolSize": 2}
    assert spec["service"]["concurrency"] == 4
    assert spec["images"] == {"pullPolicy": "IfNotPresent"}
    assert spec["resources"]["converter"]["limits"] == {"memory": "2Gi"}


def test_defaults_keep_given_values_and_reach_into_given_objects() -> None:
    given = {"replicas": 4, "service": {"concurrency": 2},
             "templates": {"persistentVolumeClaim": {"claimName": "store"}}}
    spec = crd.with_defaults(given)
    assert spec["replicas"] == 4
    assert spec["service"]["concurrency"] == 2
    assert spec["service"]["queueCapacity"] == 64
    assert spec["templates"]["persistentVolumeClaim"] == {"claimName": "store", "readOnly": True}
    assert given == {"replicas": 4, "service": {"concurrency": 2},
                     "templates": {"persistentVolumeClaim": {"claimName": "store"}}}


def test_given_resources_replace_the_default_whole() -> None:
    spec = crd.with_defaults({"resources": {"service": {"requests": {"cpu": "1"}}}})
    assert spec["resources"] == {"service": {"requests": {"cpu": "1"}}}
