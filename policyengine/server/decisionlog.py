"""Decision logs: one JSON line per decision, buffered, never a credential or a body.

A line holds what an operator needs to answer "why was this refused": when, which
decision, policy, route, method, the path with its query values removed (they may
carry tokens), subject, status, reason and latency. Headers, keys, tokens and
bodies never reach this module; the ECS format (ecs.py) adds the client address and
the trace id of a valid `traceparent`, and writes the path without its query.
"""

from __future__ import annotations

import json
import logging
import random
import select
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import IO, Any

from policyengine.decision import Decision
from policyengine.server.ecs import ecs_document
from policyengine.server.tracecontext import SpanIds, span_ids

FLUSH_BYTES = 64 * 1024
log = logging.getLogger("policyengine.server")


def path_without_query_values(target: str) -> str:
    """`/a?token=x&b=1` -> `/a?token&b`: the names say what was asked, not the values."""
    path, sep, query = target.partition("?")
    if not sep:
        return path
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return f"{path}?{'&'.join(names)}"


class LogFormat(StrEnum):
    JSON = "json"  # our own shape (README, "Decision log")
    ECS = "ecs"  # the Elastic Common Schema (ecs.py)


class DecisionLog:
    """Lines go to a buffer and reach the file once 64 KiB gather or on `flush()`
    (the server flushes every second and on shutdown)."""

    def __init__(
        self,
        stream: IO[bytes],
        sample: float = 1.0,
        close: bool = False,
        log_format: LogFormat = LogFormat.JSON,
    ) -> None:
        self._stream = stream
        self._sample = sample
        self._close = close
        self.ecs = log_format is LogFormat.ECS  # wants the client address and traceparent
        self._buffer: list[bytes] = []  # whole lines
        self._size = 0
        self._stamp_second = -1
        self._stamp = ""

    @classmethod
    def open(
        cls, target: str, sample: float, log_format: LogFormat = LogFormat.JSON
    ) -> DecisionLog:
        if target == "-":
            return cls(sys.stdout.buffer, sample, log_format=log_format)
        return cls(open(target, "ab"), sample, close=True, log_format=log_format)

    def record(
        self,
        decision: Decision,
        decision_id: str,
        method: str,
        target: str,
        latency_us: int,
        *,
        source_ip: str | None = None,
        ids: SpanIds | None = None,
        revision: str = "",
    ) -> None:
        if decision.allow and self._sample < 1.0 and random.random() >= self._sample:
            return
        fields: dict[str, Any]
        if self.ecs:
            fields = ecs_document(decision, timestamp=self._time(), decision_id=decision_id,
                                  method=method, path=target.partition("?")[0],
                                  latency_us=latency_us, source_ip=source_ip,
                                  ids=ids or span_ids(None), revision=revision)  # fmt: skip
        else:
            fields = {
                "time": self._time(),
                "decision_id": decision_id,
                "policy": decision.policy,
                "revision": revision,
                "route": decision.route,
                "method": method,
                "path": path_without_query_values(target),
                "subject": decision.subject,
                "status": decision.status,
                "reason": decision.reason.value,
                "latency_us": latency_us,
            }
        line = (
            json.dumps(
                fields,
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode("utf-8")
            + b"\n"
        )
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()

    def _time(self) -> str:
        """RFC 3339 UTC with milliseconds; the seconds part is formatted once a second."""
        now = time.time()
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def flush(self) -> None:
        if not self._buffer:
            return
        lines = self._buffer
        self._buffer = []
        self._size = 0
        try:
            for chunk in _pipe_sized(lines):
                self._stream.write(chunk)
            self._stream.flush()
        except OSError as err:  # a full disk must not take the decisions down with it
            log.error("decision log write failed: %s", err)

    def close(self) -> None:
        self.flush()
        if self._close:
            self._stream.close()


def _pipe_sized(lines: list[bytes]) -> Iterator[bytes]:
    """Whole lines in writes of at most PIPE_BUF bytes: the kernel writes each one at
    once, so the lines of several workers sharing stdout never interleave."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) > select.PIPE_BUF:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield b"".join(chunk)
