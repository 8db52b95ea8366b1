"""`gendoc converter`: logging, the app, uvicorn on settings.host:settings.port."""

from __future__ import annotations

import logging

import uvicorn

from gendoc import logs

from .api import create_app
from .settings import ConverterSettings

log = logging.getLogger(__name__)


def run(settings: ConverterSettings) -> int:
    logs.configure(settings.log_level, settings.log_format)
    log.info("converter: %d instances, queue %d, %s:%d", settings.pool_size,
             settings.queue_size, settings.host, settings.port)
    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port, log_config=None,
        # The pool's drain (lifespan shutdown) has its own limit; this one bounds
        # the HTTP requests still open when SIGTERM arrives.
        timeout_graceful_shutdown=int(settings.drain_timeout) or None,
        # Uvicorn's default: one process, one event loop. Parallelism comes from
        # the pool's threads, one per LibreOffice instance.
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.run()
    # A failed lifespan start (no instance came up) leaves uvicorn without
    # `started`: report it as a failure to whoever launched us.
    return 0 if server.started else 1
