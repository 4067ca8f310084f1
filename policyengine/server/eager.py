"""Run a coroutine inline until it first waits, so most decisions need no Task.

A decision without I/O (in-memory limits, cached tokens) finishes in its first
step; wrapping each one in an asyncio Task would cost more than the decision.
When the coroutine does wait (a JWKS fetch in a thread), the rest runs in a Task
as usual. Code that insists on running inside a Task (`asyncio.timeout`, which the
Redis client uses) must not be stepped this way: the server steps eagerly only
when no networked store is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Suspended(Generic[T]):
    """A coroutine that waited in its first step; `rest` finishes it."""

    __slots__ = ("rest",)

    def __init__(self, rest: Coroutine[Any, Any, T]) -> None:
        self.rest = rest


def start_eagerly(coro: Coroutine[Any, Any, T]) -> T | Suspended[T]:
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    return Suspended(_resume(coro, waiting_on))


async def _resume(coro: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    """Wait for what the coroutine yielded, as a Task would have, then let it go on."""
    try:
        if waiting_on is None:
            await asyncio.sleep(0)  # a bare `yield`: give the loop one turn
        else:
            try:
                await waiting_on
            except asyncio.CancelledError:
                raise
            except Exception:  # the coroutine reads the outcome itself when it resumes
                pass
    except BaseException:
        coro.close()
        raise
    return await coro
