"""Run a coroutine inline until it first waits, and on from callbacks: no Task at all.

A decision without I/O (in-memory limits, cached tokens) finishes in its first
step; wrapping each one in an asyncio Task would cost more than the decision.
A decision that waits (on the Redis store's batch, a JWKS fetch in a thread) is
stepped on from the done-callback of the future it waits for, as a Task steps its
coroutine, but without the Task, its context copy and its scheduling: under load
that was a fifth of a limited decision's cost with Redis. Decisions need no Task:
nothing they await asks for `asyncio.current_task()` (the Redis client's own
`asyncio.timeout` runs in the store's sender Task, see ratelimit/batch.py).

The answer is a plain future, which the connection (or the gRPC handler) waits on.
When the client goes away, its answer is cancelled and the decision still finishes
(a store check may already be on its way): its outcome is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Suspended(Generic[T]):
    """A coroutine that waited in its first step, and what it waits for."""

    __slots__ = ("_coro", "_waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self._coro = coro
        self._waiting_on = waiting_on

    def then(
        self, finish: Callable[[T], R], recover: Callable[[Exception], T]
    ) -> asyncio.Future[R]:
        """A future of `finish` of the coroutine's result; an exception the coroutine
        raises is `recover`ed into a result first."""
        steps = _Steps(self._coro, finish, recover, asyncio.get_running_loop())
        steps.wait_on(self._waiting_on)
        return steps.answer


def start_eagerly(coro: Coroutine[Any, Any, T]) -> T | Suspended[T]:
    try:
        waiting_on = coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    return Suspended(coro, waiting_on)


class _Steps(Generic[T, R]):
    """One suspended coroutine, stepped on each time what it waits for is done."""

    __slots__ = ("_coro", "_finish", "_loop", "_recover", "answer")

    def __init__(
        self,
        coro: Coroutine[Any, Any, T],
        finish: Callable[[T], R],
        recover: Callable[[Exception], T],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._coro = coro
        self._finish = finish
        self._recover = recover
        self._loop = loop
        self.answer: asyncio.Future[R] = loop.create_future()

    def wait_on(self, waiting_on: Any) -> None:
        if waiting_on is None:  # a bare `yield` (asyncio.sleep(0)): one turn of the loop
            self._loop.call_soon(self.step, None)
        elif getattr(waiting_on, "_asyncio_future_blocking", None) is None:
            self._coro.close()
            self._settle_error(RuntimeError(f"a decision yielded {waiting_on!r}"))
        else:  # what a Task does with a yielded future: take it over, wait on it
            waiting_on._asyncio_future_blocking = False
            waiting_on.add_done_callback(self.step)

    def step(self, _: object) -> None:
        # the coroutine's own `await` reads the future's result (or raises its error)
        try:
            waiting_on = self._coro.send(None)
        except StopIteration as done:
            self._settle(done.value)
        except asyncio.CancelledError:  # what it waited for was cancelled: so is this
            self.answer.cancel()
        except Exception as err:
            self._settle_error(err)
        else:
            self.wait_on(waiting_on)

    def _settle_error(self, err: Exception) -> None:
        try:
            result = self._recover(err)
        except Exception as failed:
            self._fail(failed)
            return
        self._settle(result)

    def _settle(self, result: T) -> None:
        try:
            answer = self._finish(result)
        except Exception as failed:
            self._fail(failed)
            return
        if not self.answer.done():  # cancelled: the client went away
            self.answer.set_result(answer)

    def _fail(self, err: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(err)
