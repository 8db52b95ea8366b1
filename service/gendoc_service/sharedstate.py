"""Where a fleet's small shared state lives (Idempotency-Key answers, the webhook
outbox): the Redis server of the job queue when `GENDOC_QUEUE_URL` names one, else
a SQLite file on this machine (`gendoc up`), next to the embedded queue."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# What a store that is down (or a disk that fails) raises.
STORE_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, sqlite3.Error, OSError)


def uses_redis(queue_url: str) -> bool:
    return queue_url.strip().startswith(REDIS_SCHEMES)


def redis_client(url: str) -> redis.Redis:
    # Short timeouts: a request waits on these calls; Redis answers in microseconds.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class SqliteFile:
    """One connection in WAL mode shared by this process's threads (behind a lock);
    `transaction` is BEGIN IMMEDIATE, so processes sharing the file take turns."""

    def __init__(self, path: Path, schema: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of
            # the process loses nothing, a power cut the last commits at most (a key
            # claimed again, an event found again by the sender's recovery), and a
            # keyed request does not wait for two fsyncs.
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in schema:
                self._db.execute(statement)

    def run(self, sql: str, *args: Any) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()
