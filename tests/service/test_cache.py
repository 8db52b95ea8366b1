from __future__ import annotations

from gendoc_service.cache import ByteLRU


def test_bound_is_bytes_and_least_recently_used_goes_first() -> None:
    cache: ByteLRU[bytes] = ByteLRU(10, size_of=len)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # "a" is now the most recent
    cache.put("c", b"cccc")  # 12 bytes > 10: "b" goes
    assert cache.get("b") is None and cache.get("a") == b"aaaa" and cache.get("c") == b"cccc"
    assert cache.bytes == 8 and len(cache) == 2


def test_a_value_larger_than_the_budget_is_not_cached() -> None:
    cache: ByteLRU[bytes] = ByteLRU(10, size_of=len)
    cache.put("a", b"aaaa")
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None and cache.get("a") == b"aaaa"


def test_replacing_a_key_counts_its_new_size_once() -> None:
    cache: ByteLRU[bytes] = ByteLRU(10, size_of=len)
    cache.put("a", b"aaaa")
    cache.put("a", b"aaaaaa", size=6)
    assert cache.bytes == 6 and len(cache) == 1
