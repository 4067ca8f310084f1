"""Diagnostics with spans, collected and sorted; PolicyError carries them all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from policyengine.source import Span

MAX_REPORTED = 10


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: a stable code (`compile/unknown-role`), a message, where, and help."""

    code: str
    message: str
    span: Span | None
    help: str | None = None
    severity: Severity = Severity.ERROR

    def sort_key(self) -> tuple[str, int, str]:
        if self.span is None:
            return ("", 0, self.code)
        return (self.span.source.name, self.span.start, self.code)

    def render(self) -> str:
        where = f"{self.span.location()}: " if self.span else ""
        lines = [f"{where}{self.severity.value}[{self.code}]: {self.message}"]
        if self.span is not None:
            lines.append(self.span.render_excerpt())
        if self.help:
            lines.append(f"  help: {self.help}")
        return "\n".join(lines)


class PolicyError(Exception):
    """A policy set that cannot be loaded: every error found, sorted, capped for display."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: tuple[Diagnostic, ...] = tuple(
            sorted(diagnostics, key=Diagnostic.sort_key)
        )
        super().__init__(self.render())

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    def render(self) -> str:
        shown = self.diagnostics[:MAX_REPORTED]
        text = "\n".join(d.render() for d in shown)
        hidden = len(self.diagnostics) - len(shown)
        if hidden > 0:
            text += f"\n... and {hidden} more error{'s' if hidden > 1 else ''}"
        return text


class Diagnostics:
    """A collector that passes report into; errors stop the build only after a stage."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Span | None, help: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, help))

    def warning(self, code: str, message: str, span: Span | None, help: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, help, Severity.WARNING))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise PolicyError(self.errors)


def one_of(names: Iterable[str]) -> str:
    """`a`, `b`, `c` for help lines."""
    listed = sorted(set(names))
    return ", ".join(f"`{n}`" for n in listed) if listed else "none"
