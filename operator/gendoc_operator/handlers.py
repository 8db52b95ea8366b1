"""kopf registrations: which events lead to a reconcile, and how errors are sorted.

Handlers take only what they use and do no deciding of their own
(reconcile.py, children.py, status.py do). `register` builds them on a fresh
registry with the settings given, so nothing is read from the environment here,
in three groups: the reconcile of a DocGenerator, the background tasks (resync
and autoscaler), and the watches of the children.

DocGenerators are read from one place, kopf's index of them (kept by the watch
kopf runs anyway): a handler gets the object in its event, the background tasks
and the child watches look it up in the index, so the operator makes no LIST or
GET of DocGenerators of its own.
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
from .objects import JSON
from .reconcile import Blocked, InvalidSpec, Reconciler, fleet
from .settings import OperatorSettings

log = logging.getLogger(__name__)

CHILDREN = [  # (group, version, plural) of each kind of child
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("networking.k8s.io", "v1", "networkpolicies"),
]
RETRY_DELAY = 10.0  # seconds before a handler that hit a transient API error runs again
ANNOTATION_PREFIX = "kopf.gendoc.io"


Index = kopf.Index[str, JSON]  # DocGenerator uid -> reconcile.fleet(body)
INDEX = "docgenerators"  # the index's id, and the keyword kopf passes it to handlers as


def _index(kwargs: Mapping[str, Any]) -> Index:
    """The index from a handler's keywords (kopf's handler protocols do not declare it)."""
    index: Index = kwargs[INDEX]
    return index


def configure(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """kopf's own settings, chosen at start-up."""
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
    if ours.namespaces:
        # The namespaces are exact names. Scanning would LIST namespaces cluster-wide,
        # which a namespaced install is not granted: kopf retries it 9 times (about
        # 40 s) before it falls back to these names. Without scanning kopf also stops
        # watching CRDs, so the DocGenerator CRD must exist when the operator starts
        # (Helm installs crds/ first).
        settings.scanning.disabled = True


def _converge(reconciler: Reconciler, dg: JSON, *, strict: bool,
              index: Index | None = None) -> None:
    """Run one reconcile and sort its errors into kopf's kinds (permanent, temporary).

    index: read `dg` anew from it when the reconcile's turn comes (see Reconciler).
    """
    uid = str(dg["metadata"].get("uid"))
    try:
        reconciler.reconcile(dg, newest=None if index is None else lambda: _newest(index, uid))
    except InvalidSpec as exc:
        # Reported in .status (Degraded) and as an event already; a handler
        # raising PermanentError is not retried until the spec changes.
        if strict:
            raise kopf.PermanentError(str(exc)) from exc
    except Blocked as exc:
        # Reported too; fixed outside the DocGenerator (a ConfigMap created, a
        # quota or a permission granted), so kopf's handler tries again. The
        # resync and the child watches only try; the handler's retries carry it.
        if strict:
            raise kopf.TemporaryError(str(exc), delay=RETRY_DELAY) from exc
        log.debug("not converging %s: %s", dg["metadata"]["name"], exc)
    except ApiError as exc:
        if exc.namespace_terminating:
            log.debug("not converging %s: %s", dg["metadata"]["name"], exc.message)
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


def indexed(index: Index) -> list[JSON]:
    """Every DocGenerator the index holds (one value per uid)."""
    return [dg for uid in list(index) for dg in index.get(uid, ())]


def _newest(index: Index, uid: str) -> JSON | None:
    return next(iter(index.get(uid, ())), None)


