"""`gendoc operator` against the real API server: children, drift, rollouts, status, GC.

There is no kubelet: pods stay Pending, so a fleet is never Ready here; the
status must say so plainly (Ready False / PodsNotReady, Progressing True).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from gendoc_operator import crd
from gendoc_operator.children import SPEC_HASH_ANNOTATION

from gendoc.procs import GendocProcess

Cluster = Any  # tests/kubernetes/conftest.py's Cluster (conftest modules are not importable)

CHILD_KINDS = ["deployment", "service", "poddisruptionbudget", "networkpolicy"]


@pytest.fixture(autouse=True)
def _operator_running(operator: GendocProcess) -> None:
    """Every test here needs the operator; it is started once per session."""


def create(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return cluster.apply({"apiVersion": crd.API_VERSION, "kind": crd.KIND,
                          "metadata": {"name": name, "namespace": namespace}, "spec": spec})


def wait_child(cluster: Cluster, kind: str, name: str, namespace: str,
               check: Any = lambda obj: True, what: str = "") -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        obj = cluster.get(kind, name, namespace)
        return obj if obj is not None and check(obj) else None

    return dict(cluster.wait_for(found, what or f"{kind} {namespace}/{name}"))


def conditions(dg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (dg.get("status") or {}).get("conditions") or []}


def wait_status(cluster: Cluster, name: str, namespace: str, check: Any,
                what: str) -> dict[str, Any]:
    return wait_child(cluster, "dg", name, namespace,
                      lambda dg: (dg.get("status") or {}).get("observedGeneration")
                      == dg["metadata"]["generation"] and check(dg), what)


def wait_degraded(cluster: Cluster, name: str, namespace: str, status: str,
                  what: str = "") -> dict[str, Any]:
    """The DocGenerator once its status is current and its Degraded condition is `status`."""
    return wait_status(cluster, name, namespace, lambda dg: conditions(dg).get(
        "Degraded", {}).get("status") == status, what or f"Degraded {status}")


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = (c for c in deployment["spec"]["template"]["spec"]["containers"]
                if c["name"] == name)
    return dict(found)


def env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", [])}


def test_children_are_created_with_owner_references(cluster: Cluster, namespace: str) -> None:
    # The pods would mount it: without it the fleet is ReferenceNotFound, and no children.
    cluster.kubectl("create", "configmap", "invoice-templates", "-n", namespace,
                    "--from-literal=a=b")
    dg = create(cluster, namespace, "invoices", {
        "replicas": 2,
        "images": {"service": "registry.example/gendoc-service:1.2",
                   "converter": "registry.example/gendoc-converter:1.2"},
        "converter": {"poolSize": 3},
        "templates": {"configMaps": [{"name": "invoice-templates"}]},
        "service": {"concurrency": 12, "queueCapacity": 100, "requestTimeoutSeconds": 20},
    })
    uid = dg["metadata"]["uid"]
    children = {k: wait_child(cluster, k, "invoices", namespace) for k in CHILD_KINDS}
    for kind, child in children.items():
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["apiVersion"], ref["kind"], ref["name"], ref["uid"]) == (
            "gendoc.io/v1alpha1", "DocGenerator", "invoices", uid), kind
        assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gendoc-operator"

    deployment = children["deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    selector = {"app.kubernetes.io/name": "gendoc", "app.kubernetes.io/instance": "invoices",
                "app.kubernetes.io/component": "docgenerator"}
    assert spec["selector"]["matchLabels"] == selector
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}

    service = container(deployment, "gendoc-service")
    assert service["image"] == "registry.example/gendoc-service:1.2"
    assert service["args"] == ["--host", "0.0.0.0", "--port", "8080"]
    assert service["ports"][0]["containerPort"] == 8080
    assert service["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["livenessProbe"]["httpGet"]["path"] == "/healthz"
    wanted_env = {"GENDOC_CONCURRENCY": "12", "GENDOC_QUEUE_CAPACITY": "100",
                  "GENDOC_REQUEST_TIMEOUT": "20", "GENDOC_CONVERTER_URL": "http://127.0.0.1:3000",
                  "GENDOC_STORE_DIR": "/var/lib/gendoc/templates"}
    assert {k: env(service).get(k) for k in wanted_env} == wanted_env
    mounts = {m["mountPath"]: m for m in service["volumeMounts"]}
    assert mounts["/var/lib/gendoc/templates"]["readOnly"] is True

    converter = container(deployment, "gendoc-converter")
    assert converter["image"] == "registry.example/gendoc-converter:1.2"
    assert converter["args"] == ["--host", "127.0.0.1", "--port", "3000", "--pool-size", "3"]
    assert "127.0.0.1:3000/health" in " ".join(converter["livenessProbe"]["exec"]["command"])
    for c in (service, converter):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
        assert c["resources"]["requests"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["templates"]["projected"]["sources"] == [
        {"configMap": {"name": "invoice-templates"}}]

    svc = children["service"]["spec"]
    assert svc["selector"] == selector
    assert [(p["port"], p["targetPort"]) for p in svc["ports"]] == [(8080, "http")]
    pdb = children["poddisruptionbudget"]["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"] == selector
    policy = children["networkpolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == selector
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert not policy.get("egress"), "no egress rule at all: every egress is denied"
    assert policy["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]

    events = json.loads(cluster.kubectl(
        "get", "events", "-n", namespace, "-o", "json",
        "--field-selector", "involvedObject.kind=DocGenerator,involvedObject.name=invoices"))
    reasons = {(e["reason"], e["message"]) for e in events["items"]}
    assert ("Created", "Created Deployment invoices.") in reasons


def test_status_reports_pending_pods_plainly(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "pending", {"replicas": 2})
    dg = wait_status(cluster, "pending", namespace,
                     lambda dg: dg["status"].get("replicas") == 2, "status with 2 replicas")
    status = dg["status"]
    assert status["desiredReplicas"] == 2
    assert status["readyReplicas"] == 0
    assert status["selector"] == ("app.kubernetes.io/component=docgenerator,"
                                  "app.kubernetes.io/instance=pending,app.kubernetes.io/name=gendoc")
    cond = conditions(dg)
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("False", "PodsNotReady")
    assert "0 of 2 pods ready" in cond["Ready"]["message"]
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == ("True", "RollingOut")
    assert (cond["Degraded"]["status"], cond["Degraded"]["reason"]) == ("False", "AsExpected")
    for c in cond.values():
        assert c["observedGeneration"] == dg["metadata"]["generation"]
        assert c["lastTransitionTime"]
    # The pods exist (the controller-manager made them) and stay Pending.
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", status["selector"],
                                      "-o", "json"))["items"]
    assert len(pods) == 2 and {p["status"]["phase"] for p in pods} == {"Pending"}
    # kopf's bookkeeping is in annotations, none in the (structural) status.
    assert set(status) <= {"observedGeneration", "replicas", "readyReplicas", "updatedReplicas",
                           "desiredReplicas", "selector", "specHash", "conditions",
                           "scaleReason", "metrics", "lastScaleTime"}


def test_drift_in_the_deployment_is_corrected(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "drift", {"replicas": 1})
    wait_child(cluster, "deployment", "drift", namespace)
    cluster.kubectl("scale", "-n", namespace, "deployment/drift", "--replicas=4")
    cluster.kubectl("set", "image", "-n", namespace, "deployment/drift",
                    "gendoc-service=evil.example/other:1")
    cluster.kubectl("patch", "-n", namespace, "deployment/drift", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/template/spec/automountServiceAccountToken",
          "value": True}]))
    wait_child(cluster, "deployment", "drift", namespace, lambda d: (
        d["spec"]["replicas"] == 1
        and container(d, "gendoc-service")["image"] == "gendoc-service:test"
        and d["spec"]["template"]["spec"]["automountServiceAccountToken"] is False),
        "the Deployment back as the spec says")


def test_deleted_children_come_back(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "phoenix", {})
    old = {k: wait_child(cluster, k, "phoenix", namespace)["metadata"]["uid"]
           for k in ("deployment", "networkpolicy")}
    for kind in old:
        cluster.kubectl("delete", kind, "phoenix", "-n", namespace, "--wait=false")
    for kind, uid in old.items():
        wait_child(cluster, kind, "phoenix", namespace,
                   lambda obj, uid=uid: obj["metadata"]["uid"] != uid
                   and not obj["metadata"].get("deletionTimestamp"),
                   f"a new {kind}")


def test_spec_change_rolls_the_pods_scaling_does_not(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "roll", {"replicas": 1, "maxReplicas": 4})
    first = wait_child(cluster, "deployment", "roll", namespace)
    first_hash = first["spec"]["template"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION]

    # Scaling (kubectl scale on the DocGenerator) changes replicas, not the pods' spec;
    # a request above maxReplicas is clamped.
    cluster.kubectl("scale", "-n", namespace, "dg/roll", "--replicas=9")
    scaled = wait_child(cluster, "deployment", "roll", namespace,
                        lambda d: d["spec"]["replicas"] == 4, "replicas clamped to 4")
    assert scaled["spec"]["template"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION] \
        == first_hash
    assert scaled["metadata"]["generation"] == first["metadata"]["generation"] + 1

    cluster.kubectl("patch", "-n", namespace, "dg/roll", "--type=merge", "-p",
                    json.dumps({"spec": {"service": {"concurrency": 3}}}))
    rolled = wait_child(
        cluster, "deployment", "roll", namespace,
        lambda d: d["spec"]["template"]["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
        != first_hash, "a new pod template")
    assert env(container(rolled, "gendoc-service"))["GENDOC_CONCURRENCY"] == "3"
    # The Deployment controller starts a new ReplicaSet for the new template.
    cluster.wait_for(lambda: len(json.loads(cluster.kubectl(
        "get", "rs", "-n", namespace, "-l", "app.kubernetes.io/instance=roll", "-o", "json"))
        ["items"]) == 2, "a second ReplicaSet")
    dg = wait_status(cluster, "roll", namespace,
                     lambda dg: dg["status"].get("specHash") != first_hash, "the new specHash")
    assert dg["metadata"]["generation"] == 3
    assert dg["status"]["desiredReplicas"] == 4


def test_deleting_the_docgenerator_collects_its_children(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "gone", {})
    for kind in CHILD_KINDS:
        wait_child(cluster, kind, "gone", namespace)
    assert not cluster.get("dg", "gone", namespace)["metadata"].get("finalizers")  # type: ignore[index]
    cluster.kubectl("delete", "dg", "gone", "-n", namespace, "--wait=true", "--timeout=20s")
    # The garbage collector (kube-controller-manager) follows the owner references.
    cluster.wait_for(lambda: all(cluster.get(k, "gone", namespace) is None for k in CHILD_KINDS),
                     "the children garbage-collected")


def test_a_spec_that_cannot_be_realised_is_degraded(cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "greedy", {"resources": {
        "service": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}})
    dg = wait_status(cluster, "greedy", namespace, lambda dg: "Degraded" in conditions(dg),
                     "a Degraded condition")
    cond = conditions(dg)
    assert (cond["Degraded"]["status"], cond["Degraded"]["reason"]) == ("True", "InvalidSpec")
    assert "requests.memory 2Gi exceeds limits.memory 1Gi" in cond["Degraded"]["message"]
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("False", "InvalidSpec")
    assert cluster.get("deployment", "greedy", namespace) is None
    events = cluster.kubectl("get", "events", "-n", namespace,
                             "--field-selector", "involvedObject.name=greedy")
    assert "InvalidSpec" in events and "Warning" in events

    # Fixing the spec recovers.
    cluster.kubectl("patch", "-n", namespace, "dg/greedy", "--type=merge", "-p", json.dumps(
        {"spec": {"resources": {"service": {"limits": {"memory": "4Gi"}}}}}))
    dg = wait_degraded(cluster, "greedy", namespace, "False",
                       "Degraded False after the fix")
    wait_child(cluster, "deployment", "greedy", namespace)


def test_a_child_the_server_rejects_is_degraded(cluster: Cluster, namespace: str) -> None:
    """The schema's quantity pattern allows a sign; the Deployment's validation does not."""
    create(cluster, namespace, "rejected", {"resources": {"service": {"requests": {"cpu": "-1"}}}})
    dg = wait_degraded(cluster, "rejected", namespace, "True")
    degraded = conditions(dg)["Degraded"]
    assert degraded["reason"] == "ChildRejected"
    assert "The API server rejected the Deployment" in degraded["message"]
    assert "must be greater than or equal to 0" in degraded["message"]
    assert cluster.get("deployment", "rejected", namespace) is None


def test_pods_the_server_rejects_make_the_fleet_degraded(cluster: Cluster, namespace: str) -> None:
    """The Deployment is accepted but its ReplicaSet cannot create pods (the image name
    has a leading space): the Deployment's ReplicaFailure surfaces as Degraded."""
    create(cluster, namespace, "nopods", {"images": {"service": " gendoc:1"}})
    dg = wait_degraded(cluster, "nopods", namespace, "True")
    degraded = conditions(dg)["Degraded"]
    assert degraded["reason"] == "ReplicaFailure"
    assert "FailedCreate" in degraded["message"]
    assert conditions(dg)["Ready"]["status"] == "False"


