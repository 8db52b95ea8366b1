"""Collecting a fleet's metrics: which pods count, scraping them, rates over a period.

Three steps, as the HPA's metrics client takes them:

1. `census(pods)`: of the pods the fleet's selector finds, the ready ones with
   an IP are scraped; the others (Pending, starting, failing readiness, being
   deleted) are only counted. They are out of the Service's endpoints, so the
   traffic they miss is traffic the ready pods see.
2. `scrape(...)`: GET /metrics of every ready pod at once, with a short timeout
   (the only I/O here). A pod that does not answer is set aside, not waited for.
3. `ScrapeMemory.update(...)`: counters become rates by their difference to the
   pod's previous scrape (kept in memory by pod uid). A ready pod with no
   previous scrape (just started, or just back from not ready) or whose scrape
   failed is set aside and counted as "without metrics": its share of the load
   is unseen, which is why scaling.py holds scale-downs while there are any.

The memory starts empty (a new operator process sets every pod aside for one
period, and scaling.py treats an empty history conservatively).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .exposition import PodRates, Scrape, fleet, parse, rates
from .scaling import FleetMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodEndpoint:
    """A ready pod and where its /metrics is."""

    uid: str
    name: str
    url: str


@dataclass(frozen=True)
class Census:
    ready: tuple[PodEndpoint, ...]
    not_ready: int


@dataclass(frozen=True)
class Collection:
    """What one period's scrapes yield for the decision."""

    fleet: FleetMetrics | None  # None: no pod had metrics over the period
    measured: int  # ready pods whose rates are in `fleet`
    without_metrics: int  # ready pods set aside: just started, or the scrape failed
    not_ready: int  # pods that are not ready (no traffic)


def metrics_url(ip: str, port: int) -> str:
    host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    return f"http://{host}:{port}/metrics"


def is_ready(pod: Mapping[str, Any]) -> bool:
    """Running, not being deleted, Ready=True and an IP: a pod the Service sends traffic to."""
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    if not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


def census(pods: Iterable[Mapping[str, Any]], *, port: int) -> Census:
    ready: list[PodEndpoint] = []
    not_ready = 0
    for pod in pods:
        if not is_ready(pod):
            not_ready += 1
            continue
        meta = pod["metadata"]
        ready.append(PodEndpoint(meta["uid"], meta["name"],
                                 metrics_url(pod["status"]["podIP"], port)))
    return Census(tuple(ready), not_ready)


async def scrape(client: httpx.AsyncClient, pods: Sequence[PodEndpoint],
                 timeout: float) -> dict[str, Scrape | None]:
    """Every pod's /metrics in parallel, by uid; None for a pod that did not answer well."""

    async def one(pod: PodEndpoint) -> tuple[str, Scrape | None]:
        try:
            response = await client.get(pod.url, timeout=timeout)
            response.raise_for_status()
            return pod.uid, parse(response.text)
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: not Prometheus text
            log.info("no metrics from pod %s (%s): %s", pod.name, pod.url,
                     str(exc) or type(exc).__name__)
            return pod.uid, None

    return dict(await asyncio.gather(*(one(p) for p in pods)))


@dataclass(frozen=True)
class _Sample:
    scrape: Scrape
    at: float  # monotonic seconds


@dataclass
class ScrapeMemory:
    """The last scrape of each ready pod, by uid: the other end of each counter delta."""

    last: dict[str, _Sample] = field(default_factory=dict)

    def update(self, seen: Census, scrapes: Mapping[str, Scrape | None],
               now: float) -> Collection:
        measured: list[PodRates] = []
        without = 0
        kept: dict[str, _Sample] = {}
        for pod in seen.ready:
            new, old = scrapes.get(pod.uid), self.last.get(pod.uid)
            if new is None:
                without += 1
                if old is not None:  # a missed scrape: the next delta spans two periods
                    kept[pod.uid] = old
                continue
            kept[pod.uid] = _Sample(new, now)
            if old is None or now <= old.at:
                without += 1  # just started: nothing to take a difference to yet
                continue
            measured.append(rates(old.scrape, new, now - old.at))
        self.last = kept  # pods gone or no longer ready are forgotten
        return Collection(fleet(measured) if measured else None, len(measured), without,
                          seen.not_ready)
