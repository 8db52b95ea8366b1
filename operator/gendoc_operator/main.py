"""Start-up of the operator: settings in, kopf running, liveness on /healthz."""

from __future__ import annotations

import logging

import kopf

from gendoc import logs

from .handlers import register
from .kubeapi import Kube
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
    kopf.run(
        registry=registry,
        # One operator replica (the chart's Deployment uses the Recreate
        # strategy): kopf's peering would need its own CRDs and RBAC.
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=f"http://{settings.health_host}:{settings.health_port}/healthz",
    )
    return 0
