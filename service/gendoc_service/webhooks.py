"""Signed webhooks (Standard Webhooks, https://www.standardwebhooks.com/): one delivery.

What a delivery is made of, each a pure function tested alone: the signature
(`sign`: `v1,` + base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed by the
secret's bytes), the retry schedule (`retry_delay`: exponential backoff with
jitter, the random draw passed in), and the SSRF policy (`AllowList.check_url`,
`AllowList.check_address`). `deliver` is the I/O at the edge: it resolves the
target's name once (through a resolver that tests inject), refuses any address
the policy refuses, and connects to that very address, sending the name in Host
(and as the TLS SNI and certificate name), so a second DNS answer cannot move
the connection elsewhere (DNS rebinding). Redirects are not followed; at most
`max_response` bytes of an answer are read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import certifi
import httpx
from anyio import to_thread

from .errors import InvalidRequest
from .outbox import Outbox, Pending

if TYPE_CHECKING:
    from .queue import JobQueue, JobRecord
    from .queue import Outcome as ItemOutcome
    from .settings import ServiceSettings

log = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud metadata endpoints: refused even inside a listed network, unless listed
# themselves. AWS, GCP, Azure, OpenStack, DigitalOcean: 169.254.169.254; AWS
# IMDS over IPv6: fd00:ec2::254; AWS ECS task metadata: 169.254.170.2; Alibaba:
# 100.100.100.200; Oracle: 192.0.0.192.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192",
))


def parse_secret(text: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret (the spec's format); a bare base64 too."""
    raw = text.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    # The spec asks for 24 to 64 bytes; fewer would make the HMAC guessable.
    if not 24 <= len(key) <= 64:
        raise ValueError(f"a webhook secret holds 24 to 64 bytes, not {len(key)}")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def retry_delay(attempts: int, draw: float, *, base: float, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1, 2, ...).

    Exponential: base x 4^(attempts-1), at most `cap`; then "equal jitter" (half
    fixed, half drawn: `draw` in [0, 1)) so that the receivers of one outage are
    not all retried in the same second, while every wait stays at least half
    its step. With the defaults (base 10 s, cap 4 h) the steps are 10 s, 40 s,
    160 s, 11 min, 43 min, 2.8 h, then 4 h: ten attempts span about 15 hours.
    """
    step = min(cap, base * 4.0 ** (attempts - 1))
    return step / 2 + step / 2 * draw


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart; `host` is the name (or literal) the caller wrote."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line

    def url_for(self, address: IPAddress) -> str:
        """The same URL aimed at one resolved address (the connection is pinned to it)."""
        literal = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


class Refused(Exception):
    """The policy refuses this target; retrying cannot change that."""


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not private, loopback, link-local, shared, reserved..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES


@dataclass(frozen=True)
class AllowList:
    """GENDOC_WEBHOOK_ALLOWED_HOSTS: comma-separated `host`, `host:port` or CIDR entries.

    A host entry allows URLs naming that host (on any port, or on the one
    given); an IP literal entry also allows that address however a name resolves
    to it. A CIDR entry (e.g. a cluster's service network, 10.96.0.0/12) allows
    addresses in it, never names. A name that resolves to a private, loopback,
    link-local or metadata address is refused unless that address is allowed by
    an entry; a metadata address only by its own literal entry.
    """

    hosts: frozenset[tuple[str, int | None]]
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[tuple[str, int | None]] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip().lower() for e in text.split(",")):
            if not entry:
                continue
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            parts = urlsplit(f"//{entry}")
            if parts.hostname is None:
                raise ValueError(f"not a host or host:port: {entry!r}")
            hosts.add((parts.hostname, parts.port))
        return cls(frozenset(hosts), tuple(networks))

    def _lists(self, host: str, port: int) -> bool:
        return (host, None) in self.hosts or (host, port) in self.hosts

    def check_url(self, url: str) -> Target:
        """The target of `url`, or Refused: scheme, credentials, and the host's entry."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused(f"webhook URLs are http or https, not {parts.scheme or 'none'!r}")
        if parts.username is not None or parts.password is not None:
            raise Refused("webhook URLs carry no credentials")
        try:
            port = parts.port or {"http": 80, "https": 443}[parts.scheme]
        except ValueError:
            raise Refused("the webhook URL's port is not a number from 0 to 65535") from None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise Refused("the webhook URL names no host")
        if not self._lists(host, port):
            raise Refused(f"{host}:{port} is not in GENDOC_WEBHOOK_ALLOWED_HOSTS")
        path = parts.path or "/"
        return Target(parts.scheme, host, port, path + (f"?{parts.query}" if parts.query else ""))

    def check_address(self, address: IPAddress, target: Target) -> None:
        """Refused unless `address` is public, or allowed by an entry (see the class)."""
        if self._lists(str(address), target.port):
            return
        if address in METADATA_ADDRESSES:
            raise Refused(f"{target.host} resolves to {address}, a cloud metadata address")
        if is_public(address) or any(address in n for n in self.networks):
            return
        raise Refused(f"{target.host} resolves to {address}, which is not a public address; "
                      "list it in GENDOC_WEBHOOK_ALLOWED_HOSTS to allow it")


# A resolver maps (host, port) to addresses; tests inject their own.
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


async def pinned_address(target: Target, allow: AllowList, resolver: Resolver) -> IPAddress:
    """Resolve once; every address must pass the policy (one bad answer refuses all)."""
    literal = _literal(target.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            found = await resolver(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            raise OSError(f"cannot resolve {target.host}: {exc}") from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
        if not addresses:
            raise OSError(f"{target.host} has no address")
    for address in addresses:
        allow.check_address(address, target)
    return addresses[0]


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as recorded on the job (`deliveries`)."""

    webhook_id: str
    attempt: int
    time: str  # ISO 8601, UTC, when the attempt started
    duration: float  # seconds
    status: int | None = None  # the receiver's status code, if it answered
    error: str | None = None  # why it failed, if it did

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {"webhook_id": self.webhook_id, "attempt": self.attempt, "time": self.time,
                "duration": round(self.duration, 4), "status": self.status, "error": self.error}


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    final: bool  # delivered, or refused for good: no retry


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 5.0
    timeout: float = 15.0
    max_response: int = 4096


async def deliver(
    url: str, msg_id: str, body: bytes, *, key: bytes, attempt: int, allow: AllowList,
    resolver: Resolver = system_resolver, limits: Limits = Limits(),
    verify: bool | ssl.SSLContext = True,
) -> Outcome:
    """One signed POST of `body` to `url`; never raises, the outcome says what happened.

    `verify` is httpx's TLS verification (True: the system's CAs; tests pass a
    context that trusts their own).
    """
    started_wall = datetime.now(UTC).isoformat(timespec="milliseconds")
    started = time.monotonic()

    def done(final: bool, status: int | None = None, error: str | None = None) -> Outcome:
        return Outcome(Attempt(msg_id, attempt, started_wall, time.monotonic() - started,
                               status, error), final)

    try:
        target = allow.check_url(url)
        address = await pinned_address(target, allow, resolver)
    except Refused as exc:
        return done(True, error=f"refused: {exc}")
    except (OSError, ValueError) as exc:
        return done(False, error=str(exc))
    headers = signed_headers(key, msg_id, int(time.time()), body)
    headers["host"] = target.host_header
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = httpx.Timeout(limits.timeout, connect=limits.connect_timeout)
    # trust_env=False: a proxy from the environment would resolve the name itself.
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False,
                              verify=verify) as client,
            asyncio.timeout(limits.timeout),
            client.stream("POST", target.url_for(address), content=body, headers=headers,
                          extensions=extensions) as response,
        ):
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= limits.max_response:
                    break  # the answer's body means nothing to us; never buffer more
    except (httpx.HTTPError, OSError, TimeoutError) as exc:
        return done(False, error=f"{type(exc).__name__}: {exc}" if str(exc) else
                    type(exc).__name__)
    status = response.status_code
    if 300 <= status < 400:  # following would leave the checked address; retrying, too
        return done(True, status, f"redirect to {response.headers.get('location', '?')!r} "
                    "not followed")
    return done(200 <= status < 300, status,
                None if 200 <= status < 300 else f"receiver answered {status}")


# -- the sender: events kept in the outbox until delivered or given up -------------
def next_attempt_in(attempts: int, outcome: Outcome, draw: float, *, max_attempts: int,
                    base: float, cap: float) -> float | None:
    """Seconds until the next attempt after `attempts` made, None when there is none:
    delivered, refused for good, or the last attempt failed."""
    if outcome.final or attempts >= max_attempts:
        return None
    return retry_delay(attempts, draw, base=base, cap=cap)


@dataclass(frozen=True)
class SenderConfig:
    key: bytes | None  # None: no GENDOC_WEBHOOK_SECRET, nothing can be signed
    allow: AllowList
    limits: Limits = Limits()
    max_attempts: int = 10
    retry_base: float = 10.0
    retry_cap: float = 4 * 3600.0
    poll_interval: float = 5.0  # how often other replicas' due deliveries are looked for

    @classmethod
    def of(cls, settings: ServiceSettings) -> SenderConfig:
        secret = settings.webhook_secret.get_secret_value()
        return cls(
            key=parse_secret(secret) if secret else None,
            allow=AllowList.parse(settings.webhook_allowed_hosts),
            limits=Limits(connect_timeout=min(5.0, settings.webhook_timeout),
                          timeout=settings.webhook_timeout),
            max_attempts=settings.webhook_max_attempts,
            retry_base=settings.webhook_retry_base,
            retry_cap=settings.webhook_retry_cap,
            poll_interval=settings.webhook_poll_interval,
        )

    def check(self, url: str) -> None:
        """Refuse at submission what could never be delivered (422, not a job that
        fails later): no secret to sign with, or a URL the allow list refuses."""
        if self.key is None:
            raise InvalidRequest("This service sends no webhooks: GENDOC_WEBHOOK_SECRET "
                                 "is not set.", errors=[{"field": "webhook.url",
                                                         "message": "webhooks are off"}])
        try:
            self.allow.check_url(url)
        except Refused as exc:
            raise InvalidRequest(f"The webhook URL is refused: {exc}.", errors=[
                {"field": "webhook.url", "message": str(exc)}]) from None

    @property
    def lease(self) -> float:
        """How long a claimed delivery is hidden from other senders: one attempt's
        longest time, with room to record it."""
        return self.limits.timeout + self.limits.connect_timeout + 30.0


RecordAttempt = Callable[[str, dict[str, Any]], Awaitable[None]]  # job id, attempt


def event_body(event_type: str, data: dict[str, Any]) -> bytes:
    """The payload the spec recommends: type, timestamp and data."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": stamp, "data": data}).encode()


