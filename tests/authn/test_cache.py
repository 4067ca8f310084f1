"""The verified-token caches: bounded, expiring, the oldest entries out first."""

from __future__ import annotations

import hashlib

from policyengine.authn.cache import ExpiringCache, token_key


def test_an_entry_lives_until_its_expiry_and_never_past_it() -> None:
    cache: ExpiringCache[str, str] = ExpiringCache()
    cache.put("token", "alice", expires=100.0, now=10.0)
    assert cache.entry("token", 99.9) == ("alice", 100.0)
    assert cache.get("token", 100.0) is None  # expired: gone
    assert cache.get("token", 50.0) is None and len(cache) == 0


def test_an_entry_already_expired_is_not_kept() -> None:
    cache: ExpiringCache[str, str] = ExpiringCache()
    cache.put("token", "alice", expires=10.0, now=10.0)
    assert len(cache) == 0


def test_a_full_cache_lets_the_oldest_quarter_go() -> None:
    cache: ExpiringCache[str, int] = ExpiringCache(maxsize=8)
    for n in range(8):
        cache.put(f"t{n}", n, expires=100.0, now=0.0)
    cache.put("t0", 0, expires=100.0, now=0.0)  # already there: nothing goes
    assert len(cache) == 8
    cache.put("t8", 8, expires=100.0, now=0.0)
    assert [cache.get(f"t{n}", 1.0) for n in range(9)] == [None, None, 2, 3, 4, 5, 6, 7, 8]


def test_an_introspected_token_is_kept_under_its_sha256() -> None:
    assert token_key("opaque") == hashlib.sha256(b"opaque").digest()
