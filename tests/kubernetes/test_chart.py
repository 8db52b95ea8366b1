"""The Helm chart against the real API server: lint, strict validation, install,
upgrade, uninstall, least privilege, and the operator running as the chart's
ServiceAccount (the session's `operator` fixture already does: see conftest)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

Cluster = Any  # tests/kubernetes/conftest.py's Cluster (conftest modules are not importable)
Helm = Any


def render(run_helm: Helm, chart: Path, *values: str) -> str:
    return run_helm("template", "t", str(chart), "--namespace", "chart-render",
                    "--kube-version", "1.36.3", *values).stdout


def test_helm_lint_is_clean(run_helm: Helm, chart: Path) -> None:
    out = run_helm("lint", "--strict", str(chart))
    assert "0 chart(s) failed" in out.stdout, out.stdout


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "example.enabled=true"],
        ["--set", "operator.watch=namespaces", "--set", "operator.namespaces={chart-render}",
         "--set", "serviceAccount.annotations.team=docs", "--set", "operator.nodeSelector.pool=ops",
         "--set", "images.pullSecrets={regcred}"],
    ],
    ids=["defaults", "example", "namespaced"],
)
def test_rendered_manifests_pass_strict_server_validation(cluster: Cluster, run_helm: Helm,
                                                         chart: Path, values: list[str]) -> None:
    """The API server itself validates every object (the CRD's schema for the
    DocGenerator), with unknown or duplicate fields an error."""
    manifests = render(run_helm, chart, *values)
    cluster.new_namespace("chart-render")
    code, out = cluster.try_kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                                    input=manifests)
    assert code == 0, out
    kinds = {doc["kind"] for doc in yaml.safe_load_all(manifests) if doc}
    assert {"ServiceAccount", "Deployment", "ClusterRole"} <= kinds


def test_schema_and_contradictions_are_refused(run_helm: Helm, chart: Path) -> None:
    for bad in (["--set", "operator.healthPort=abc"], ["--set", "operator.watch=some"],
                ["--set", "unknown.key=1"], ["--set", "operator.namespaces={a}"],
                ["--set", "example.enabled=true", "--set", "example.minReplicas=5",
                 "--set", "example.maxReplicas=2"]):
        proc = run_helm("template", "t", str(chart), "--kube-version", "1.36.3", *bad, check=False)
        assert proc.returncode != 0, bad


def test_operator_replicas_spread_over_nodes(run_helm: Helm, chart: Path) -> None:
    """Two replicas survive the loss of a node only when they are on two (values.yaml)."""
    deployment = yaml.safe_load(render(run_helm, chart, "--show-only",
                                       "templates/operator.yaml"))
    pod = deployment["spec"]["template"]
    [spread] = pod["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # one node still runs both
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert spread["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()


def test_the_helm_test_pod_renders_and_is_accepted(cluster: Cluster, run_helm: Helm,
                                                   chart: Path) -> None:
    out = render(run_helm, chart, "--set", "example.enabled=true", "--show-only",
                 "templates/tests/test-health.yaml")
    pod = yaml.safe_load(out)
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "/healthz" in pod["spec"]["containers"][0]["args"][0]
    assert "/readyz" in pod["spec"]["containers"][0]["args"][0]
    cluster.new_namespace("chart-render")
    code, msg = cluster.try_kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                                    input=out)
    assert code == 0, msg


def test_install_upgrade_uninstall(cluster: Cluster, run_helm: Helm, chart: Path,
                                   namespace: str) -> None:
    release = "docs"
    installed = run_helm("install", release, str(chart), "--namespace", namespace,
                     "--set", "operator.watch=namespaces", "--set", "example.enabled=true",
                     "--set", "images.registry=test.invalid/gendoc", "--wait=false")
    assert "Next steps" in installed.stdout  # NOTES.txt
    name = f"{release}-gendoc"
    dep = json.loads(cluster.kubectl("get", "deploy", f"{name}-operator", "-n",
                                     namespace, "-o", "json"))
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = pod["containers"][0]
    assert c["image"] == "test.invalid/gendoc/gendoc-operator:0.1.0"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    envs = {e["name"]: e.get("value") for e in c["env"]}
    assert envs["GENDOC_OPERATOR_NAMESPACES"] == namespace
    assert envs["GENDOC_OPERATOR_DEFAULT_SERVICE_IMAGE"] == (
        "test.invalid/gendoc/gendoc-service:0.1.0")
    assert cluster.get("role", f"{name}-operator", namespace) is not None
    assert cluster.get("clusterrole", f"{name}-operator", "") is None  # namespaced mode
    sa = json.loads(cluster.kubectl("get", "sa", name, "-n", namespace, "-o", "json"))
    assert sa["automountServiceAccountToken"] is False
    # The example fleet, with its generated API key Secret (test_operator.py shows
    # what the operator makes of a DocGenerator; this tier file runs before it starts).
    example = json.loads(cluster.kubectl("get", "dg", "invoices", "-n", namespace, "-o", "json"))
    assert example["spec"]["service"]["apiKeysSecret"] == "invoices-api-keys"
    key = json.loads(cluster.kubectl("get", "secret", "invoices-api-keys", "-n",
                                     namespace, "-o", "json"))

    run_helm("upgrade", release, str(chart), "--namespace", namespace, "--reuse-values",
         "--set", "operator.logLevel=debug", "--set", "example.maxReplicas=6", "--wait=false")
    dep = json.loads(cluster.kubectl("get", "deploy", f"{name}-operator", "-n",
                                     namespace, "-o", "json"))
    (container, *_) = dep["spec"]["template"]["spec"]["containers"]
    envs = {e["name"]: e.get("value") for e in container["env"]}
    assert envs["GENDOC_OPERATOR_LOG_LEVEL"] == "debug"
    # Two replicas, one leading by the release's Lease in the release's namespace.
    assert dep["spec"]["replicas"] == 2
    assert envs["GENDOC_OPERATOR_LEASE_NAME"] == f"{name}-operator"
    lease_ns = next(e for e in container["env"] if e["name"] == "GENDOC_OPERATOR_LEASE_NAMESPACE")
    assert lease_ns["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert cluster.get("dg", "invoices", namespace)["spec"]["maxReplicas"] == 6
    again = json.loads(cluster.kubectl("get", "secret", "invoices-api-keys", "-n",
                                       namespace, "-o", "json"))
    assert again["data"] == key["data"]  # the generated key survives upgrades

    run_helm("uninstall", release, "--namespace", namespace, "--wait")
    for kind, obj in (("deploy", f"{name}-operator"), ("sa", name), ("role", f"{name}-operator"),
                      ("role", f"{name}-operator-lease"),
                      ("rolebinding", f"{name}-operator"), ("dg", "invoices"),
                      ("secret", "invoices-api-keys")):
        assert cluster.get(kind, obj, namespace) is None, kind
    assert cluster.get("clusterrole", f"{name}-operator-crds", "") is None
    # Helm never deletes what it installed from crds/: the CRD (and others' fleets) stay.
    assert cluster.try_kubectl("get", "crd", "docgenerators.gendoc.io")[0] == 0


def can_i(cluster: Cluster, who: str, verb: str, resource: str, namespace: str) -> bool:
    """`resource` may name a subresource (docgenerators.gendoc.io/status): kubectl reads
    "a/b" as resource a, object b, so the subresource goes to its own flag."""
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    _, out = cluster.try_kubectl("auth", "can-i", verb, resource, *extra, "-n", namespace,
                                 "--as", who)
    return out.strip().splitlines()[0] == "yes"


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("watch", "docgenerators.gendoc.io", True),
        ("patch", "docgenerators.gendoc.io/status", True),
        ("create", "deployments.apps", True),
        ("patch", "networkpolicies.networking.k8s.io", True),
        ("create", "events", True),
        ("list", "events", True),  # the kubelet's FailedMount on a fleet's pods
        ("list", "pods", True),
        ("patch", "docgenerators.gendoc.io/scale", True),
        # blockOwnerDeletion under OwnerReferencesPermissionEnforcement, and nothing more.
        ("update", "docgenerators.gendoc.io/finalizers", True),
        ("update", "docgenerators.gendoc.io", False),
        ("get", "configmaps", True),
        ("get", "services", False),
        ("get", "pods", False),
        ("watch", "pods", False),
        ("patch", "pods", False),
        ("update", "docgenerators.gendoc.io/scale", False),
        ("get", "secrets", False),
        ("list", "configmaps", False),
        ("delete", "deployments.apps", False),
        ("create", "pods", False),
        ("create", "docgenerators.gendoc.io", False),
        ("delete", "docgenerators.gendoc.io", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", False),
    ],
)
def test_the_chart_grants_least_privilege(cluster: Cluster, chart_release: str, verb: str,
                                          resource: str, allowed: bool) -> None:
    """The session's operator runs as the chart's ServiceAccount and reconciles every
    fleet in test_operator.py: proof the rules suffice. These show they stop there."""
    assert can_i(cluster, chart_release, verb, resource, "some-other-namespace") is allowed


def test_subprocess_helm_is_the_cached_build(cluster: Cluster) -> None:
    version = subprocess.run([str(cluster.plane.bin_dir / "helm"), "version", "--short"],
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith("v3.")


@pytest.mark.parametrize(
    ("verb", "name", "namespace", "allowed"),
    [
        ("get", "gendoc-operator", "gendoc-system", True),
        ("update", "gendoc-operator", "gendoc-system", True),
        ("create", "", "gendoc-system", True),
        # Only its own Lease, only in the release's namespace.
        ("update", "kube-scheduler", "gendoc-system", False),
        ("get", "gendoc-operator", "some-other-namespace", False),
        ("create", "", "some-other-namespace", False),
        ("delete", "gendoc-operator", "gendoc-system", False),
        ("list", "", "gendoc-system", False),
        ("watch", "", "gendoc-system", False),
    ],
)
def test_the_leader_election_lease_is_all_it_may_touch(
        cluster: Cluster, chart_release: str, verb: str, name: str, namespace: str,
        allowed: bool) -> None:
    what = f"leases.coordination.k8s.io/{name}" if name else "leases.coordination.k8s.io"
    _, out = cluster.try_kubectl("auth", "can-i", verb, what, "-n", namespace,
                                 "--as", chart_release)
    assert (out.strip().splitlines()[0] == "yes") is allowed
