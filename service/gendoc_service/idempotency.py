"""Idempotency-Key (IETF httpapi draft "The Idempotency-Key HTTP Header Field").

A POST to a render or jobs route that carries `Idempotency-Key` is answered once:
its response (status, headers, body) is kept for `GENDOC_IDEMPOTENCY_RETENTION`
seconds and a retry with the same key and the same request gets it again
(`Idempotent-Replayed: true`); the same key with another request is 422, and a
retry while the first is still running is 409 + Retry-After. Keys belong to the
API key that presented them (anonymous when auth is off), so two clients cannot
read each other's answers.

What is kept is decided by `keep` (pure): refusals that changed nothing and say
"try again" (408, 429, 499, 5xx) are forgotten, so the retry they ask for runs;
everything else is kept. A response larger than `max_bytes` is not kept: the key
then remembers only the request's fingerprint, and a retry with the same request
runs again (renders have no effect besides their answer) while another request
under that key is still 422.

A request with a key runs to its end even if the client goes away: the client
said it would retry, and the retry should find the answer instead of starting
over. The claim is shared by a fleet's replicas: Redis (SET NX with an expiry)
when the job queue is Redis, else SQLite on this machine (`gendoc up`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from anyio import to_thread
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyUnavailable,
    InvalidIdempotencyKey,
    Problem,
    retry_after,
)
from .middleware import presented_key
from .sharedstate import STORE_ERRORS, SqliteFile, redis_client, uses_redis

log = logging.getLogger(__name__)

IDEMPOTENT_ROUTES = frozenset({"/v1/render", "/v1/render/batch", "/v1/jobs"})
REPLAYED_HEADER = "idempotent-replayed"
# The draft's key is a Structured Field string ("..."); a bare token is accepted
# too, as most clients send one. Printable ASCII, bounded like a request id.
_KEY = re.compile(r'"?([\x21\x23-\x7e]{1,255})"?')


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def to_bytes(self) -> bytes:
        head = json.dumps({"status": self.status, "headers": self.headers}).encode()
        return head + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredResponse:
        head, _, body = data.partition(b"\n")
        meta = json.loads(head)
        return cls(meta["status"], [(k, v) for k, v in meta["headers"]], body)


@dataclass(frozen=True)
class Record:
    """What a key already holds: a request running, or a finished one's answer."""

    fingerprint: str
    done: bool
    response: StoredResponse | None = None  # None when done: too large to keep

    def to_bytes(self) -> bytes:
        head = json.dumps({"fingerprint": self.fingerprint, "done": self.done}).encode()
        return head + b"\n" + (self.response.to_bytes() if self.response else b"")

    @classmethod
    def from_bytes(cls, data: bytes) -> Record:
        head, _, rest = data.partition(b"\n")
        meta = json.loads(head)
        return cls(meta["fingerprint"], meta["done"],
                   StoredResponse.from_bytes(rest) if rest else None)


class IdempotencyStore(Protocol):
    def claim(self, key: str, fingerprint: str, lease: float) -> Record | None:
        """None: the key is this caller's for `lease` seconds; else what the key holds."""

    def complete(self, key: str, record: Record, retention: float) -> None: ...

    def release(self, key: str) -> None: ...

    def close(self) -> None: ...


# -- decisions --------------------------------------------------------------
def parse_key(header: str) -> str:
    match = _KEY.fullmatch(header.strip())
    if match is None:
        raise InvalidIdempotencyKey(
            "Idempotency-Key is 1 to 255 printable ASCII characters (a quoted string).")
    return match.group(1)


def scoped_key(api_key: bytes, key: str) -> str:
    """The storage key: the client's key under a digest of its API key (never stored)."""
    owner = hashlib.sha256(api_key).hexdigest()[:32] if api_key else "anonymous"
    return hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()


def fingerprint(method: str, path: str, query: bytes, content_type: str, body: bytes) -> str:
    """The request as the draft's fingerprint: method, target and the body.

    A JSON body counts by its content (key order and spacing aside: two clients'
    serialisers of one request agree); any other body by its bytes, so a
    multipart retry must resend the same bytes (its boundary included), as an
    HTTP client's retry of the same request does.
    """
    if content_type.split(";", 1)[0].strip().lower() == "application/json":
        # Not JSON after all: its bytes count (and the route will refuse it).
        with contextlib.suppress(ValueError, RecursionError):
            body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
    digest = hashlib.sha256(f"{method} {path}?".encode() + query + b"\n" + body)
    return digest.hexdigest()


