"""Start-up of the operator: settings in, the Lease held, kopf running, liveness on /healthz."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import uuid

import kopf
from aiohttp import web

from gendoc import logs

from .handlers import register
from .kubeapi import Kube
from .lease import Elector, Lost
from .reconcile import Reconciler
from .settings import OperatorSettings

log = logging.getLogger(__name__)


def run(settings: OperatorSettings) -> int:
    """Run until SIGTERM/SIGINT (kopf handles both and finishes running handlers)."""
    logs.configure(settings.log_level, settings.log_format)
    kube = Kube.from_environment(field_manager=settings.field_manager,
                                 timeout=settings.request_timeout)
    registry = kopf.OperatorRegistry()
    register(registry, settings, Reconciler(kube, settings))
    scope = (f"namespaces {', '.join(settings.namespaces)}" if settings.namespaces
             else "all namespaces")
    log.info("gendoc operator starting: %s, liveness on http://%s:%d/healthz",
             scope, settings.health_host, settings.health_port)
    asyncio.run(_operate(settings, kube, registry))
    return 0


async def _operate(settings: OperatorSettings, kube: Kube,
                   registry: kopf.OperatorRegistry) -> None:
    # Our own liveness endpoint, not kopf's: kopf serves its one only once it
    # runs, and a standby replica (waiting for the Lease, kopf not started) is
    # alive too. It answers from the event loop kopf runs on, so a stuck loop
    # fails it just as kopf's would.
    health = await _serve_health(settings)
    try:
        elector = _elector(settings, kube)
        if elector is None:
            await _kopf(settings, registry)
            return
        if not await _acquire_or_stop(elector):
            return
        keeper = asyncio.create_task(elector.keep(), name="gendoc-lease")
        operator = asyncio.create_task(_kopf(settings, registry), name="gendoc-kopf")
        done, _ = await asyncio.wait({keeper, operator}, return_when=asyncio.FIRST_COMPLETED)
        if keeper in done:
            _give_up(keeper)
        keeper.cancel()
        try:
            await operator  # a graceful stop (SIGTERM): kopf has finished its handlers
        finally:
            # Also when kopf stopped on an error: its handlers have ended either way, and
            # the standby should not wait out the Lease's duration.
            await elector.release()
    finally:
        await health.cleanup()


async def _acquire_or_stop(elector: Elector) -> bool:
    """Wait for the Lease; False when SIGTERM/SIGINT came first. kopf handles those
    signals once it runs; a standby has no kopf yet, and without this a rollout would
    end it by the signal's default action (exit 143) instead of a clean exit."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    acquiring = asyncio.create_task(elector.acquire(), name="gendoc-lease-acquire")
    stopping = asyncio.create_task(stop.wait(), name="gendoc-stop")
    try:
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)  # kopf installs its own
        stopping.cancel()
    if not acquiring.done():
        acquiring.cancel()
        log.info("stopped while standing by for the Lease")
        return False
    acquiring.result()  # its error, if it failed
    return True


def _give_up(keeper: asyncio.Task[None]) -> None:
    """The Lease is lost: stop at once, as client-go's leaders do (klog.Fatal). A graceful
    kopf shutdown waits for running handlers, which would go on writing after another
    replica may have taken over; the Deployment restarts this one as a standby."""
    exc = keeper.exception()
    log.critical("leader election lost, exiting: %s",
                 exc if isinstance(exc, Lost) else repr(exc))
    logging.shutdown()
    os._exit(1)


def _elector(settings: OperatorSettings, kube: Kube) -> Elector | None:
    if not settings.lease_namespace:
        return None
    # The pod's name (its hostname) says which replica leads; the suffix tells a
    # restarted container from its predecessor, whose record may still stand.
    identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    return Elector(kube, namespace=settings.lease_namespace, name=settings.lease_name,
                   identity=identity, duration=settings.lease_duration_seconds,
                   renew_deadline=settings.lease_renew_deadline_seconds,
                   retry_period=settings.lease_retry_period_seconds)


async def _kopf(settings: OperatorSettings, registry: kopf.OperatorRegistry) -> None:
    await kopf.operator(
        registry=registry,
        # Not kopf's peering (its own CRDs, no Lease): the Lease above decides
        # which replica runs kopf at all (lease.py says why).
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
    )


async def _serve_health(settings: OperatorSettings) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.health_host, settings.health_port).start()
    return runner
