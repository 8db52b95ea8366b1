"""Everything a request handler uses, built once in lifespan and reached through `of`.

Construction (`Services.build`) is apart from start-up and shutdown (`running`):
the store is opened and the render workers started when the app starts, and on
shutdown the workers stop before the converter client closes (requests still
finishing may need both until uvicorn's graceful shutdown ends).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.types import Scope

from . import docxpkg
from .admission import Admission
from .backends import RenderBackend, ThreadBackend
from .converter_client import ConverterClient
from .idempotency import IdempotencyStore, open_idempotency
from .metrics import ServiceMetrics
from .outbox import open_outbox
from .ratelimit import RateLimiter
from .rendering import Renderer
from .settings import MiB, ServiceSettings
from .store import TemplateStore, open_store
from .webhooks import SenderConfig, WebhookSender
from .workers import ProcessBackend, WorkerLimits

if TYPE_CHECKING:
    from .jobs import Jobs

STATE_KEY = "services"  # the lifespan state's one entry


@dataclass(frozen=True)
class Services:
    settings: ServiceSettings
    metrics: ServiceMetrics
    store: TemplateStore
    inspector: Renderer  # compiles uploads and lists their variables, in this process
    backend: RenderBackend  # renders documents (worker processes or threads)
    converter: ConverterClient | None  # None: no converter, PDF output is 501
    admission: Admission
    limiter: RateLimiter | None  # None: no per-client rate limit
    package_limits: docxpkg.PackageLimits
    idempotency: IdempotencyStore  # answers kept for Idempotency-Key retries
    jobs: Jobs  # async jobs: their queue, results, and this process's job workers
    webhooks: WebhookSender  # jobs' signed webhooks, kept in an outbox until delivered

    @classmethod
    def of(cls, request: Request) -> Services:
        found = getattr(request.state, STATE_KEY, None)
        if not isinstance(found, cls):
            raise RuntimeError("the app was started without its lifespan")
        return found

    @classmethod
    def in_scope(cls, scope: Scope) -> Services:
        """The same for middleware, which has the ASGI scope rather than a request."""
        found = scope.get("state", {}).get(STATE_KEY)
        if not isinstance(found, cls):
            raise RuntimeError("the app was started without its lifespan")
        return found

    @classmethod
    def build(cls, settings: ServiceSettings, metrics: ServiceMetrics) -> Services:
        # The caches share cache_bytes: half for template bytes in the store, half
        # for compiled Jinja parts (per renderer, so per worker process too).
        from .jobs import Jobs  # jobs.py uses the pipeline, which uses Services

        half = settings.cache_bytes // 2
        inspector = Renderer(half)
        jobs = Jobs.build(settings)
        webhooks = WebhookSender(SenderConfig.of(settings),
                                 open_outbox(settings.queue_url, settings.jobs_path()),
                                 jobs.queue.add_delivery)  # every attempt on the job
        jobs.on_finished.append(webhooks.job_finished)
        jobs.on_items.append(webhooks.items_done)
        return cls(
            settings=settings,
            metrics=metrics,
            store=open_store(settings, cache_bytes=half),
            inspector=inspector,
            backend=_backend(settings, inspector),
            converter=_converter(settings),
            admission=Admission(settings.concurrency, settings.queue_capacity, metrics,
                                max_wait=settings.max_queue_wait),
            limiter=(RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
                     if settings.rate_limit_per_minute > 0 else None),
            package_limits=docxpkg.PackageLimits.of(settings),
            idempotency=open_idempotency(settings.queue_url, settings.jobs_path()),
            jobs=jobs,
            webhooks=webhooks,
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Services]:
        self.store.open()
        await self.backend.start()
        await self.jobs.start(self)
        self.webhooks.start(self.jobs.queue)
        try:
            yield self
        finally:
            await self.webhooks.close()  # before the queue it records attempts in
            await self.jobs.stop()
            await self.backend.close()
            if self.converter is not None:
                await self.converter.aclose()
            self.idempotency.close()


def _backend(settings: ServiceSettings, renderer: Renderer) -> RenderBackend:
    if settings.render_workers <= 0:
        return ThreadBackend(renderer, settings.render_timeout)
    return ProcessBackend(settings.render_workers, WorkerLimits(
        cache_bytes=settings.cache_bytes // 2,
        timeout=settings.render_timeout,
        memory_bytes=settings.render_memory_mb * MiB,
        max_tasks=settings.render_max_tasks,
    ))


def _converter(settings: ServiceSettings) -> ConverterClient | None:
    if not settings.converter_url:
        return None
    return ConverterClient(settings.converter_url,
                           max_connections=settings.converter_max_connections,
                           timeout=settings.converter_timeout,
                           connect_timeout=settings.converter_connect_timeout)