def events_of(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return list(json.loads(cluster.kubectl(
        "get", "events", "-n", namespace, "-o", "json", "--field-selector",
        f"involvedObject.kind=DocGenerator,involvedObject.name={name}"))["items"])


def test_blockownerdeletion_needs_the_finalizers_right(cluster: Cluster, namespace: str) -> None:
    """The API server enforces OwnerReferencesPermissionEnforcement here: a user who may
    create Deployments but not update the owner's finalizers cannot set blockOwnerDeletion.
    The operator (the chart's rules) does set it (test_children_are_created_with_owner_
    references)."""
    dg = create(cluster, namespace, "owner", {"replicas": 1})
    cluster.kubectl("create", "serviceaccount", "deployer", "-n", namespace)
    cluster.kubectl("create", "role", "deployer", "-n", namespace, "--verb=create",
                    "--resource=deployments.apps")
    cluster.kubectl("create", "rolebinding", "deployer", "-n", namespace, "--role=deployer",
                    f"--serviceaccount={namespace}:deployer")
    orphan = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "claimed", "namespace": namespace, "ownerReferences": [{
            "apiVersion": crd.API_VERSION, "kind": crd.KIND, "name": "owner",
            "uid": dg["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    code, out = cluster.try_kubectl("create", "-f", "-", "--as",
                                    f"system:serviceaccount:{namespace}:deployer",
                                    input=json.dumps(orphan))
    assert code != 0 and "cannot set blockOwnerDeletion" in out, out


def test_a_missing_configmap_is_a_condition_and_an_event(
        cluster: Cluster, namespace: str, operator: GendocProcess) -> None:
    create(cluster, namespace, "nocm", {"templates": {"configMaps": [{"name": "tpl"}]}})
    dg = wait_degraded(cluster, "nocm", namespace, "True")
    degraded = conditions(dg)["Degraded"]
    assert degraded["reason"] == "ReferenceNotFound"
    assert "ConfigMap tpl (templates.configMaps[0].name) does not exist" in degraded["message"]
    assert conditions(dg)["Ready"]["reason"] == "ReferenceNotFound"
    assert cluster.get("deployment", "nocm", namespace) is None  # no pods that cannot start

    def warnings() -> list[dict[str, Any]]:
        return [e for e in events_of(cluster, namespace, "nocm")
                if e["reason"] == "ReferenceNotFound"]

    cluster.wait_for(warnings, "a ReferenceNotFound event")
    # Retried (kopf every 10 s, the resync every 5 s) without a second event: said once.
    cluster.wait_for(lambda: operator.logs().count(f"ConfigMap tpl (templates.configMaps[0]"
                                                   f".name) does not exist in namespace "
                                                   f"{namespace}") >= 2, "a retry")
    assert [(e["type"], e.get("count", 1)) for e in warnings()] == [("Warning", 1)]

    cluster.kubectl("create", "configmap", "tpl", "-n", namespace, "--from-literal=a=b")
    wait_child(cluster, "deployment", "nocm", namespace)
    wait_degraded(cluster, "nocm", namespace, "False",
                  "Degraded False once the ConfigMap exists")


def test_a_forbidden_child_is_a_condition_and_an_event(cluster: Cluster, namespace: str) -> None:
    """A quota of zero Deployments: the API server answers the apply 403 Forbidden (as it
    does for a missing RBAC rule or OwnerReferencesPermissionEnforcement)."""
    cluster.kubectl("create", "quota", "no-deployments", "-n", namespace,
                    "--hard=count/deployments.apps=0")
    cluster.wait_for(lambda: (cluster.get("quota", "no-deployments", namespace) or {}).get(
        "status", {}).get("hard"), "the quota in force")
    create(cluster, namespace, "capped", {})
    dg = wait_degraded(cluster, "capped", namespace, "True")
    degraded = conditions(dg)["Degraded"]
    assert degraded["reason"] == "ChildForbidden"
    assert "The API server forbade the Deployment" in degraded["message"]
    assert "exceeded quota" in degraded["message"]
    assert conditions(dg)["Progressing"]["status"] == "False"
    cluster.wait_for(lambda: [e for e in events_of(cluster, namespace, "capped")
                              if (e["type"], e["reason"]) == ("Warning", "ChildForbidden")],
                     "a ChildForbidden warning event")

    cluster.kubectl("delete", "quota", "no-deployments", "-n", namespace)
    wait_child(cluster, "deployment", "capped", namespace)
    wait_degraded(cluster, "capped", namespace, "False",
                  "Degraded False once the quota is gone")


def _fleet_pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    def pod() -> dict[str, Any] | None:
        items = json.loads(cluster.kubectl(
            "get", "pods", "-n", namespace, "-o", "json", "-l",
            f"app.kubernetes.io/instance={name}"))["items"]
        return items[0] if items else None

    return dict(cluster.wait_for(pod, f"a pod of {name}"))


def test_pods_the_kubelet_cannot_start_are_a_condition_and_an_event(
        cluster: Cluster, namespace: str) -> None:
    """This tier has no kubelet: the test writes what a kubelet writes (a FailedMount
    event, the pod's container statuses) as a stand-in for it. The cluster tier sees
    the real kubelet do it."""
    create(cluster, namespace, "stuck", {"service": {"apiKeysSecret": "missing-keys"}})
    pod = _fleet_pod(cluster, namespace, "stuck")
    meta = pod["metadata"]
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": "stuck.", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                           "namespace": namespace, "uid": meta["uid"]},
        "type": "Warning", "reason": "FailedMount", "source": {"component": "kubelet"},
        "message": 'MountVolume.SetUp failed for volume "api-keys" : secret "missing-keys" '
                   'not found'}))
    dg = wait_degraded(cluster, "stuck", namespace, "True", "Degraded by the missing Secret")
    degraded = conditions(dg)["Degraded"]
    assert degraded["reason"] == "ReferenceNotFound"
    assert 'secret "missing-keys" not found' in degraded["message"]
    cluster.wait_for(lambda: [e for e in events_of(cluster, namespace, "stuck")
                              if (e["type"], e["reason"]) == ("Warning", "ReferenceNotFound")],
                     "a ReferenceNotFound warning event")

    def kubelet_reports(state: dict[str, Any], phase: str = "Pending") -> None:
        statuses = [{"name": c, "image": f"{c}:test", "imageID": "", "ready": False,
                     "restartCount": 0, "state": state}
                    for c in ("gendoc-service", "gendoc-converter")]
        cluster.kubectl("patch", "pod", meta["name"], "-n", namespace, "--subresource=status",
                        "--type=merge", "-p", json.dumps({"status": {
                            "phase": phase, "containerStatuses": statuses}}))

    kubelet_reports({"waiting": {"reason": "ErrImagePull",
                                 "message": 'pull access denied for "gendoc-service:test"'}})
    dg = wait_status(cluster, "stuck", namespace, lambda dg: conditions(dg).get(
        "Degraded", {}).get("reason") == "ImagePullFailed", "Degraded by the image")
    assert "pull access denied" in conditions(dg)["Degraded"]["message"]
    cluster.wait_for(lambda: [e for e in events_of(cluster, namespace, "stuck")
                              if (e["type"], e["reason"]) == ("Warning", "ImagePullFailed")],
                     "an ImagePullFailed warning event")

    kubelet_reports({"running": {"startedAt": "2026-01-01T00:00:00Z"}}, phase="Running")
    wait_degraded(cluster, "stuck", namespace, "False", "Degraded False once the pod runs")


