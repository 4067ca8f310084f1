"""Decision logs: one JSON line per decision, buffered, never a credential or a body.

A line holds what an operator needs to answer "why was this refused": when, which
decision, policy, route, method, the path with its query values removed (they may
carry tokens), subject, status, reason and latency. Headers, keys, tokens and
bodies never reach this module.
"""

from __future__ import annotations

import json
import logging
import random
import select
import sys
import time
from collections.abc import Iterator
from typing import IO

from policyengine.decision import Decision

FLUSH_BYTES = 64 * 1024
log = logging.getLogger("policyengine.server")


def path_without_query_values(target: str) -> str:
    """`/a?token=x&b=1` -> `/a?token&b`: the names say what was asked, not the values."""
    path, sep, query = target.partition("?")
    if not sep:
        return path
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return f"{path}?{'&'.join(names)}"


class DecisionLog:
    """Lines go to a buffer and reach the file once 64 KiB gather or on `flush()`
    (the server flushes every second and on shutdown)."""

    def __init__(self, stream: IO[bytes], sample: float = 1.0, close: bool = False) -> None:
        self._stream = stream
        self._sample = sample
        self._close = close
        self._buffer: list[bytes] = []  # whole lines
        self._size = 0
        self._stamp_second = -1
        self._stamp = ""

    @classmethod
    def open(cls, target: str, sample: float) -> DecisionLog:
        if target == "-":
            return cls(sys.stdout.buffer, sample)
        return cls(open(target, "ab"), sample, close=True)  # closed by close()

    def record(
        self,
        decision: Decision,
        decision_id: str,
        method: str,
        target: str,
        latency_us: int,
        revision: str | None = None,
    ) -> None:
        if decision.allow and self._sample < 1.0 and random.random() >= self._sample:
            return
        line = (
            json.dumps(
                {
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
                },
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