async def form_digest(content_type: str, body: bytes) -> bytes | None:
    """A multipart body by its parts (names, file names, types, contents), not its
    bytes: a client library draws a new boundary for every request, its retry too.
    None when the body is not a form that parses (its bytes count then)."""
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        return None

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(Headers({"content-type": content_type}), stream(),
                             max_files=64, max_fields=64, max_part_size=len(body) + 1)
    try:
        form = await parser.parse()
    except (MultiPartException, ValueError):
        return None
    parts: list[list[str | None]] = []
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                digest = hashlib.sha256(await value.read()).hexdigest()
                parts.append([name, value.filename, value.content_type, digest])
            else:
                parts.append([name, value])
    finally:
        await form.close()
    return json.dumps(parts).encode()


def keep(status: int) -> bool:
    """Whether an answer is kept for retries: not the ones that ask for a retry."""
    return status not in (408, 429, 499) and status < 500


def conflict(record: Record, fp: str) -> IdempotencyKeyInUse | IdempotencyKeyReused | None:
    """The problem a retry meets, or None when the kept answer (or a re-run) serves it."""
    if record.fingerprint != fp:
        return IdempotencyKeyReused(
            "This Idempotency-Key was used with another request; use a new key for it.")
    if not record.done:
        return IdempotencyKeyInUse(
            "A request with this Idempotency-Key is still being answered; retry after it.",
            headers=retry_after(1))
    return None


