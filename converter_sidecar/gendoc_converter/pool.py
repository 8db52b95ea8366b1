"""The pool: N warm instances, a bounded queue, and the instances' lifecycle.

Each slot owns one instance and one thread; every UNO call and every
start/stop of that instance runs on that thread, so a bridge is never shared.
The asyncio side only hands out slots, waits (with a timeout) and decides.
pyuno releases the GIL during a call, so N threads drive N instances in
parallel: measured equal to one worker process per instance (docs/converter.md).

Lifecycle decisions (policy.py): an instance is replaced, never repaired,
after `max_conversions_per_instance` conversions, above `max_instance_rss_mb`,
when it crashes (its conversion is retried once on another instance), and when
a conversion outlives its time (its process group is killed; the conversion is
retried if the caller's deadline allows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gendoc.logs import request_id

from . import policy, profile
from .errors import (
    DeadlineExceeded,
    InstanceFailed,
    QueueFull,
    StartFailed,
    Unavailable,
    UnreadableDocument,
)
from .instance import Instance
from .metrics import STATES, ConverterMetrics
from .options import ConversionOptions
from .settings import ConverterSettings

log = logging.getLogger(__name__)

RESTART_BACKOFF = 1.0  # seconds between attempts to start a replacement that failed


class Slot:
    """One place in the pool: the current instance, its state and its thread."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.generation = 0
        self.instance: Instance | None = None
        self.state = "starting"
        self.kill_reason: str | None = None  # set when the pool kills a hung instance
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lo{index}")


