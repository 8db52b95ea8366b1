"""Webhook deliveries not yet done, kept where the fleet keeps its jobs.

An event is written here before its first attempt and removed once it is
delivered or given up, so a delivery survives a restart of the service (and the
death of the replica that was sending it). A sender claims due deliveries with a
lease: the claim moves their due time `lease` seconds ahead, so no other
replica takes them meanwhile, and if the claimer dies they fall due again when
the lease ends (at least once; the receiver tells repeats apart by
`webhook-id`). Two backends, as for the job queue: SQLite on this machine
(`gendoc up`) and Redis for a fleet (`GENDOC_QUEUE_URL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .sharedstate import SqliteFile, redis_client, uses_redis


@dataclass(frozen=True)
class Pending:
    id: str  # the webhook-id: the same on every attempt of this event
    job: str
    url: str
    body: bytes
    attempts: int = 0  # attempts made so far


class Outbox(Protocol):
    def add(self, pending: Pending, due: float) -> bool:
        """Keep `pending` unless its id is kept already; whether it was added."""

    def claim(self, now: float, lease: float, limit: int) -> list[Pending]:
        """Up to `limit` deliveries due at `now`, each hidden from others for `lease` s."""

    def reschedule(self, id: str, attempts: int, due: float) -> None: ...

    def remove(self, id: str) -> None: ...

    def next_due(self) -> float | None:
        """When the earliest delivery falls due (epoch seconds), None when there is none."""

    def close(self) -> None: ...


class SqliteOutbox:
    def __init__(self, path: Path) -> None:
        self._db = SqliteFile(path, [
            "CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, job TEXT NOT NULL, "
            "url TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL, "
            "due REAL NOT NULL)",
            "CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (due)",
        ])

    def add(self, pending: Pending, due: float) -> bool:
        with self._db.transaction() as db:
            added = db.execute("INSERT OR IGNORE INTO webhooks VALUES (?, ?, ?, ?, ?, ?)",
                               (pending.id, pending.job, pending.url, pending.body,
                                pending.attempts, due)).rowcount
        return added == 1

    def claim(self, now: float, lease: float, limit: int) -> list[Pending]:
        with self._db.transaction() as db:
            rows = db.execute("SELECT id, job, url, body, attempts FROM webhooks "
                              "WHERE due <= ? ORDER BY due LIMIT ?", (now, limit)).fetchall()
            db.executemany("UPDATE webhooks SET due = ? WHERE id = ?",
                           [(now + lease, row[0]) for row in rows])
        return [Pending(*row) for row in rows]

    def reschedule(self, id: str, attempts: int, due: float) -> None:
        self._db.run("UPDATE webhooks SET attempts = ?, due = ? WHERE id = ?", attempts, due, id)

    def remove(self, id: str) -> None:
        self._db.run("DELETE FROM webhooks WHERE id = ?", id)

    def next_due(self) -> float | None:
        value = self._db.run("SELECT MIN(due) FROM webhooks")[0][0]
        return None if value is None else float(value)

    def close(self) -> None:
        self._db.close()


# Takes the due ids and moves each one's due time past the lease, in one step.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


# Keeps a delivery unless its id is kept already (one event per id, even if added twice).
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'job', ARGV[3], 'url', ARGV[4], 'body', ARGV[5], 'attempts', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""


class RedisOutbox:
    """A sorted set of ids by due time, and a hash per delivery."""

    DUE = "gendoc:webhooks:due"
    PREFIX = "gendoc:webhooks:pending:"

    def __init__(self, url: str) -> None:
        self._redis = redis_client(url)
        self._claim = self._redis.register_script(_CLAIM)
        self._add = self._redis.register_script(_ADD)

    def add(self, pending: Pending, due: float) -> bool:
        added = self._add(keys=[self.PREFIX + pending.id, self.DUE],
                          args=[pending.id, due, pending.job, pending.url, pending.body,
                                pending.attempts])
        return bool(added)

    def claim(self, now: float, lease: float, limit: int) -> list[Pending]:
        ids = self._claim(keys=[self.DUE], args=[now, now + lease, limit])
        claimed = []
        for raw in ids:
            id = raw.decode()
            fields: dict[bytes, bytes] = self._redis.hgetall(self.PREFIX + id)  # type: ignore[assignment]
            if not fields:  # removed between the two steps
                self._redis.zrem(self.DUE, id)
                continue
            claimed.append(Pending(id, fields[b"job"].decode(), fields[b"url"].decode(),
                                   fields[b"body"], int(fields[b"attempts"])))
        return claimed

    def reschedule(self, id: str, attempts: int, due: float) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(self.PREFIX + id, "attempts", attempts)
        pipe.zadd(self.DUE, {id: due}, xx=True)
        pipe.execute()

    def remove(self, id: str) -> None:
        pipe = self._redis.pipeline()
        pipe.delete(self.PREFIX + id)
        pipe.zrem(self.DUE, id)
        pipe.execute()

    def next_due(self) -> float | None:
        first = self._redis.zrange(self.DUE, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def close(self) -> None:
        self._redis.close()


def open_outbox(queue_url: str, directory: Path) -> Outbox:
    """Redis when the fleet's queue is Redis (the same server), else SQLite in `directory`."""
    if uses_redis(queue_url):
        return RedisOutbox(queue_url)
    return SqliteOutbox(directory / "webhooks.sqlite3")
