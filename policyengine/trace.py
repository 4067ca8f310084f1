"""The trace `explain` returns: one line per step, citing file:line."""

from __future__ import annotations


class Trace:
    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)
