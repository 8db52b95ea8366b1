"""kopf registrations: which events lead to a reconcile, and how errors are sorted.

Handlers take only what they use and do no deciding of their own
(reconcile.py, children.py, status.py do). `register` builds them on a fresh
registry with the settings given, so nothing is read from the environment here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import httpx
import kopf

from .autoscaler import Autoscaler
from .children import MANAGED_BY
from .crd import GROUP, KIND, PLURAL, VERSION
from .kubeapi import ApiError
from .reconcile import InvalidSpec, Reconciler, plain
from .settings import OperatorSettings

log = logging.getLogger(__name__)

DG = {"group": GROUP, "version": VERSION, "plural": PLURAL}
CHILDREN = [
    {"group": "apps", "version": "v1", "plural": "deployments"},
    {"group": "", "version": "v1", "plural": "services"},
    {"group": "policy", "version": "v1", "plural": "poddisruptionbudgets"},
    {"group": "networking.k8s.io", "version": "v1", "plural": "networkpolicies"},
]
RETRY_DELAY = 10.0  # seconds before a handler that hit a transient API error runs again
ANNOTATION_PREFIX = "kopf.gendoc.io"


def configure(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """kopf's own settings, chosen at start-up (STYLE.md #8)."""
    # kopf's bookkeeping (handler progress, the last handled spec) goes into
    # annotations, not into .status: the CRD's status schema is structural and
    # the API server prunes unknown fields, and a status subresource makes
    # status writes separate requests anyway. Annotations live in metadata,
    # which is never pruned, so no x-kubernetes-preserve-unknown-fields hole is
    # needed in the schema. Prefix: our group, so `kubectl get -o yaml` shows
    # whose they are.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    # Sync handlers run in this many threads: each reconcile makes blocking API calls.
    settings.execution.max_workers = ours.workers
    # A watch that the server or a proxy drops silently would stall the operator
    # forever; bounded watches are re-established instead (kopf's docs, "Configuration:
    # API timeouts", recommend setting these for long-running operators).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = ours.request_timeout


def _converge(reconciler: Reconciler, body: Mapping[str, Any], *, strict: bool) -> None:
    """Run one reconcile and sort its errors into kopf's kinds (STYLE.md #7)."""
    try:
        reconciler.reconcile(body)
    except InvalidSpec as exc:
        # Reported in .status (Degraded) and as an event already; a handler
        # raising PermanentError is not retried until the spec changes.
        if strict:
            raise kopf.PermanentError(str(exc)) from exc
    except ApiError as exc:
        if exc.namespace_terminating:
            log.debug("not converging %s: %s", body["metadata"]["name"], exc.message)
            return
        if exc.status == 409 or exc.status >= 500 or exc.status in (403, 404, 429):
            raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY) from exc
        raise


