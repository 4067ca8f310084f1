"""HTTP/1.1 responses as bytes, with everything that does not vary built once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, NamedTuple

JSON = b"Content-Type: application/json\r\n"
TEXT = b"Content-Type: text/plain; charset=utf-8\r\n"
PROMETHEUS = b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
CLOSE = b"Connection: close\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

_STATUS_LINES = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_EMPTY_LENGTH = b"Content-Length: 0\r\n"


class UnsafeHeaderValue(ValueError):
    """A header value that would break the response framing (CR, LF, NUL...)."""


class Response(NamedTuple):
    """What a handler answers; the connection adds the status line, Date and framing."""

    status: int
    head: bytes = b""  # header lines, each ending in CRLF
    body: bytes = b""


def header_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    """`Name: value` lines; raises UnsafeHeaderValue rather than let a value split them.

    Values come from decisions (subjects, realms, limits) and may come from tokens:
    a subject holding CR LF must never add a header of its choosing.
    """
    lines = []
    for name, value in headers:
        if not value.isprintable():
            raise UnsafeHeaderValue(f"the value of `{name}` holds a control character")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("utf-8")


def json_response(status: int, payload: Mapping[str, Any], head: bytes = b"") -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, head + JSON, body + b"\n")


def error_response(status: int, reason: str, message: str) -> Response:
    """A response about the HTTP exchange itself (not a policy decision)."""
    return json_response(status, {"status": status, "reason": reason, "message": message})


class DateHeader:
    """The Date header, formatted once per second rather than once per response."""

    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""
        self.refresh()

    def refresh(self) -> None:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()


def serialize(response: Response, date: bytes, close: bool, head_only: bool) -> bytes:
    status_line = _STATUS_LINES.get(response.status) or f"HTTP/1.1 {response.status} \r\n".encode()
    body = response.body
    if not body and not close:  # an allow: the usual answer, joined at once
        return b"".join((status_line, response.head, date, _EMPTY_LENGTH, b"\r\n"))
    length = f"Content-Length: {len(body)}\r\n".encode() if body else _EMPTY_LENGTH
    parts = [status_line, response.head, date, length]
    if close:
        parts.append(CLOSE)
    parts.append(b"\r\n")
    if body and not head_only:
        parts.append(body)
    return b"".join(parts)
