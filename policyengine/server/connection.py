"""HTTP/1.1 connections: an asyncio Protocol over httptools (llhttp), with keep-alive.

Measured on one core against nginx `return 200` (wrk, 50 connections): a bare
Protocol on httptools + uvloop answers as many requests per second as nginx,
uvicorn with a bare ASGI app about half, so the sidecar speaks HTTP itself.

Per connection: requests are answered in order (pipelining included), each
bounded in header size, header count, body size and time; malformed HTTP gets
400 and the connection closes. Timeouts are checked by one sweep a second over
all connections rather than by a timer per request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from policyengine.server.app import log_internal_error
from policyengine.server.message import HttpRequest
from policyengine.server.responses import (
    CONTINUE,
    Response,
    error_response,
    serialize,
)

if TYPE_CHECKING:
    from policyengine.server.clientip import Peer
    from policyengine.server.state import ServerState

_TOO_MANY_HEADERS = (431, "request.headers_too_large", "too many header fields")
_HEADERS_TOO_LARGE = (431, "request.headers_too_large", "request headers are too large")
_BODY_TOO_LARGE = (413, "request.body_too_large", "request body is too large")
_MALFORMED = (400, "request.malformed", "malformed HTTP request")
_TIMEOUT = (408, "request.timeout", "request not received in time")


class _Refused(Exception):
    def __init__(self, problem: tuple[int, str, str]) -> None:
        self.problem = problem


class HttpConnection(asyncio.Protocol):
    __slots__ = (
        "_body",
        "_body_size",
        "_chunk",
        "_closed",
        "_head_bound",
        "_head_size",
        "_in_head",
        "_in_request",
        "_messages",
        "_pairs",
        "_parser",
        "_peer",
        "_queue",
        "_reading_paused",
        "_served",
        "_state",
        "_transport",
        "_url",
        "since",
    )

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: Peer | None = None
        self._queue: deque[tuple[asyncio.Future[Response] | Response, bool, bool]] = deque()
        self._closed = False
        self._reading_paused = False
        self._in_request = False
        self._in_head = False
        self._messages = 0
        self._served = False
        self.since = state.now
        self._url = b""
        self._pairs: list[tuple[bytes, bytes]] = []
        self._head_size = self._head_bound = 0
        self._chunk = 0
        self._body: list[bytes] = []
        self._body_size = 0

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        peername = self._transport.get_extra_info("peername")
        if isinstance(peername, tuple):
            self._peer = self._state.proxies.peer(peername[0])
        self._state.connections.add(self)
        self._state.metrics.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._state.connections.discard(self)
        for reply, _, _ in self._queue:
            if isinstance(reply, asyncio.Future):
                reply.cancel()
        self._queue.clear()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        head_before, message_before = self._in_head, self._messages
        self._chunk = len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish_then_close()  # answered as plain HTTP; what follows is not HTTP
        except httptools.HttpParserCallbackError as err:
            context = err.__context__
            if isinstance(context, _Refused):
                self._refuse(context.problem)
            else:
                log_internal_error(context or err)
                self._refuse((500, "internal", "internal error"))
        except httptools.HttpParserError:
            self._refuse(_MALFORMED)
        else:
            if self._in_head:
                self._count_head(len(data), whole=head_before and self._messages == message_before)

    def _count_head(self, size: int, whole: bool) -> None:
        """Bound what httptools buffers of an unfinished head (it holds a header until
        the header ends). `whole`: every byte of the chunk went to this head."""
        self._head_bound += size  # at least the head's bytes so far
        if whole:
            self._head_size += size
            if self._head_size > self._state.limits.max_header_bytes:
                self._refuse(_HEADERS_TOO_LARGE)

    def pause_writing(self) -> None:  # the client reads slower than we answer
        self._pause_reading()

    def resume_writing(self) -> None:
        self._resume_reading()

    # -- httptools callbacks -----------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_request = self._in_head = True
        self._messages += 1
        self.since = self._state.now
        self._url = b""
        self._pairs = []
        self._head_size = self._head_bound = 0
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._pairs.append((name, value))  # decoded when the app needs them

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self._state.limits
        pairs = self._pairs
        if len(pairs) > limits.max_headers:
            raise _Refused(_TOO_MANY_HEADERS)
        if self._head_bound + self._chunk > limits.max_header_bytes and (  # else it cannot be
            len(self._url) + sum(len(n) + len(v) for n, v in pairs) > limits.max_header_bytes
        ):
            raise _Refused(_HEADERS_TOO_LARGE)
        length = expect = None
        for name, value in pairs:  # by length and first letter: no lowercase copy for
            size = len(name)  # the usual fields (X-Original-URI is as long as Content-Length)
            if size == 14 and name[0] | 0x20 == 0x63 and name.lower() == b"content-length":
                length = value
            elif size == 6 and name[0] | 0x20 == 0x65 and name.lower() == b"expect":
                expect = value
        if length is None:
            return
        if int(length) > limits.max_body_bytes:  # llhttp has checked that it is one number
            raise _Refused(_BODY_TOO_LARGE)
        if expect is not None and expect.lower() == b"100-continue" and not self._queue:
            assert self._transport is not None
            self._transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._state.limits.max_body_bytes:
            raise _Refused(_BODY_TOO_LARGE)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_request = False
        if self._closed:
            return
        parser = self._parser
        method = parser.get_method().decode("ascii")
        body = b"".join(self._body) if self._body else b""
        request = HttpRequest(method, self._url.decode("latin-1"), self._pairs, body, self._peer)
        try:
            reply = self._state.app.handle(request)
        except Exception as err:
            log_internal_error(err)
            reply = error_response(500, "internal", "internal error")
        keep_alive = parser.should_keep_alive()
        head_only = method == "HEAD"
        if not self._queue and isinstance(reply, Response):
            self._send(reply, keep_alive, head_only)  # the usual case: answered at once
            return
        self._queue.append((reply, keep_alive, head_only))
        if isinstance(reply, asyncio.Future):
            reply.add_done_callback(self._flush_queue)
        if len(self._queue) >= self._state.limits.max_pipelined:
            self._pause_reading()

    # -- answering ---------------------------------------------------------------------
    def _flush_queue(self, _: object = None) -> None:
        queue = self._queue
        while queue and not self._closed:
            reply, keep_alive, head_only = queue[0]
            if isinstance(reply, asyncio.Future):
                if not reply.done():
                    return
                response = _result(reply)
            else:
                response = reply
            queue.popleft()
            self._send(response, keep_alive, head_only)
        if not queue:
            self._resume_reading()

    def _send(self, response: Response, keep_alive: bool, head_only: bool) -> None:
        transport = self._transport
        assert transport is not None
        state = self._state
        close = not keep_alive or state.draining
        transport.write(serialize(response, state.date.line, close, head_only))
        self._served = True
        self.since = state.now
        if close:
            self._close()

    def _refuse(self, problem: tuple[int, str, str]) -> None:
        """Answer a request we will not parse further, after any answers it queued behind."""
        status, kind, message = problem
        self._state.metrics.http_error(kind)
        self._in_request = False
        self._pause_reading()
        response = error_response(status, kind, message)
        if self._queue:
            self._queue.append((response, False, False))
            self._flush_queue()
        else:
            self._send(response, False, False)

    def _finish_then_close(self) -> None:
        self._pause_reading()
        if self._queue:
            last, _, head_only = self._queue.pop()
            self._queue.append((last, False, head_only))
        else:
            self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self.since = self._state.now
            assert self._transport is not None
            self._transport.close()  # writes what is buffered first

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None and not self._closed:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and not self._closed:
            self._reading_paused = False
            assert self._transport is not None
            self._transport.resume_reading()

    def abort(self) -> None:
        """Drop the connection now: a drain ran out of time, or the client stopped reading."""
        if self._transport is not None:
            self._closed = True
            self._transport.abort()

    # -- the once-a-second sweep -------------------------------------------------------
    def sweep(self, now: float) -> None:
        """Time out slow requests (408) and idle connections; close idle ones when draining;
        drop closed ones whose client will not read the rest of what we wrote."""
        limits = self._state.limits
        waited = now - self.since
        if self._closed:
            if waited > limits.request_timeout:
                self.abort()
            return
        if self._queue:
            return  # a decision is in flight: it has its own timeouts
        if self._in_request:
            if waited > limits.request_timeout:
                self._refuse(_TIMEOUT)
        elif self._state.draining or waited > (
            limits.idle_timeout if self._served else limits.request_timeout
        ):
            self._close()


def _result(future: asyncio.Future[Response]) -> Response:
    if future.cancelled():
        return error_response(503, "internal", "shutting down")
    error = future.exception()
    if error is not None:
        log_internal_error(error)
        return error_response(500, "internal", "internal error")
    return future.result()
