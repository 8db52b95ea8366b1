"""The few API calls the handlers make, as plain dicts in and out.

Children are written with server-side apply (field manager from the settings,
force): applying the same manifest twice is a no-op on the server (no write, no
event, so no feedback loop with our own watch), and a field someone else
changed is taken back. Responses are read as JSON, not as client models, so
what the handlers see is exactly what the API server stores.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .crd import API_VERSION, GROUP, KIND, PLURAL, VERSION
from .objects import JSON

APPLY = "application/apply-patch+yaml"  # JSON is YAML: the client sends the dict as JSON
MERGE = "application/merge-patch+json"  # the scale subresource, as kubectl scale sends it


class ApiError(Exception):
    """A non-2xx answer from the API server, with its Status reason and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def namespace_terminating(self) -> bool:
        """Nothing can be created in a namespace being deleted; its objects go with it."""
        return self.status == 403 and "being terminated" in self.message

    @property
    def rejected(self) -> bool:
        """The server refused the object itself (invalid, forbidden by policy): retrying
        the same object cannot help."""
        return self.status in (400, 422)


def _error(status: int, data: str | bytes | None) -> ApiError:
    text = data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
    try:
        body = json.loads(text)
        return ApiError(status, str(body.get("reason", "")), str(body.get("message", text)))
    except (ValueError, AttributeError):
        return ApiError(status, "", text)


def _answer(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, JSON]:
    """Call a client method with the raw response: its HTTP status and JSON body."""
    try:
        response = call(*args, _preload_content=False, **kwargs)
    except ApiException as exc:
        raise _error(int(exc.status or 0), exc.body) from None
    if not 200 <= response.status < 300:
        raise _error(response.status, response.data)
    return int(response.status), dict(json.loads(response.data)) if response.data else {}


def _json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> JSON:
    return _answer(call, *args, **kwargs)[1]


@dataclass(frozen=True)
class Applied:
    """What a server-side apply answered: the object as stored, and whether it is new
    (201 Created; an apply to an existing object answers 200, changed or not)."""

    created: bool
    body: JSON


@dataclass(frozen=True)
class _Kind:
    read: Callable[..., Any]
    patch: Callable[..., Any]


class Kube:
    """The API calls of the operator (synchronous; kopf runs sync handlers in threads)."""

    def __init__(self, api: client.ApiClient, *, field_manager: str, timeout: float) -> None:
        self.field_manager = field_manager
        self.timeout = timeout
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        self.core = core
        policy, net = client.PolicyV1Api(api), client.NetworkingV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.leases = client.CoordinationV1Api(api)
        # Objects the pods reference: only whether they exist matters (validation.references).
        self.referenced = {"ConfigMap": core.read_namespaced_config_map}
        self.kinds = {
            "Deployment": _Kind(apps.read_namespaced_deployment, apps.patch_namespaced_deployment),
            "Service": _Kind(core.read_namespaced_service, core.patch_namespaced_service),
            "PodDisruptionBudget": _Kind(policy.read_namespaced_pod_disruption_budget,
                                         policy.patch_namespaced_pod_disruption_budget),
            "NetworkPolicy": _Kind(net.read_namespaced_network_policy,
                                   net.patch_namespaced_network_policy),
        }

    @classmethod
    def from_environment(cls, *, field_manager: str, timeout: float) -> Kube:
        """In a pod: its service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
        config.load_config()  # type: ignore[no-untyped-call]  # the client is untyped here
        return cls(client.ApiClient(), field_manager=field_manager, timeout=timeout)

    def read(self, kind: str, namespace: str, name: str) -> JSON | None:
        try:
            return _json(self.kinds[kind].read, name, namespace, _request_timeout=self.timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, obj: Mapping[str, Any]) -> Applied:
        """Server-side apply of a child, forced: its fields are ours."""
        meta = obj["metadata"]
        status, body = _answer(
            self.kinds[obj["kind"]].patch, meta["name"], meta["namespace"], dict(obj),
            field_manager=self.field_manager, force=True, _content_type=APPLY,
            _request_timeout=self.timeout,
        )
        return Applied(created=status == 201, body=body)

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether a ConfigMap the pods mount is there (404: it is not)."""
        try:
            _json(self.referenced[kind], name, namespace, _request_timeout=self.timeout)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def apply_docgenerator_status(self, namespace: str, name: str, status: JSON, *,
                                  manager: str) -> JSON:
        """Server-side apply of the status fields `manager` owns.

        The reconciler and the autoscaler each own their part (conditions is a
        list-map keyed by type, so each owns its own condition types); a JSON
        merge patch would replace the whole conditions list of the other. A field
        a manager stops sending is removed, so nothing stale stays behind.
        """
        obj = {"apiVersion": API_VERSION, "kind": KIND,
               "metadata": {"name": name, "namespace": namespace}, "status": status}
        return _json(self.custom.patch_namespaced_custom_object_status, GROUP, VERSION,
                     namespace, PLURAL, name, obj, field_manager=manager, force=True,
                     _content_type=APPLY, _request_timeout=self.timeout)

    def scale_docgenerator(self, namespace: str, name: str, replicas: int) -> JSON:
        """Set spec.replicas through the scale subresource, as `kubectl scale` and the HPA do."""
        return _json(self.custom.patch_namespaced_custom_object_scale, GROUP, VERSION,
                     namespace, PLURAL, name, {"spec": {"replicas": replicas}},
                     _content_type=MERGE, _request_timeout=self.timeout)

    def read_lease(self, namespace: str, name: str) -> JSON | None:
        """The leader-election Lease (lease.py); None when it does not exist yet."""
        try:
            return _json(self.leases.read_namespaced_lease, name, namespace,
                         _request_timeout=self.timeout)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def write_lease(self, namespace: str, name: str, spec: JSON,
                    resource_version: str | None) -> JSON:
        """Create the Lease (resource_version None) or replace it, conditional on the
        resourceVersion read: a candidate that lost the race gets 409."""
        body: JSON = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        if resource_version is None:
            return _json(self.leases.create_namespaced_lease, namespace, body,
                         _request_timeout=self.timeout)
        body["metadata"]["resourceVersion"] = resource_version
        return _json(self.leases.replace_namespaced_lease, name, namespace, body,
                     _request_timeout=self.timeout)

    def list_pods(self, namespace: str, selector: str) -> list[JSON]:
        return list(_json(self.core.list_namespaced_pod, namespace, label_selector=selector,
                          _request_timeout=self.timeout).get("items") or [])

    def list_events(self, namespace: str, field_selector: str) -> list[JSON]:
        return list(_json(self.core.list_namespaced_event, namespace,
                          field_selector=field_selector,
                          _request_timeout=self.timeout).get("items") or [])

    def post_event(self, obj: Mapping[str, Any], *, type: str, reason: str, message: str,
                   component: str, now: str) -> JSON:
        """A core/v1 Event about `obj` (what `kubectl describe` and `kubectl get events` show)."""
        meta = obj["metadata"]
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": meta["name"], "namespace": meta["namespace"],
                               "uid": meta.get("uid")},
            "type": type, "reason": reason, "message": message[:1024],
            "source": {"component": component},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        return _json(self.core.create_namespaced_event, meta["namespace"], event,
                     _request_timeout=self.timeout)
