"""Many concurrent checks, one round trip: the asyncio side of the Redis store.

A server answers hundreds of requests at once on one event loop. Giving each its own
connection runs out of connections, and each command costs redis-py tens of
microseconds to write and read. Instead every check of a loop joins a queue, and one
sender per loop takes whatever is queued and sends it as one script call per
`MAX_CHECKS` checks (limits.lua takes many checks, each atomic), all written at once
(on one connection of the client's pool; a cluster's pipeline sends them to the node of
their slot); it hands each check its part of the reply and goes on while anything is
queued. Under
load a batch is what arrived during the previous round trip; idle, a batch is one
check and costs one round trip, as before.

`timeout_s` bounds a check's whole wait, queue included: a batch is given what is left
of its oldest check's time, and checks whose time ran out in the queue fail at once.
A failed round trip fails its batch once (one store error, however many checks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

if TYPE_CHECKING:
    from policyengine.ratelimit.connect import AsyncClient

ScriptCall = tuple[list[str], list[str]]  # one check's keys and script arguments
MAX_CHECKS = 128  # per script call: Redis runs one script at a time, others wait for it


class StoreFailed(Exception):
    """A check's round trip failed; the cause was counted and logged by the sender."""


@dataclass(slots=True)
class _Waiting:
    call: ScriptCall
    reply: asyncio.Future[Any]
    since: float  # loop time when queued


class ScriptBatcher:
    """The checks queued on one event loop, sent one pipeline at a time."""

    def __init__(
        self,
        client: AsyncClient,  # one server's, or a cluster's: its pipeline routes by slot
        script: tuple[str, str],  # (sha1, source)
        timeout_s: float,
        failed: Callable[[Exception], None],
    ) -> None:
        self._client = client
        self._sha, self._source = script
        self._timeout_s = timeout_s
        self._failed = failed
        self._queue: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None

    async def evalsha(self, call: ScriptCall) -> list[Any]:
        """The script's reply for this one check."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(call, loop.create_future(), loop.time())
        self._queue.append(waiting)
        if self._sender is None:  # it starts after this turn's other checks queued too
            self._sender = loop.create_task(self._send_all())
        reply: list[Any] = await waiting.reply
        return reply

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send_all(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._send(batch)
        finally:
            self._sender = None

    async def _send(self, batch: list[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        left = batch[0].since + self._timeout_s - loop.time()
        try:
            if left <= 0:
                raise TimeoutError("rate-limit checks waited their whole timeout in the queue")
            async with asyncio.timeout(left):
                replies = await self._run([w.call for w in batch])
        except Exception as err:  # whatever failed, every check of the batch is told
            self._failed(err)
            for waiting in batch:
                _settle(waiting.reply, error=StoreFailed())
            return
        for waiting, reply in zip(batch, replies, strict=True):
            _settle(waiting.reply, reply=reply)

    async def _run(self, calls: list[ScriptCall]) -> list[list[Any]]:
        """Each check's reply. The script is loaded again, and the calls that missed it
        sent again, when Redis lost it (a restart, SCRIPT FLUSH)."""
        chunks = [calls[i : i + MAX_CHECKS] for i in range(0, len(calls), MAX_CHECKS)]
        replies = await self._pipeline(chunks)
        missed = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missed:
            await self._client.script_load(self._source)
            again = await self._pipeline([chunks[i] for i in missed])
            for i, reply in zip(missed, again, strict=True):
                replies[i] = reply
        split: list[list[Any]] = []
        for chunk, reply in zip(chunks, replies, strict=True):
            split += _per_check(chunk, reply)
        return split

    async def _pipeline(self, chunks: list[list[ScriptCall]]) -> list[Any]:
        """One EVALSHA per chunk, all written at once; each reply, or its error reply."""
        commands = [self._evalsha_args(chunk) for chunk in chunks]
        client = self._client
        if not isinstance(client, Redis):  # a cluster: its pipeline sends to the slot's node
            pipe = client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute(raise_on_error=False))
        # one server, or Sentinel's primary: the commands packed in C, on one connection
        # of the client's pool, without the pipeline's per-command bookkeeping (a tenth
        # of a check's cost); redis-py still connects, times out and disconnects
        packed = [hiredis.pack_command(command) for command in commands]
        pool = client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            try:
                return await _exchange(connection, packed)
            except RedisConnectionError:  # a pooled connection the server closed (restarted)
                await connection.disconnect()  # once more, anew, as the client's Retry does
                return await _exchange(connection, packed)
        finally:
            await pool.release(connection)

    def _evalsha_args(self, chunk: list[ScriptCall]) -> tuple[Any, ...]:
        keys = [key for call_keys, _ in chunk for key in call_keys]
        args = [arg for _, call_args in chunk for arg in call_args]
        return ("EVALSHA", self._sha, len(keys), *keys, *args)


async def _exchange(connection: Any, packed: list[bytes]) -> list[Any]:
    await connection.send_packed_command(packed, check_health=False)
    return [await _reply(connection) for _ in packed]


async def _reply(connection: Any) -> Any:
    """A command's reply; an error reply (NOSCRIPT) is read whole, so the connection
    stays in step, and returned as the pipeline would."""
    try:
        return await connection.read_response()
    except ResponseError as err:
        return err


def _per_check(chunk: list[ScriptCall], reply: Any) -> list[list[Any]]:
    """One script call's reply cut into its checks' replies (admitted, then 2 per limit)."""
    if isinstance(reply, Exception):
        raise reply
    if not isinstance(reply, list):
        raise ValueError("unexpected reply from the rate-limit script")
    parts, at = [], 0
    for keys, _ in chunk:
        size = 1 + 2 * len(keys)
        parts.append(reply[at : at + size])
        at += size
    if at != len(reply):
        raise ValueError("unexpected reply from the rate-limit script")
    return parts


def _settle(
    future: asyncio.Future[Any], *, reply: Any = None, error: Exception | None = None
) -> None:
    if future.done():  # cancelled: the check's caller went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(reply)
