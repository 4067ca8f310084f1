"""A bounded, thread-safe cache of verification results, keyed by a hash of the token.

Entries carry their own expiry and are checked against the request's `now` (the
engine's injected clock), so an entry never outlives the token's `exp` and tests
control time. The plaintext token is never kept: the key is its sha256.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Generic, TypeVar

from cachetools import LRUCache

T = TypeVar("T")

DEFAULT_SIZE = 10_000


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class ExpiringCache(Generic[T]):
    """LRU-bounded; each value is valid until the expiry given when it was stored."""

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        self._entries: LRUCache[bytes, tuple[T, float]] = LRUCache(maxsize)
        self._lock = threading.Lock()

    def get(self, key: bytes, now: float) -> T | None:
        entry = self.entry(key, now)
        return entry[0] if entry is not None else None

    def entry(self, key: bytes, now: float) -> tuple[T, float] | None:
        """The value and the time it expires at; None when absent or expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry[1]:
                del self._entries[key]
                return None
            return entry

    def put(self, key: bytes, value: T, expires: float, now: float) -> None:
        if expires <= now:
            return
        with self._lock:
            self._entries[key] = (value, expires)
