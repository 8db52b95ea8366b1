"""The pool: N warm instances, a bounded queue, and the instances' lifecycle.

Each slot owns one instance and one thread; every UNO call and every
start/stop of that instance runs on that thread, so a bridge is never shared.
The asyncio side only hands out slots, waits (with a timeout) and decides.
pyuno releases the GIL during a call, so N threads drive N instances in
parallel: measured equal to one worker process per instance (docs/converter.md).

Lifecycle decisions (policy.py): an instance is replaced, never repaired,
after `max_conversions_per_instance` conversions, above `max_instance_rss_mb`,
after `max_failures_in_a_row` failed conversions, and whenever a failure is its
own rather than the document's (instance.py sorts them): a crash, a hang (its
process group is killed), its own files missing, read-only or full, a failed
probe. Then the conversion is retried once on another (or the fresh) instance if
the caller's deadline allows, and a second such failure is 503 + Retry-After,
never a 4xx. Idle instances are watched for the same faults.

One `gendoc.deadline.Deadline` travels from the API to the UNO call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gendoc.deadline import Deadline
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
        self.start_failed = False  # its last start failed: it is being retried
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
        # Set on every change of a slot's state or the queue: what waits for the pool
        # to reach a state (the drain) waits on it instead of polling.
        self._changed = asyncio.Event()
        self._mean_seconds = 0.1  # moving average of a conversion, for Retry-After
        self._monitor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        # Every instance whose process may run, whatever its slot says: close()
        # stops them all, even one whose start was still under way when it began.
        self._live: set[Instance] = set()
        self.metrics.queue_limit.set(settings.queue_size)

    # -- start and stop -------------------------------------------------------------
    async def start(self) -> None:
        """Create the template profile, start every instance, wait until each answers."""
        _remove_stale_pools(self.settings.work_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(
            profile.make_template, self.settings.soffice, self.template,
            self.settings.soffice_environment, self.settings.start_timeout)
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
        self._fail_waiters(Unavailable("The converter is shutting down.", retry_after=1))
        if self._monitor:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self._until(lambda: not any(s.state == "busy" for s in self.slots),
                          self.settings.drain_timeout)
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
        settings = self.settings
        instance = Instance(
            slot.index, slot.generation, soffice=settings.soffice, template=self.template,
            root=self.root, start_timeout=settings.start_timeout,
            stop_timeout=settings.stop_timeout, environment=settings.soffice_environment,
            min_free_mb=settings.min_free_mb)
        loop = asyncio.get_running_loop()
        self._live.add(instance)
        try:
            await loop.run_in_executor(slot.executor, instance.start)
        except Exception:
            self._live.discard(instance)  # start() killed and reaped what it launched
            slot.state, slot.start_failed = "restarting", True
            if all(s.start_failed for s in self.slots):
                # No instance can start (its file system full, say): waiting is pointless.
                self._fail_waiters(self._broken())
            self._publish()
            raise
        slot.instance, slot.kill_reason, slot.start_failed = instance, None, False
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

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch(self) -> None:
        """Notice idle instances whose process died or whose own files failed under them
        (busy ones fail their conversion and are sorted there)."""
        while not self._closing:
            await asyncio.sleep(self.settings.monitor_interval)
            for slot in list(self._idle):
                instance = slot.instance
                if instance is None:
                    continue
                if not instance.alive():
                    self._replace(slot, "crash")
                elif fault := instance.environment_fault():
                    log.warning("idle instance %s: %s", instance.name, fault)
                    self._replace(slot, "environment")

    async def _until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate` holds for the pool's state, at most `timeout` seconds."""
        async def changes() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(changes(), timeout)
        except TimeoutError:
            return False
        return True

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

    def _fail_waiters(self, exc: Exception) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def _broken(self) -> Unavailable:
        self.metrics.rejected.labels("unavailable").inc()
        return Unavailable("No LibreOffice instance can start; retrying.",
                           retry_after=math.ceil(RESTART_BACKOFF))

    async def _acquire(self, deadline: Deadline, retry: bool = False) -> Slot:
        if self._closing:
            self.metrics.rejected.labels("unavailable").inc()
            raise Unavailable("The converter is shutting down.", retry_after=1)
        if all(s.start_failed for s in self.slots):
            raise self._broken()
        if self._idle and not self._waiters:
            slot = self._idle.popleft()
            slot.state = "busy"
            self._publish()
            return slot
        if not retry and not policy.may_wait(len(self._waiters), self.settings.queue_size):
            self.metrics.rejected.labels("queue_full").inc()
            raise QueueFull(
                f"The conversion queue is full ({self.settings.queue_size} waiting).",
                retry_after=self.retry_after())
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        # A retry has waited its turn once already: it goes first.
        if retry:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        self._publish()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), _timeout(deadline))
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
                      deadline: Deadline | None = None) -> bytes:
        """Convert on a free instance; an instance's failure is retried once on another."""
        deadline = deadline or Deadline.never()
        attempt = 0
        while True:
            attempt += 1
            if deadline.expired:
                self.metrics.rejected.labels("deadline").inc()
                raise DeadlineExceeded("No time was left for the conversion.",
                                       retry_after=self.retry_after())
            slot = await self._acquire(deadline, retry=attempt > 1)
            try:
                return await self._run(slot, document, suffix, options, deadline)
            except UnreadableDocument:
                self.metrics.failures.labels("document").inc()
                raise
            except InstanceFailed as exc:
                self.metrics.failures.labels("instance").inc()
                if not policy.may_retry(attempt, deadline.remaining()):
                    raise _give_up(exc, self.retry_after()) from None
                log.warning("retrying the conversion on another instance: %s", exc)

    async def _run(self, slot: Slot, document: bytes, suffix: str, options: ConversionOptions,
                   deadline: Deadline) -> bytes:
        instance = slot.instance
        assert instance is not None, "an acquired slot always has an instance"
        budget = policy.conversion_budget(self.settings.conversion_timeout, deadline.remaining())
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
        self.metrics.conversion_duration.observe(elapsed)
        self._mean_seconds = 0.9 * self._mean_seconds + 0.1 * elapsed
        return pdf, instance.rss_mb()

    def _after(self, slot: Slot, instance: Instance,
               done: asyncio.Future[tuple[bytes, float | None]]) -> None:
        if slot.instance is not instance:
            return  # already replaced
        exc = done.exception() if not done.cancelled() else None
        if slot.kill_reason or isinstance(exc, InstanceFailed) or not instance.alive():
            failed = exc.reason if isinstance(exc, InstanceFailed) else "crash"
            self._replace(slot, slot.kill_reason or failed)
            return
        rss = done.result()[1] if exc is None else instance.rss_mb()
        settings = self.settings
        reason = policy.recycle_reason(instance.conversions,
                                       settings.max_conversions_per_instance,
                                       rss, settings.max_instance_rss_mb,
                                       instance.failures_in_a_row, settings.max_failures_in_a_row)
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
        self._changed.set()


