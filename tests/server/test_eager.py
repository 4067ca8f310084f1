"""Coroutines run inline until they first wait; the rest goes on in a Task."""

from __future__ import annotations

import asyncio

import pytest

from policyengine.server.eager import Suspended, start_eagerly


async def immediate() -> int:
    return 7


async def waits_for(future: asyncio.Future[int]) -> int:
    return await future + 1


async def waits_on_a_thread() -> int:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: 41) + 1


def test_a_coroutine_that_never_waits_finishes_inline() -> None:
    assert start_eagerly(immediate()) == 7


def test_a_coroutine_that_waits_finishes_in_a_task() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        outcome = start_eagerly(waits_for(future))
        assert isinstance(outcome, Suspended)
        task = asyncio.ensure_future(outcome.rest)
        await asyncio.sleep(0)
        assert not task.done()
        future.set_result(1)
        assert await task == 2
        outcome = start_eagerly(waits_on_a_thread())
        assert isinstance(outcome, Suspended) and await outcome.rest == 42

    asyncio.run(scenario())


def test_an_exception_of_what_it_waited_for_reaches_the_coroutine() -> None:
    async def catches(future: asyncio.Future[int]) -> str:
        try:
            await future
        except KeyError:
            return "handled inside"
        return "not reached"

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(catches(future))
        assert isinstance(outcome, Suspended)
        task = asyncio.ensure_future(outcome.rest)
        future.set_exception(KeyError("x"))
        assert await task == "handled inside"

    asyncio.run(scenario())


def test_an_exception_in_the_first_step_is_raised_at_once() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        start_eagerly(fails())


def test_cancelling_the_rest_closes_the_coroutine() -> None:
    closed = []

    async def cleans_up(future: asyncio.Future[int]) -> int:
        try:
            return await future
        finally:
            closed.append(True)

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(cleans_up(future))
        assert isinstance(outcome, Suspended)
        task = asyncio.ensure_future(outcome.rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert closed == [True]