def _owner(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(GROUP + "/") \
                and ref.get("controller"):
            return dict(ref)
    return None


async def resync_loop(reconciler: Reconciler, settings: OperatorSettings,
                      stop: asyncio.Event) -> None:
    """Every resync_seconds, converge every DocGenerator (none being deleted)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.resync_seconds)
        if stop.is_set():
            return
        try:
            items = await asyncio.to_thread(reconciler.kube.list_docgenerators,
                                            settings.namespaces)
        except ApiError as exc:
            log.warning("resync: cannot list DocGenerators: %s", exc)
            continue
        for dg in items:
            if stop.is_set():
                return
            if dg["metadata"].get("deletionTimestamp"):
                continue
            try:
                await asyncio.to_thread(_converge, reconciler, dg, strict=False)
            except Exception as exc:
                log.warning("resync of %s/%s failed: %s", dg["metadata"].get("namespace"),
                            dg["metadata"].get("name"), exc)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings,
             reconciler: Reconciler) -> None:
    @kopf.on.startup(registry=registry, id="configure")
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, ours)

    ours = settings

    # A registry of our own has none of kopf's default handlers: credentials
    # come from the same place as the handlers' client (in-cluster service
    # account, else $KUBECONFIG), through the kubernetes client library.
    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.resume(**DG, registry=registry, id="converge")
    @kopf.on.create(**DG, registry=registry, id="converge")
    @kopf.on.update(**DG, registry=registry, id="converge")
    def converge(body: kopf.Body, **_: Any) -> None:
        _converge(reconciler, body, strict=True)

    # A safety net for drift no event reported, and a periodic status refresh:
    # one loop for the whole operator, not a kopf timer per object, because
    # kopf puts a finalizer on every object that has timers or daemons, and a
    # finalizer makes deleting a DocGenerator wait for a running operator
    # (stuck forever once the operator is uninstalled). Owner references and
    # the garbage collector need none.
    @kopf.on.startup(registry=registry, id="resync-start")
    async def start_resync(memo: kopf.Memo, **_: Any) -> None:
        memo.resync_stop = asyncio.Event()
        memo.resync_task = asyncio.create_task(
            resync_loop(reconciler, ours, memo.resync_stop), name="gendoc-resync")

    @kopf.on.cleanup(registry=registry, id="resync-stop")
    async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
        memo.resync_stop.set()
        await asyncio.wait_for(memo.resync_task, timeout=ours.request_timeout + 5)

    # The autoscaler (autoscaler.py): one task for all fleets, for the same
    # reason as the resync loop. It reads the DocGenerators from kopf's index
    # of them (kept by the watch kopf runs anyway; entries go on deletion), so
    # it makes no LIST of its own.
    @kopf.index(**DG, registry=registry, id="docgenerators")
    def index_docgenerators(uid: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        return {uid: plain(body)}

    @kopf.on.startup(registry=registry, id="autoscaler-start")
    async def start_autoscaler(memo: kopf.Memo, docgenerators: kopf.Index[str, Any],
                               **_: Any) -> None:
        # Pod IPs are reached directly: no proxy from the environment, ever.
        # At most 32 scrapes at once, whatever the number of pods.
        memo.scrape_client = httpx.AsyncClient(trust_env=False,
                                               limits=httpx.Limits(max_connections=32))
        memo.autoscaler_stop = asyncio.Event()
        autoscaler = Autoscaler(reconciler.kube, ours, memo.scrape_client)
        memo.autoscaler_task = asyncio.create_task(autoscaler.run(
            lambda: [dg for uid in list(docgenerators) for dg in docgenerators[uid]],
            memo.autoscaler_stop), name="gendoc-autoscaler")

    @kopf.on.cleanup(registry=registry, id="autoscaler-stop")
    async def stop_autoscaler(memo: kopf.Memo, **_: Any) -> None:
        memo.autoscaler_stop.set()
        try:
            await asyncio.wait_for(memo.autoscaler_task, timeout=ours.request_timeout + 5)
        finally:
            await memo.scrape_client.aclose()

    # Someone edited or deleted a child, or the Deployment's status moved on:
    # converge its owner at once (the applied manifest is unchanged, so our own
    # no-op applies cause no further events).
    for child in CHILDREN:
        @kopf.on.event(**child, labels={"app.kubernetes.io/managed-by": MANAGED_BY},
                       registry=registry, id=f"child-{child['plural']}")
        def child_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
            if type is None:  # the initial listing: resume handlers cover it
                return
            ref = _owner(body)
            if ref is None:
                return
            owner = reconciler.kube.read_docgenerator(body["metadata"]["namespace"], ref["name"])
            if owner is None or owner["metadata"].get("deletionTimestamp") \
                    or owner["metadata"].get("uid") != ref.get("uid"):
                return  # being deleted: the garbage collector takes the children
            _converge(reconciler, owner, strict=False)

    # Children go with their owner by owner references (the garbage collector);
    # optional=True: no finalizer, so deleting never waits for this operator.
    @kopf.on.delete(**DG, optional=True, registry=registry, id="deleted")
    def deleted(name: str, namespace: str, **_: Any) -> None:
        log.info("DocGenerator %s/%s deleted; its children follow by garbage collection",
                 namespace, name)
