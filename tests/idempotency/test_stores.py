"""The same contract for both stores: SQLite (one machine) and a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gendoc_service.idempotency import (
    IdempotencyStore,
    Record,
    RedisIdempotency,
    SqliteIdempotency,
    StoredResponse,
    open_idempotency,
)
from redis_server import RedisServer, running_redis

from gendoc.readiness import wait_until


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdempotencyStore]:
    if request.param == "sqlite":
        made: IdempotencyStore = open_idempotency("", tmp_path)
        assert isinstance(made, SqliteIdempotency)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        made = open_idempotency(server.url, tmp_path)
        assert isinstance(made, RedisIdempotency)
    yield made
    made.close()


def test_the_first_claim_wins_and_the_others_see_it_running(
        store: IdempotencyStore, tmp_path: Path) -> None:
    key = tmp_path.name + "a"
    assert store.claim(key, "fp1", 60) is None
    assert store.claim(key, "fp1", 60) == Record("fp1", False)
    assert store.claim(key, "fp2", 60) == Record("fp1", False)


def test_a_completed_answer_is_returned(store: IdempotencyStore, tmp_path: Path) -> None:
    key = tmp_path.name + "b"
    assert store.claim(key, "fp", 60) is None
    done = Record("fp", True, StoredResponse(200, [("content-type", "a/b")], b"body"))
    store.complete(key, done, 60)
    assert store.claim(key, "fp", 60) == done


def test_a_released_key_can_be_claimed_again(store: IdempotencyStore, tmp_path: Path) -> None:
    key = tmp_path.name + "c"
    assert store.claim(key, "fp", 60) is None
    store.release(key)
    assert store.claim(key, "other", 60) is None


def test_a_lease_and_a_retention_expire(store: IdempotencyStore, tmp_path: Path) -> None:
    key = tmp_path.name + "d"
    assert store.claim(key, "fp", 0.2) is None  # its replica died: nobody completes it
    wait_until(lambda: store.claim(key, "fp2", 60) is None, 30, what="lease expired")
    store.complete(key, Record("fp2", True, None), 600)
    assert store.claim(key, "fp3", 60) == Record("fp2", True, None)
    store.complete(key, Record("fp2", True, None), 0.2)
    wait_until(lambda: store.claim(key, "fp3", 60) is None, 30, what="retention expired")


def test_the_sqlite_file_is_shared_by_two_openers(tmp_path: Path) -> None:
    a, b = SqliteIdempotency(tmp_path / "i.db"), SqliteIdempotency(tmp_path / "i.db")
    try:
        assert a.claim("k", "fp", 60) is None
        assert b.claim("k", "fp", 60) == Record("fp", False)
    finally:
        a.close()
        b.close()
