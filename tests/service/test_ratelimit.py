from __future__ import annotations

from gendoc_service.ratelimit import RateLimiter, client_key


def test_burst_then_refusal_then_refill() -> None:
    rl = RateLimiter(per_minute=60, burst=3)
    assert [rl.take("a", 100.0).allowed for _ in range(3)] == [True, True, True]
    refused = rl.take("a", 100.0)
    assert not refused.allowed and refused.remaining == 0
    assert refused.headers()["Retry-After"] == "1"
    assert refused.headers()["RateLimit-Policy"] == '"client";q=3;w=3'
    assert refused.headers()["RateLimit"] == '"client";r=0;t=3'
    assert rl.take("a", 101.0).allowed  # one token per second at 60/min
    assert not rl.take("a", 101.0).allowed


def test_clients_are_independent_and_the_table_is_bounded() -> None:
    rl = RateLimiter(per_minute=60, burst=1, max_clients=2)
    assert rl.take("a", 0).allowed and not rl.take("a", 0).allowed
    assert rl.take("b", 0).allowed
    rl.take("c", 0)  # evicts "a", the least recently seen
    assert rl.take("a", 0).allowed


def test_reset_counts_until_full() -> None:
    rl = RateLimiter(per_minute=120, burst=4)
    d = rl.take("a", 0)
    assert d.remaining == 3 and d.reset == 0.5
    assert d.headers() == {"RateLimit-Policy": '"client";q=4;w=2', "RateLimit": '"client";r=3;t=1'}


def test_keys_hash_api_keys() -> None:
    assert "secret" not in client_key("secret", "1.2.3.4")
    assert client_key(None, "1.2.3.4") == "addr:1.2.3.4"