class Pool:
    def __init__(self, settings: ConverterSettings,
                 metrics: ConverterMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or ConverterMetrics()
        self.root = settings.work_dir / f"pool-{os.getpid()}"
        self.template = self.root / "template"
        self.slots = [Slot(i) for i in range(settings.pool_size)]
        self._idle: deque[Slot] = deque()
        self._waiters: deque[asyncio.Future[Slot]] = deque()
        self._closing = False
        self._mean_seconds = 0.1  # moving average of a conversion, for Retry-After
        self._monitor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Every instance whose process may run, whatever its slot says: close()
        # stops them all, even one whose start was still under way when it began.
        self._live: set[Instance] = set()
        self.metrics.queue_capacity.set(settings.queue_size)

    # -- start and stop -------------------------------------------------------------
    async def start(self) -> None:
        """Create the template profile, start every instance, wait until each answers."""
        _remove_stale_pools(self.settings.work_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(
            profile.make_template, self.settings.soffice, self.template, dict(os.environ),
            self.settings.start_timeout)
        self._publish()
        results = await asyncio.gather(*(self._start_slot(s) for s in self.slots),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if len(failed) == len(self.slots):
            await self.close()
            raise StartFailed(f"no LibreOffice instance started: {failed[0]}")
        for slot, result in zip(self.slots, results, strict=True):
            if isinstance(result, BaseException):
                self._restart_later(slot)
        self._monitor = asyncio.create_task(self._watch(), name="pool-monitor")
        log.info("pool ready: %d of %d instances (queue %d)", len(self._idle), len(self.slots),
                 self.settings.queue_size)

    async def close(self) -> None:
        """Stop taking work, drain with a time limit, then stop every instance (kill if need be)."""
        self._closing = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Unavailable("The converter is shutting down.", retry_after=1))
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        deadline = time.monotonic() + self.settings.drain_timeout
        while any(s.state == "busy" for s in self.slots) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for slot in self.slots:
            if slot.instance is not None and slot.state == "busy":
                log.warning("instance %s still busy after the drain timeout: killed",
                            slot.instance.name)
                slot.instance.kill()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*(self._stop_slot(s) for s in self.slots), return_exceptions=True)
        for slot in self.slots:
            slot.executor.shutdown(wait=True)
        for instance in list(self._live):
            instance.stop()
        self._live.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        self._publish()
        log.info("pool stopped")

    async def _start_slot(self, slot: Slot) -> None:
        slot.state = "starting" if slot.generation == 0 else "restarting"
        self._publish()
        instance = Instance(
            slot.index, slot.generation, soffice=self.settings.soffice, template=self.template,
            root=self.root, start_timeout=self.settings.start_timeout,
            stop_timeout=self.settings.stop_timeout)
        loop = asyncio.get_running_loop()
        self._live.add(instance)
        try:
            await loop.run_in_executor(slot.executor, instance.start)
        except Exception:
            self._live.discard(instance)  # start() killed and reaped what it launched
            slot.state = "restarting"
            self._publish()
            raise
        slot.instance, slot.kill_reason = instance, None
        if self._closing:
            await self._stop(slot, instance)
            return
        self._release(slot)

    async def _stop_slot(self, slot: Slot) -> None:
        instance, slot.instance = slot.instance, None
        slot.state = "stopping"
        self._publish()
        if instance is not None:
            await self._stop(slot, instance)
        self._publish()

    async def _stop(self, slot: Slot, instance: Instance) -> None:
        await asyncio.get_running_loop().run_in_executor(slot.executor, instance.stop)
        self._live.discard(instance)

    # -- replacing instances ---------------------------------------------------------
    def _replace(self, slot: Slot, reason: str) -> None:
        """Count the restart and start a successor on the slot's own thread."""
        if slot in self._idle:
            self._idle.remove(slot)
        self.metrics.restarts.labels(reason).inc()
        old = slot.instance
        log.warning("replacing instance %s (%s, %d conversions)",
                    old.name if old else slot.index, reason, old.conversions if old else 0)
        slot.instance, slot.state = None, "restarting"
        slot.generation += 1
        self._publish()
        self._spawn(self._restart(slot, old))

    async def _restart(self, slot: Slot, old: Instance | None) -> None:
        if old is not None:
            old.kill()  # replaced, not repaired: no graceful exit to wait for
            await self._stop(slot, old)
        if self._closing:
            return
        try:
            await self._start_slot(slot)
        except Exception as exc:
            log.error("instance %d did not start: %s; retrying in %.0fs", slot.index, exc,
                      RESTART_BACKOFF)
            self._restart_later(slot)

    def _restart_later(self, slot: Slot) -> None:
        async def later() -> None:
            await asyncio.sleep(RESTART_BACKOFF)
            if not self._closing:
                slot.generation += 1
                await self._restart(slot, None)

        self._spawn(later())

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch(self) -> None:
        """Notice idle instances whose process died (busy ones fail their conversion)."""
        while not self._closing:
            await asyncio.sleep(self.settings.monitor_interval)
            for slot in list(self._idle):
                if slot.instance is not None and not slot.instance.alive():
                    self._replace(slot, "crash")

    # -- handing out instances --------------------------------------------------------
    def _release(self, slot: Slot) -> None:
        """Give a ready instance to the oldest waiter, or mark it idle."""
        slot.state = "idle"
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                slot.state = "busy"
                waiter.set_result(slot)
                break
        else:
            self._idle.append(slot)
        self._publish()

    async def _acquire(self, remaining: float | None) -> Slot:
        if self._closing:
            self.metrics.rejected.labels("unavailable").inc()
            raise Unavailable("The converter is shutting down.", retry_after=1)
        if self._idle and not self._waiters:
            slot = self._idle.popleft()
            slot.state = "busy"
            self._publish()
            return slot
        if not policy.may_wait(len(self._waiters), self.settings.queue_size):
            self.metrics.rejected.labels("queue_full").inc()
            raise QueueFull(
                f"The conversion queue is full ({self.settings.queue_size} waiting).",
                retry_after=self.retry_after())
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._publish()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), remaining)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed over just as we gave up: pass it on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                self.metrics.rejected.labels("deadline").inc()
                raise DeadlineExceeded(
                    "No LibreOffice instance became free before the request's deadline.",
                    retry_after=self.retry_after()) from None
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            self._publish()

    def retry_after(self) -> int:
        ready = sum(1 for s in self.slots if s.state in ("idle", "busy"))
        return policy.retry_after(len(self._waiters), ready, self._mean_seconds)

    # -- converting -------------------------------------------------------------------
    async def convert(self, document: bytes, suffix: str, options: ConversionOptions,
                      deadline: float | None = None) -> bytes:
        """Convert on a free instance; a crash or hang is retried once on another."""
        attempt = 0
        while True:
            attempt += 1
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.metrics.rejected.labels("deadline").inc()
                raise DeadlineExceeded("No time was left for the conversion.",
                                       retry_after=self.retry_after())
            slot = await self._acquire(remaining)
            remaining = None if deadline is None else deadline - time.monotonic()
            budget = policy.conversion_budget(self.settings.conversion_timeout, remaining)
            try:
                return await self._run(slot, document, suffix, options, budget)
            except InstanceFailed as exc:
                remaining = None if deadline is None else deadline - time.monotonic()
                if not policy.may_retry(attempt, remaining):
                    raise _give_up(exc, self.retry_after()) from None
                log.warning("retrying the conversion on another instance: %s", exc)

    async def _run(self, slot: Slot, document: bytes, suffix: str, options: ConversionOptions,
                   budget: float) -> bytes:
        instance = slot.instance
        assert instance is not None, "an acquired slot always has an instance"
        if budget <= 0:
            self._release(slot)
            raise InstanceFailed("timeout", "no time left for the conversion")
        loop = asyncio.get_running_loop()
        trace = request_id.get()
        work = loop.run_in_executor(slot.executor, self._work, instance, document, suffix,
                                    options, trace)
        # The slot goes back (or is replaced) when the work is done, whoever waits for it.
        work.add_done_callback(lambda done: self._after(slot, instance, done))
        try:
            pdf, _ = await asyncio.wait_for(asyncio.shield(work), budget)
            return pdf
        except TimeoutError:
            slot.kill_reason = "timeout"
            log.warning("conversion on %s exceeded %.2fs: killing it", instance.name, budget)
            instance.kill()
            with contextlib.suppress(Exception):
                await work  # returns promptly now that its process is gone
            raise InstanceFailed("timeout", f"the conversion exceeded {budget:.2f}s") from None

    def _work(self, instance: Instance, document: bytes, suffix: str,
              options: ConversionOptions, trace: str) -> tuple[bytes, float | None]:
        token = request_id.set(trace)
        started = time.monotonic()
        try:
            pdf = instance.convert(document, suffix, options)
        finally:
            request_id.reset(token)
        elapsed = time.monotonic() - started
        self.metrics.conversion_seconds.observe(elapsed)
        self._mean_seconds = 0.9 * self._mean_seconds + 0.1 * elapsed
        return pdf, instance.rss_mb()

    def _after(self, slot: Slot, instance: Instance,
               done: asyncio.Future[tuple[bytes, float | None]]) -> None:
        if slot.instance is not instance:
            return  # already replaced
        exc = done.exception() if not done.cancelled() else None
        if slot.kill_reason or isinstance(exc, InstanceFailed) or not instance.alive():
            failed = exc.reason if isinstance(exc, InstanceFailed) else "crash"
            reason = slot.kill_reason or failed
            self._replace(slot, reason)
            return
        rss = done.result()[1] if exc is None else instance.rss_mb()
        reason = policy.recycle_reason(instance.conversions,
                                       self.settings.max_conversions_per_instance,
                                       rss, self.settings.max_instance_rss_mb)
        if reason and not self._closing:
            self._replace(slot, reason)
        else:
            self._release(slot)

    # -- state -------------------------------------------------------------------------
    def healthy(self) -> bool:
        """True when at least one instance can take a conversion."""
        return not self._closing and any(s.state in ("idle", "busy") for s in self.slots)

    def states(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for slot in self.slots:
            counts[slot.state] += 1
        return counts

    def _publish(self) -> None:
        for state, count in self.states().items():
            self.metrics.instances.labels(state).set(count)
        self.metrics.queue_depth.set(sum(1 for w in self._waiters if not w.done()))


def _give_up(exc: InstanceFailed, retry_after: int) -> Exception:
    if exc.reason == "timeout":
        return DeadlineExceeded("The conversion did not finish in time; its instance was "
                                "replaced.", retry_after=retry_after)
    return UnreadableDocument("LibreOffice crashed twice on this document.")


def _remove_stale_pools(work_dir: Path) -> None:
    """Remove the work directories of converter processes that no longer run."""
    if not work_dir.is_dir():
        return
    for entry in work_dir.glob("pool-*"):
        pid = entry.name.removeprefix("pool-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for instance in entry.glob("instance-*"):
                index = instance.name.removeprefix("instance-")
                if index.isdigit():
                    profile.remove_pipes(instance / "profile",
                                         profile.accept_pipe(int(pid), int(index)))
            shutil.rmtree(entry, ignore_errors=True)
