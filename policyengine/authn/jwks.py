"""`jwks url`: a JWK Set fetched over HTTP, cached, refreshed without storms.

- Fetched on first use (not at load: `check` must work offline), with a timeout.
- Kept for the answer's Cache-Control max-age, bounded to [1 minute, 1 day];
  10 minutes when the IdP says nothing.
- A token with an unknown `kid` triggers a refresh (key rotation), but fetch
  attempts of any kind are at most one per `MIN_FETCH_INTERVAL`, so a flood of
  made-up `kid`s costs one request to the IdP per interval.
- When a refresh fails the last good set is kept; with no set at all, requests
  fail closed (AuthnUnavailable: 503 `authn.unavailable`, `Retry-After` the time to
  the next fetch attempt).

Times are the request's `now` (the engine's clock). The fetch blocks the calling
thread; `Engine.decide_async` runs cache-missing verifications of such blocks in a
worker thread, so a server's event loop never waits on the IdP.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from policyengine.authenticator import AuthnUnavailable
from policyengine.authn.http import FetchError, JsonResponse, fetch_json
from policyengine.authn.jwt_keys import KeyFileError, VerificationKey, parse_jwks

log = logging.getLogger("policyengine.authn")

FETCH_TIMEOUT = 3.0
MAX_JWKS_BYTES = 512 * 1024
MIN_TTL, DEFAULT_TTL, MAX_TTL = 60.0, 600.0, 86400.0
MIN_FETCH_INTERVAL = 10.0

Fetcher = Callable[[str], JsonResponse]


def _get(url: str) -> JsonResponse:
    return fetch_json(url, timeout=FETCH_TIMEOUT, max_bytes=MAX_JWKS_BYTES)


class JwksUrl:
    """The key set behind one URL; thread-safe, one fetch at a time."""

    def __init__(self, url: str, allowed: frozenset[str], fetch: Fetcher = _get) -> None:
        self.url = url
        self._allowed = allowed
        self._fetch = fetch
        self._keys: tuple[VerificationKey, ...] | None = None
        self._fresh_until = float("-inf")
        self._last_attempt = float("-inf")
        self._lock = threading.Lock()

    def keys(self, now: float) -> tuple[VerificationKey, ...]:
        """The current set, refreshed first when it is stale."""
        if now >= self._fresh_until:
            self.refresh(now)
        if self._keys is None:
            wait = self._last_attempt + MIN_FETCH_INTERVAL - now
            raise AuthnUnavailable(f"no key set from {self.url} yet", wait)
        return self._keys

    def stale(self, now: float) -> bool:
        return now >= self._fresh_until

    def refresh(self, now: float) -> bool:
        """Fetch now unless an attempt was made within the interval; True when a new set
        was installed."""
        with self._lock:
            if now - self._last_attempt < MIN_FETCH_INTERVAL:
                return False
            self._last_attempt = now
            try:
                response = self._fetch(self.url)
                keys = parse_jwks(response.value, self._allowed)
            except (FetchError, KeyFileError) as err:
                kept = "keeping the last good set" if self._keys is not None else "no key set"
                log.warning("jwks fetch from %s failed (%s); %s", self.url, err, kept)
                return False
            if not keys:
                log.warning("jwks from %s holds no key for the allowed algorithms", self.url)
            self._keys = keys
            self._fresh_until = now + _ttl(response.max_age)
            return True


def _ttl(max_age: float | None) -> float:
    if max_age is None:
        return DEFAULT_TTL
    return min(max(max_age, MIN_TTL), MAX_TTL)