# -- stores -----------------------------------------------------------------
class SqliteIdempotency:
    """One machine's keys (`gendoc up`): claims in an IMMEDIATE transaction, so
    processes sharing the file agree on who runs a key."""

    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, [
            "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, "
            "expires REAL NOT NULL, record BLOB NOT NULL)",
            "CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires)",
        ])

    def claim(self, key: str, fingerprint: str, lease: float) -> Record | None:
        now = time.time()
        with self._db.transaction() as db:
            db.execute("DELETE FROM idempotency WHERE expires <= ?", (now,))
            row = db.execute("SELECT record FROM idempotency WHERE key = ?", (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO idempotency VALUES (?, ?, ?)",
                           (key, now + lease, Record(fingerprint, False).to_bytes()))
        return None if row is None else Record.from_bytes(row[0])

    def complete(self, key: str, record: Record, retention: float) -> None:
        self._db.run("INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?)",
                     key, time.time() + retention, record.to_bytes())

    def release(self, key: str) -> None:
        self._db.run("DELETE FROM idempotency WHERE key = ?", key)

    def close(self) -> None:
        self._db.close()


class RedisIdempotency:
    """A fleet's keys in Redis: the claim is SET NX with the lease as its expiry (a
    replica that dies mid-request frees the key when the lease ends); the answer
    replaces it with the retention as expiry."""

    PREFIX = "gendoc:idempotency:"

    def __init__(self, url: str) -> None:
        self._redis = redis_client(url)

    def claim(self, key: str, fingerprint: str, lease: float) -> Record | None:
        name = self.PREFIX + key
        while True:
            if self._redis.set(name, Record(fingerprint, False).to_bytes(), nx=True,
                               px=max(1, int(lease * 1000))):
                return None
            held = self._redis.get(name)
            if held is not None:  # else it expired between the two calls: claim again
                assert isinstance(held, bytes)
                return Record.from_bytes(held)

    def complete(self, key: str, record: Record, retention: float) -> None:
        self._redis.set(self.PREFIX + key, record.to_bytes(), px=max(1, int(retention * 1000)))

    def release(self, key: str) -> None:
        self._redis.delete(self.PREFIX + key)

    def close(self) -> None:
        self._redis.close()


def open_idempotency(queue_url: str, directory: Path) -> IdempotencyStore:
    """Redis when the fleet's queue is Redis (the same server), else SQLite in `directory`."""
    if uses_redis(queue_url):
        return RedisIdempotency(queue_url)
    return SqliteIdempotency(directory / "idempotency.sqlite3")


# -- the middleware -----------------------------------------------------------
@dataclass(frozen=True)
class IdempotencyPolicy:
    retention: float  # seconds a kept answer is replayed
    lease: float  # seconds a claim holds before another replica may take the key over
    max_bytes: int  # largest answer kept


class IdempotencyMiddleware:
    """Replays kept answers on the idempotent routes; the store comes from `store_of`
    (the app's Services, built in lifespan after this middleware)."""

    def __init__(self, app: ASGIApp, policy: IdempotencyPolicy,
                 store_of: Callable[[Scope], IdempotencyStore]) -> None:
        self.app = app
        self.policy = policy
        self.store_of = store_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in IDEMPOTENT_ROUTES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"idempotency-key")
        if given is None:
            await self.app(scope, receive, send)
            return
        # The router will not see what is answered here; the metrics label it by route.
        scope.setdefault("route", _RouteLabel(scope["path"]))
        # Outside the exception middleware: problems are answered here, not raised.
        try:
            key = scoped_key(presented_key(headers), parse_key(given.decode("latin-1")))
            body = await _read_body(receive)  # bounded by the body-limit middleware
        except Problem as refused:
            await refused.response()(scope, receive, send)
            return
        if body is None:
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        fp = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""),
                         content_type, await form_digest(content_type, body) or body)
        store: IdempotencyStore = self.store_of(scope)
        try:
            held = await to_thread.run_sync(store.claim, key, fp, self.policy.lease)
        except STORE_ERRORS as exc:
            # Running it unclaimed could do it twice: the caller retries instead.
            await IdempotencyUnavailable(
                f"Idempotency keys cannot be checked now ({type(exc).__name__}); retry.",
                headers=retry_after(2)).response()(scope, receive, send)
            return
        if held is not None:
            problem = conflict(held, fp)
            if problem is not None:
                await problem.response()(scope, receive, send)
                return
            if held.response is not None:
                await _replay(held.response, send)
                return
            # Kept without its answer (too large): run again, keep nothing new.
            await self.app(scope, _replaying(body), send)
            return
        await self._first(scope, body, send, store, key, fp)

    async def _first(self, scope: Scope, body: bytes, send: Send, store: IdempotencyStore,
                     key: str, fp: str) -> None:
        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        size = 0
        client_gone = False
        settled = False

        async def settle() -> None:
            nonlocal settled
            settled = True
            if not keep(status):
                await _settle(store.release, key)
                return
            response = StoredResponse(status, headers, b"".join(chunks)) \
                if size <= self.policy.max_bytes else None
            await _settle(store.complete, key, Record(fp, True, response), self.policy.retention)

        async def capture(message: Message) -> None:
            nonlocal status, headers, size, client_gone
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k.decode("latin-1"), v.decode("latin-1"))
                           for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= self.policy.max_bytes:
                    chunks.append(chunk)
                else:
                    chunks.clear()  # too large to keep: hold no more of it
                if not message.get("more_body", False):
                    # Kept before its last byte goes out: a client that has the whole
                    # answer and sends the key again at once must find it kept, not
                    # still in use (409).
                    await settle()
            if client_gone:
                return
            try:
                await send(message)
            except OSError:  # the client left; the answer is still kept for its retry
                client_gone = True

        try:
            await self.app(scope, _replaying(body), capture)
        except BaseException:
            if not settled:
                await _settle(store.release, key)
            raise
        if not settled:  # the app ended without a last body message
            await settle()


async def _settle(call: Callable[..., None], *args: Any) -> None:
    """Release or complete a claim after the answer went out. If the store fails now
    the answer is not kept, and the claim ends with its lease (retries meanwhile: 409)."""
    try:
        await to_thread.run_sync(call, *args)
    except STORE_ERRORS:
        log.warning("idempotency: could not settle a key; it ends with its lease",
                    exc_info=True)


@dataclass(frozen=True)
class _RouteLabel:
    path: str  # what MetricsMiddleware reads of a matched route


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None when the client left before sending it (nothing to do)."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replaying(body: bytes) -> Receive:
    """The body once, then nothing: the app never sees the client leave (see the module)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # until the app's own task is done with us
        raise AssertionError("unreachable")

    return receive


async def _replay(response: StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    headers.append((REPLAYED_HEADER.encode(), b"true"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
