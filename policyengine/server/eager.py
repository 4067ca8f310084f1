"""Run a coroutine inline until it first waits, so most decisions need no Task.

A decision without I/O (in-memory limits, cached tokens) finishes in its first
step; wrapping each one in an asyncio Task would cost more than the decision.
When the coroutine does wait (a JWKS fetch in a thread), the rest runs in a Task
that steps it on exactly as asyncio's own Task would. Code that insists on running
inside a Task (`asyncio.timeout`, which the Redis client uses) must not be stepped
this way: the server steps eagerly only when no networked store is configured.
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
    """Step the coroutine on as a Task would: wait for what it yielded, then send it
    the outcome (a value or the exception, cancellation included)."""
    while True:
        error: BaseException | None = None
        try:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare `yield`: give the loop one turn
            else:
                # what a Task does with a yielded future: take it over, then wait on it
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as err:  # the coroutine decides what its waits' errors mean
            error = err
        try:
            waiting_on = coro.send(None) if error is None else coro.throw(error)
        except StopIteration as done:
            result: T = done.value
            return result
