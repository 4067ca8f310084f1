"""Coroutines run inline until they first wait; the rest is stepped from callbacks."""

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


async def gives_a_turn_then_waits(future: asyncio.Future[int]) -> int:
    await asyncio.sleep(0)
    first = await future
    return first + await asyncio.to_thread(lambda: 10)


def recover(err: Exception) -> int:
    return -1


def test_a_coroutine_that_never_waits_finishes_inline() -> None:
    assert start_eagerly(immediate()) == 7


def test_a_coroutine_that_waits_is_finished_from_callbacks_without_a_task() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        tasks = len(asyncio.all_tasks())
        outcome = start_eagerly(waits_for(future))
        assert isinstance(outcome, Suspended)
        answer = outcome.then(lambda n: f"answer {n}", recover)
        await asyncio.sleep(0)
        assert not answer.done()
        assert len(asyncio.all_tasks()) == tasks  # no Task was made for it
        future.set_result(1)
        assert await answer == "answer 2"
        outcome = start_eagerly(waits_on_a_thread())
        assert isinstance(outcome, Suspended)
        assert await outcome.then(str, recover) == "42"

    asyncio.run(scenario())


def test_several_waits_and_a_bare_yield_are_stepped_through() -> None:
    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(gives_a_turn_then_waits(future))
        assert isinstance(outcome, Suspended)
        answer = outcome.then(lambda n: n * 2, recover)
        for _ in range(3):
            await asyncio.sleep(0)
        future.set_result(5)
        assert await answer == 30

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
        answer = outcome.then(lambda text: text, lambda err: "recovered")
        future.set_exception(KeyError("x"))
        assert await answer == "handled inside"

    asyncio.run(scenario())


def test_an_exception_the_coroutine_raises_later_is_recovered() -> None:
    async def fails_later(future: asyncio.Future[int]) -> int:
        await future
        raise ValueError("boom")

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(fails_later(future))
        assert isinstance(outcome, Suspended)
        seen: list[Exception] = []
        answer = outcome.then(lambda n: n, lambda err: seen.append(err) or -1)
        future.set_result(0)
        assert await answer == -1
        assert [str(err) for err in seen] == ["boom"]

    asyncio.run(scenario())


def test_an_exception_in_the_first_step_is_raised_at_once() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        start_eagerly(fails())


def test_a_failing_finish_fails_the_answer() -> None:
    def finish(n: int) -> int:
        raise RuntimeError("render failed")

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(waits_for(future))
        assert isinstance(outcome, Suspended)
        answer = outcome.then(finish, recover)
        future.set_result(1)
        with pytest.raises(RuntimeError, match="render failed"):
            await answer

    asyncio.run(scenario())


def test_a_cancelled_answer_lets_the_decision_finish_and_drops_it() -> None:
    finished = []

    async def counts(future: asyncio.Future[int]) -> int:
        value = await future
        finished.append(value)
        return value

    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(counts(future))
        assert isinstance(outcome, Suspended)
        answer = outcome.then(lambda n: n, recover)
        answer.cancel()  # the client went away
        future.set_result(3)
        for _ in range(2):
            await asyncio.sleep(0)
        assert answer.cancelled()

    asyncio.run(scenario())
    assert finished == [3]


def test_a_cancelled_wait_cancels_the_answer() -> None:
    async def scenario() -> None:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        outcome = start_eagerly(waits_for(future))
        assert isinstance(outcome, Suspended)
        answer = outcome.then(lambda n: n, recover)
        future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer

    asyncio.run(scenario())
