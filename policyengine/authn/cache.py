"""Bounded, thread-safe caches of verification results.

Entries carry their own expiry and are checked against the request's `now` (the
engine's injected clock), so an entry never outlives the token's `exp` and tests
control time. A JWT's result is kept under the token as sent (a hit is one dict
lookup, of a hash the string already holds); an introspected token's under its
sha256 (`token_key`): its cache lives as long as the IdP allows, the token itself
says nothing of when it ends.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Hashable
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

DEFAULT_SIZE = 10_000


def token_key(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class ExpiringCache(Generic[K, T]):
    """Bounded in entries (the oldest go first); each value is valid until the expiry
    given when it was stored.

    Reads take no lock: a dict lookup is atomic (the event loop reads while a worker
    thread may store the result of a JWKS fetch or an introspection); writes do."""

    __slots__ = ("_entries", "_lock", "maxsize")

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        self.maxsize = maxsize
        self._entries: dict[K, tuple[T, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, now: float) -> T | None:
        entry = self.entry(key, now)
        return entry[0] if entry is not None else None

    def entry(self, key: K, now: float) -> tuple[T, float] | None:
        """The value and the time it expires at; None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry[1]:
            self._entries.pop(key, None)
            return None
        return entry

    def put(self, key: K, value: T, expires: float, now: float) -> None:
        if expires <= now:
            return
        with self._lock:
            entries = self._entries
            if key not in entries and len(entries) >= self.maxsize:
                # a quarter at a time: deleting from a dict's front one by one leaves
                # holes the next search for its first key steps over
                for old in list(islice(entries, max(1, self.maxsize // 4))):
                    del entries[old]
            entries[key] = (value, expires)

    def __len__(self) -> int:
        return len(self._entries)