def test_an_object_store_reaches_the_pods_and_their_network_policy(
        cluster: Cluster, namespace: str) -> None:
    create(cluster, namespace, "shared", {"maxReplicas": 4, "templates": {"objectStore": {
        "endpoint": "http://10.20.0.7:7070", "bucket": "templates", "prefix": "billing",
        "credentialsSecret": "s3-credentials"}}})
    deployment = wait_child(cluster, "deployment", "shared", namespace)
    service = container(deployment, "gendoc-service")
    plain = {e["name"]: e.get("value") for e in service["env"]}
    assert plain["GENDOC_STORE_URL"] == "s3://templates/billing"
    assert plain["GENDOC_S3_ENDPOINT_URL"] == "http://10.20.0.7:7070"
    assert plain["GENDOC_FLEET_MAX_REPLICAS"] == "2"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in service["env"]
            if "valueFrom" in e}
    assert refs["GENDOC_S3_SECRET_ACCESS_KEY"] == {"name": "s3-credentials",
                                                   "key": "secretAccessKey"}
    policy = wait_child(cluster, "networkpolicy", "shared", namespace)["spec"]
    assert policy["egress"] == [{"to": [{"ipBlock": {"cidr": "10.20.0.7/32"}}],
                                 "ports": [{"port": 7070, "protocol": "TCP"}]}]