def _timeout(deadline: Deadline) -> float | None:
    """asyncio's form of a deadline: seconds left, None for none."""
    return None if math.isinf(deadline.at) else deadline.remaining()


def _give_up(exc: InstanceFailed, retry_after: int) -> Exception:
    """The answer when two instances failed under one request: the converter's trouble.

    A document that crashes every instance also ends here (issue 13: never a 4xx for
    what may be the converter's own fault); each attempt costs one instance, and the
    caller's deadline bounds its retries.
    """
    if exc.reason == "timeout":
        return DeadlineExceeded("The conversion did not finish in time; its instance was "
                                "replaced.", retry_after=retry_after)
    return Unavailable(f"LibreOffice failed twice ({exc.reason}); its instances are being "
                       "replaced.", retry_after=retry_after)


def _remove_stale_pools(work_dir: Path) -> None:
    """Remove the work directories of converter processes that no longer run."""
    if not work_dir.is_dir():
        return
    for entry in work_dir.glob("pool-*"):
        pid = entry.name.removeprefix("pool-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for instance in entry.glob("instance-*"):
                # instance-INDEX.GENERATION
                index = instance.name.removeprefix("instance-").partition(".")[0]
                if index.isdigit():
                    profile.remove_pipes(instance / "profile",
                                         profile.accept_pipe(int(pid), int(index)))
            shutil.rmtree(entry, ignore_errors=True)
