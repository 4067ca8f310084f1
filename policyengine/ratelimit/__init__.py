"""Rate limiting: the limiter the engine calls at step 5 of a decision, and its stores.

`MemoryLimiter` (memory.py) keeps counters in the process; `RedisLimiter` (redis.py)
shares them between processes and replicas. Both run the algorithms of algorithm.py.
"""

from __future__ import annotations

from policyengine.ratelimit.base import Limiter, LimitOutcome
from policyengine.ratelimit.headers import HeaderMode
from policyengine.ratelimit.memory import DEFAULT_MAX_BYTES, MemoryLimiter

__all__ = [
    "HeaderMode",
    "LimitOutcome",
    "Limiter",
    "MemoryLimiter",
    "default_limiter",
    "limiter_from_url",
]


def default_limiter() -> Limiter:
    return MemoryLimiter()


def limiter_from_url(
    url: str | None,
    *,
    headers: HeaderMode | str = HeaderMode.IETF,
    max_bytes: int = DEFAULT_MAX_BYTES,
    prefix: str | None = None,
    timeout_ms: int = 100,
    on_store_error: str = "deny",
    recovery_ms: int = 1000,
    ca_file: str | None = None,
) -> Limiter:
    """The in-memory limiter for no URL; a Redis limiter for a store URL (connect.py:
    one server, a Cluster or Sentinel). `max_bytes` bounds the memory store (for Redis:
    the local fallback). A ValueError, naming no secret, for a URL or prefix that cannot work."""
    mode = HeaderMode(headers)
    if url is None:
        if ca_file is not None:
            raise ValueError("a CA file is for a rediss:// store URL")
        return MemoryLimiter(max_bytes=max_bytes, headers=mode)
    from policyengine.ratelimit.redis import RedisLimiter  # imports redis-py only when asked

    return RedisLimiter(
        url,
        headers=mode,
        local_max_bytes=max_bytes,
        prefix=prefix,
        timeout_ms=timeout_ms,
        on_store_error=on_store_error,
        recovery_ms=recovery_ms,
        ca_file=ca_file,
    )