async def resync_loop(reconciler: Reconciler, index: Index, settings: OperatorSettings,
                      stop: asyncio.Event) -> None:
    """Every resync_seconds, converge every DocGenerator (none being deleted)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.resync_seconds)
        if stop.is_set():
            return
        for dg in indexed(index):
            if stop.is_set():
                return
            if dg["metadata"].get("deletionTimestamp"):
                continue
            try:
                await asyncio.to_thread(_converge, reconciler, dg, strict=False, index=index)
            except Exception as exc:
                log.warning("resync of %s/%s failed: %s", dg["metadata"].get("namespace"),
                            dg["metadata"].get("name"), exc)


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings,
             reconciler: Reconciler) -> None:
    """Every handler of the operator, on `registry`."""
    _register_reconcile(registry, settings, reconciler)
    _register_background(registry, settings, reconciler)
    _register_child_watches(registry, reconciler)


def _register_reconcile(registry: kopf.OperatorRegistry, ours: OperatorSettings,
                        reconciler: Reconciler) -> None:
    """Start-up, login, the index, and the reconcile of each DocGenerator on its events."""

    @kopf.on.startup(registry=registry, id="configure")
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, ours)

    # A registry of our own has none of kopf's default handlers: credentials
    # come from the same place as the handlers' client (in-cluster service
    # account, else $KUBECONFIG), through the kubernetes client library.
    @kopf.on.login(registry=registry, id="login")
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    # The one copy of every DocGenerator, its spec defaulted once per change
    # (entries go on deletion).
    @kopf.index(group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id=INDEX)
    def index_docgenerators(uid: str, body: kopf.Body, **_: Any) -> dict[str, JSON]:
        return {uid: fleet(body)}

    @kopf.on.resume(group=GROUP, version=VERSION, plural=PLURAL,
                  registry=registry, id="converge")
    @kopf.on.create(group=GROUP, version=VERSION, plural=PLURAL,
                  registry=registry, id="converge")
    @kopf.on.update(group=GROUP, version=VERSION, plural=PLURAL,
                  registry=registry, id="converge")
    def converge(body: kopf.Body, **kwargs: Any) -> None:
        # kopf's body is the event the handler started for; under load another
        # event may have come since (the autoscaler's scale): the index has it.
        _converge(reconciler, fleet(body), strict=True, index=_index(kwargs))

    # Children go with their owner by owner references (the garbage collector);
    # optional=True: no finalizer, so deleting never waits for this operator.
    @kopf.on.delete(group=GROUP, version=VERSION, plural=PLURAL, optional=True,
                    registry=registry, id="deleted")
    def deleted(uid: str, name: str, namespace: str | None, **_: Any) -> None:
        reconciler.forget(uid, namespace or "", name)
        log.info("DocGenerator %s/%s deleted; its children follow by garbage collection",
                 namespace, name)


def _register_background(registry: kopf.OperatorRegistry, ours: OperatorSettings,
                         reconciler: Reconciler) -> None:
    """The resync loop and the autoscaler: one task each for the whole operator.

    Not a kopf timer per object: kopf puts a finalizer on every object that has
    timers or daemons, and a finalizer makes deleting a DocGenerator wait for a
    running operator (stuck forever once the operator is uninstalled). Owner
    references and the garbage collector need none.
    """

    # The resync is a safety net for drift no event reported, and a periodic status refresh.
    @kopf.on.startup(registry=registry, id="resync-start")
    async def start_resync(memo: kopf.Memo, **kwargs: Any) -> None:
        memo.resync_stop = asyncio.Event()
        memo.resync_task = asyncio.create_task(
            resync_loop(reconciler, _index(kwargs), ours, memo.resync_stop),
            name="gendoc-resync")

    @kopf.on.cleanup(registry=registry, id="resync-stop")
    async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
        memo.resync_stop.set()
        await asyncio.wait_for(memo.resync_task, timeout=ours.request_timeout + 5)

    @kopf.on.startup(registry=registry, id="autoscaler-start")
    async def start_autoscaler(memo: kopf.Memo, **kwargs: Any) -> None:
        docgenerators = _index(kwargs)
        # Pod IPs are reached directly: no proxy from the environment, ever.
        # At most 32 scrapes at once, whatever the number of pods.
        memo.scrape_client = httpx.AsyncClient(trust_env=False,
                                               limits=httpx.Limits(max_connections=32))
        memo.autoscaler_stop = asyncio.Event()
        autoscaler = Autoscaler(reconciler.kube, ours, memo.scrape_client)
        memo.autoscaler_task = asyncio.create_task(
            autoscaler.run(lambda: indexed(docgenerators), memo.autoscaler_stop),
            name="gendoc-autoscaler")

    @kopf.on.cleanup(registry=registry, id="autoscaler-stop")
    async def stop_autoscaler(memo: kopf.Memo, **_: Any) -> None:
        memo.autoscaler_stop.set()
        try:
            await asyncio.wait_for(memo.autoscaler_task, timeout=ours.request_timeout + 5)
        finally:
            await memo.scrape_client.aclose()


def _register_child_watches(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """Someone edited or deleted a child, or the Deployment's status moved on: converge
    its owner at once, as the index holds it (our own no-op applies cause no events)."""
    for group, version, plural in CHILDREN:
        @kopf.on.event(group=group, version=version, plural=plural,
                       labels={"app.kubernetes.io/managed-by": MANAGED_BY},
                       registry=registry, id=f"child-{plural}")
        def child_changed(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
            if type is None:  # the initial listing: resume handlers cover it
                return
            ref = _owner(body)
            if ref is None:
                return
            # By uid: an owner deleted and re-created under the same name is another one.
            index = _index(kwargs)
            owner = _newest(index, str(ref.get("uid")))
            if owner is None or owner["metadata"].get("deletionTimestamp"):
                return  # gone or being deleted: the garbage collector takes the children
            _converge(reconciler, owner, strict=False, index=index)
