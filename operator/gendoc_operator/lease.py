"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it.

Two operator replicas run; only the one holding the Lease runs kopf (and so
reconciles, scales and writes status); the other waits, serving only its
liveness endpoint. kopf's own peering is not a Lease (it needs KopfPeering
CRDs and freezes the other operators rather than electing one), so the gate is
put around kopf instead: `main` acquires the Lease first and starts kopf only
then. A gate inside kopf's handlers would not do: kopf writes its progress and
last-handled annotations on the DocGenerators after each handler, so a
standby whose handlers returned early would mark changes as handled that the
leader then never sees.

The protocol (client-go's, so the same Lease can be read with the same tools):
the holder renews `renewTime` every `retry_period`; a candidate that has seen
the same record (holder and renewTime) unchanged for `leaseDurationSeconds`,
measured on its own monotonic clock from when it first saw it (no comparison
of two machines' wall clocks), takes the Lease over with a write conditional on
the resourceVersion it read; of two candidates racing, the API server lets one
write win (409 for the other). A holder that cannot renew for `renew_deadline`
(< lease duration) stops at once, so it has stopped writing before anybody
else may take over. On a graceful stop the holder releases the Lease (empty
holder), so the other replica takes over on its next look instead of waiting
the lease duration out.

The decisions (may this candidate acquire? what does the Lease become?) are
pure functions of the record, the candidate and the time; `Elector` does the
I/O.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .kubeapi import ApiError, Kube
from .objects import JSON

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """The fields of a Lease's spec the election reads, and its resourceVersion."""

    holder: str
    duration: float  # leaseDurationSeconds
    renew_time: str
    acquire_time: str
    transitions: int
    resource_version: str

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(holder=str(spec.get("holderIdentity") or ""),
                   duration=float(spec.get("leaseDurationSeconds") or 0),
                   renew_time=str(spec.get("renewTime") or ""),
                   acquire_time=str(spec.get("acquireTime") or ""),
                   transitions=int(spec.get("leaseTransitions") or 0),
                   resource_version=str((lease.get("metadata") or {}).get("resourceVersion")))

    @property
    def seen(self) -> tuple[str, str]:
        """What changes when its holder renews or another takes it (the observation key)."""
        return self.holder, self.renew_time


def may_acquire(record: Record | None, identity: str, *, seen_since: float,
                now: float) -> bool:
    """Whether `identity` may write itself as holder now.

    seen_since: when (monotonic) this candidate first saw this record unchanged.
    """
    if record is None or not record.holder or record.holder == identity:
        return True
    return now - seen_since >= record.duration


def micro_time(now: datetime.datetime) -> str:
    """metav1.MicroTime, as the API server writes it."""
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def held(record: Record | None, identity: str, *, duration: float, now: str) -> JSON:
    """The Lease's whole spec (it is replaced, not patched) with `identity` holding it
    from `now` on: acquired (a new acquireTime, one more transition) or renewed."""
    if record is not None and record.holder == identity:
        acquired, transitions = record.acquire_time or now, record.transitions
    else:
        acquired = now
        transitions = (record.transitions + 1) if record is not None else 0
    return {"holderIdentity": identity, "leaseDurationSeconds": math.ceil(duration),
            "acquireTime": acquired, "renewTime": now, "leaseTransitions": transitions}


def released(record: Record) -> JSON:
    """The spec a holder leaves behind on a graceful stop: nobody holds it, so the next
    candidate takes it on its next look (client-go's ReleaseOnCancel)."""
    return {"leaseDurationSeconds": 1, "leaseTransitions": record.transitions}


class Lost(Exception):
    """The Lease was not renewed within the renew deadline, or another holds it."""


class Elector:
    """One candidate: `acquire` waits until it holds the Lease, `keep` renews it."""

    def __init__(self, kube: Kube, *, namespace: str, name: str, identity: str,
                 duration: float, renew_deadline: float, retry_period: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration, self.renew_deadline, self.retry_period = (
            duration, renew_deadline, retry_period)
        self.clock = clock
        self._record: Record | None = None
        self._seen: tuple[tuple[str, str], float] | None = None  # (record.seen, since)

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease (tries every retry_period)."""
        log.info("leader election: %s waits for Lease %s/%s", self.identity,
                 self.namespace, self.name)
        while True:
            try:
                if await self._try():
                    break
            except (ApiError, OSError) as exc:  # the API server away or refusing: try again
                log.warning("leader election: reading Lease %s/%s failed: %s",
                            self.namespace, self.name, exc)
            await asyncio.sleep(self.retry_period)
        log.info("leader election: %s holds Lease %s/%s", self.identity, self.namespace,
                 self.name)

    async def keep(self) -> None:
        """Renew every retry_period; raise Lost once renewing failed for renew_deadline
        or another candidate holds the Lease. Runs until cancelled."""
        renewed = self.clock()
        while True:
            await asyncio.sleep(self.retry_period)
            started = self.clock()
            # A try may take only what the deadline has left (client-go bounds the whole
            # renewal by it): a try waiting the full deadline, started just before it,
            # kept a leader up to twice the deadline, past the lease duration.
            left = renewed + self.renew_deadline - started
            ok = False
            if left > 0:
                try:
                    ok = await asyncio.wait_for(self._try(), timeout=left)
                except (ApiError, OSError, TimeoutError) as exc:
                    log.warning("leader election: renewing Lease %s/%s failed: %s",
                                self.namespace, self.name, exc)
            if ok:
                # From before the write: it took effect after `started`, and the others
                # count the lease duration from when they see it, later still.
                renewed = started
            elif self._record is not None and self._record.holder not in ("", self.identity):
                raise Lost(f"Lease {self.namespace}/{self.name} is held by "
                           f"{self._record.holder}")
            elif self.clock() - renewed >= self.renew_deadline:
                raise Lost(f"Lease {self.namespace}/{self.name} not renewed for "
                           f"{self.renew_deadline:g} s")

    async def release(self) -> None:
        """Leave the Lease to the other candidates (only if still ours)."""
        try:
            lease = await asyncio.to_thread(self.kube.read_lease, self.namespace, self.name)
            record = None if lease is None else Record.of(lease)
            if record is None or record.holder != self.identity:
                return
            await asyncio.to_thread(self.kube.write_lease, self.namespace, self.name,
                                    released(record), record.resource_version)
            log.info("leader election: %s released Lease %s/%s", self.identity,
                     self.namespace, self.name)
        except (ApiError, OSError) as exc:  # it expires on its own
            log.warning("leader election: releasing Lease %s/%s failed: %s",
                        self.namespace, self.name, exc)

    async def _try(self) -> bool:
        """One look: read the Lease, write ourselves as holder when we may. True: we hold it."""
        lease = await asyncio.to_thread(self.kube.read_lease, self.namespace, self.name)
        record = None if lease is None else Record.of(lease)
        now = self.clock()
        if record is not None and (self._seen is None or self._seen[0] != record.seen):
            self._seen = (record.seen, now)
        self._record = record
        since = self._seen[1] if self._seen is not None else now
        if not may_acquire(record, self.identity, seen_since=since, now=now):
            return False
        spec = held(record, self.identity, duration=self.duration,
                    now=micro_time(datetime.datetime.now(datetime.UTC)))
        try:
            written = await asyncio.to_thread(
                self.kube.write_lease, self.namespace, self.name, spec,
                None if record is None else record.resource_version)
        except ApiError as exc:
            if exc.status == 409:  # another candidate wrote first (created or took it)
                return False
            raise
        self._record = Record.of(written)
        self._seen = (self._record.seen, now)
        return True