class WebhookSender:
    """Sends what the outbox holds, in every service process; an event is written to
    the outbox first, so a restart (or another replica) picks its retries up."""

    BATCH = 16  # deliveries claimed, and attempted concurrently, per round
    # How often finished jobs are checked for an event that never reached the outbox
    # (each check reads every job within its retention: rare, but at every start).
    RECOVER_EVERY = 900.0

    def __init__(self, config: SenderConfig, outbox: Outbox, record: RecordAttempt, *,
                 resolver: Resolver = system_resolver,
                 draw: Callable[[], float] = random.random,
                 verify: bool | ssl.SSLContext = True) -> None:
        self.config = config
        self.outbox = outbox
        self.record = record
        self.resolver = resolver
        self.draw = draw
        # One TLS context for every attempt: httpx builds a new one per client
        # otherwise, loading the CA bundle each time (about 0.4 s of CPU here).
        self.verify = ssl.create_default_context(cafile=certifi.where()) \
            if verify is True else verify
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def job_finished(self, record: JobRecord) -> None:
        """The jobs' finished hook: `job.succeeded`, `job.failed` or `job.cancelled`,
        with the job as GET /v1/jobs/{id} shows it, to the job's webhook if it has one."""
        await self._announce(record)

    async def _announce(self, record: JobRecord) -> bool:
        # One event per job: its webhook-id is msg_<job id>, so a job announced twice
        # (see `recover`) keeps one event.
        webhook = record.spec.get("webhook")
        if not webhook:
            return False
        return await self._keep(Pending(f"msg_{record.id}", record.id, webhook["url"],
                                        event_body(f"job.{record.status}", record.public())))

    async def items_done(self, job_id: str, spec: dict[str, Any],
                         outcomes: list[tuple[int, ItemOutcome]]) -> None:
        """The jobs' items hook: with `"webhook": {"url", "items": true}`, an event per
        item (`job.item.succeeded` or `job.item.failed`), webhook-id `msg_<job>_<index>`:
        an item delivered twice by the queue still makes one event while it waits."""
        webhook = spec.get("webhook") or {}
        if not webhook.get("items"):
            return
        for index, outcome in outcomes:
            data: dict[str, Any] = {"job": job_id, "index": index}
            if outcome.ok:
                data |= {"url": f"/v1/jobs/{job_id}/items/{index}", "size": outcome.size}
            else:
                data["problem"] = outcome.problem
            kind = "succeeded" if outcome.ok else "failed"
            await self._keep(Pending(f"msg_{job_id}_{index}", job_id, webhook["url"],
                                     event_body(f"job.item.{kind}", data)))

    async def recover(self, queue: JobQueue) -> int:
        """Announce again the finished jobs whose event never reached the outbox (their
        process died between the job's last write and the event's, or the outbox was
        down then): a job with a webhook and no delivery yet. An event still waiting
        for its first attempt is kept once (same id). How many were added."""
        added = 0
        for job_id in await queue.expired(time.time()):
            record = await queue.get(job_id)
            if record is not None and not record.deliveries:
                added += await self._announce(record)
        return added

    async def send(self, job_id: str, url: str, event_type: str, data: dict[str, Any]) -> str:
        """Keep one event for `url`; its webhook-id, the same on every attempt."""
        msg_id = f"msg_{uuid.uuid4().hex}"
        await self._keep(Pending(msg_id, job_id, url, event_body(event_type, data)))
        return msg_id

    async def _keep(self, pending: Pending) -> bool:
        added = await to_thread.run_sync(self.outbox.add, pending, time.time())
        self._wake.set()
        return added

    def start(self, queue: JobQueue | None = None) -> None:
        """Send what falls due; with the jobs' `queue`, also `recover` now and then."""
        self._task = asyncio.ensure_future(self._run(queue))

    async def stop(self) -> None:
        """Stop sending; a delivery cut short falls due again when its lease ends."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def close(self) -> None:
        await self.stop()
        await to_thread.run_sync(self.outbox.close)

    async def _run(self, queue: JobQueue | None) -> None:
        next_recovery = time.monotonic()
        while True:
            if queue is not None and time.monotonic() >= next_recovery:
                next_recovery = time.monotonic() + self.RECOVER_EVERY
                try:
                    if found := await self.recover(queue):
                        log.warning("webhooks: %d finished jobs had no event; sending now",
                                    found)
                except Exception:
                    log.exception("webhooks: looking for finished jobs without an event failed")
            try:
                claimed = await to_thread.run_sync(
                    self.outbox.claim, time.time(), self.config.lease, self.BATCH)
                await asyncio.gather(*(self._attempt(p) for p in claimed))
                if len(claimed) == self.BATCH:
                    continue
                due = await to_thread.run_sync(self.outbox.next_due)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook sender: the outbox failed; trying again")
                due = None
            wait = self.config.poll_interval if due is None else min(
                self.config.poll_interval, max(0.0, due - time.time()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _attempt(self, pending: Pending) -> None:
        attempt = pending.attempts + 1
        if self.config.key is None:
            outcome = Outcome(Attempt(pending.id, attempt, datetime.now(UTC).isoformat(), 0.0,
                                      error="GENDOC_WEBHOOK_SECRET is not set"), True)
        else:
            outcome = await deliver(pending.url, pending.id, pending.body,
                                    key=self.config.key, attempt=attempt,
                                    allow=self.config.allow, resolver=self.resolver,
                                    limits=self.config.limits, verify=self.verify)
        delay = next_attempt_in(attempt, outcome, self.draw(),
                                max_attempts=self.config.max_attempts,
                                base=self.config.retry_base, cap=self.config.retry_cap)
        entry = outcome.attempt.as_dict()
        entry["next_attempt"] = None if delay is None else datetime.fromtimestamp(
            time.time() + delay, UTC).isoformat(timespec="seconds")
        try:
            await self.record(pending.job, entry)
        except Exception:
            log.exception("webhook %s: could not record attempt %d on job %s", pending.id,
                          attempt, pending.job)
        if delay is None:
            await to_thread.run_sync(self.outbox.remove, pending.id)
        else:
            await to_thread.run_sync(self.outbox.reschedule, pending.id, attempt,
                                     time.time() + delay)
