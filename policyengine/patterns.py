"""Route path patterns: `/api/orders/{id:int}/**` parsed into typed segments.

Shared by the compiler (which parses and checks them) and the decision tree (which
matches requests against them). Segment kinds are ordered by match precedence.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class SegmentKind(IntEnum):
    """Lower value wins when several routes match (LANGUAGE.md, "Paths")."""

    STATIC = 0
    TYPED = 1
    PARAM = 2
    STAR = 3
    GLOB = 4


class ParamType(IntEnum):
    INT = 0
    UUID = 1

    @property
    def convert(self) -> Callable[[str], int | str | None]:
        """The typed value of a request segment, or None when it does not fit."""
        return _CONVERTERS[self]


def _int_value(segment: str) -> int | None:
    if segment.isascii() and segment.isdigit() and len(segment) <= 18:  # most ids: no slice
        return int(segment)
    digits = segment[1:] if segment[:1] == "-" else segment
    if 0 < len(digits) <= 18 and digits.isascii() and digits.isdigit():
        return int(segment)
    return None


def _uuid_value(segment: str) -> str | None:
    return segment.lower() if _UUID.fullmatch(segment) else None


_CONVERTERS: dict[ParamType, Callable[[str], int | str | None]] = {
    ParamType.INT: _int_value,
    ParamType.UUID: _uuid_value,
}
PARAM_TYPES = {"int": ParamType.INT, "uuid": ParamType.UUID}
MAX_PATTERN_SEGMENTS = 64


@dataclass(frozen=True, slots=True)
class PatternSegment:
    kind: SegmentKind
    text: str = ""  # static text, or the parameter's name
    type: ParamType | None = None

    @property
    def shape(self) -> tuple[int, str]:
        """What decides overlap: names of parameters do not."""
        if self.kind is SegmentKind.STATIC:
            return (self.kind, self.text)
        if self.kind is SegmentKind.TYPED:
            assert self.type is not None
            return (self.kind, self.type.name)
        return (self.kind, "")


@dataclass(frozen=True, slots=True)
class PathPattern:
    text: str
    segments: tuple[PatternSegment, ...]

    @property
    def shape(self) -> tuple[tuple[int, str], ...]:
        return tuple(s.shape for s in self.segments)

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of captured segments, in order (typed and plain parameters)."""
        return tuple(
            s.text for s in self.segments if s.kind in (SegmentKind.TYPED, SegmentKind.PARAM)
        )

    def param_type(self, name: str) -> ParamType | None:
        for s in self.segments:
            if s.text == name and s.kind in (SegmentKind.TYPED, SegmentKind.PARAM):
                return s.type
        return None


class PatternError(ValueError):
    """A pattern that is not valid; `offset` is within the pattern text."""

    def __init__(self, message: str, offset: int, length: int, help: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.length = length
        self.help = help


def parse_pattern(text: str, normalize: object) -> PathPattern:
    """Parse a pattern; `normalize` is paths.normalize_path, to insist static text is canonical."""
    if not text.startswith("/"):
        raise PatternError("a route path must start with `/`", 0, 1)
    segments: list[PatternSegment] = []
    seen: set[str] = set()
    if text.count("/") > MAX_PATTERN_SEGMENTS:
        raise PatternError(
            f"a route path has at most {MAX_PATTERN_SEGMENTS} segments", 0, len(text)
        )
    offset = 1
    raw_parts = text[1:].split("/") if text != "/" else []
    for index, raw in enumerate(raw_parts):
        last = index == len(raw_parts) - 1
        segments.append(_parse_segment(raw, offset, last, seen, normalize))
        offset += len(raw) + 1
    return PathPattern(text, tuple(segments))


def _parse_segment(
    raw: str, offset: int, last: bool, seen: set[str], normalize: object
) -> PatternSegment:
    if raw == "":
        if last:
            raise PatternError(
                "a route path must not end with `/`",
                offset - 1,
                1,
                "trailing slashes are ignored in requests; drop it",
            )
        raise PatternError("empty path segment (`//`)", offset - 1, 2)
    if raw == "**":
        if not last:
            raise PatternError("`**` may only be the last segment", offset, 2)
        return PatternSegment(SegmentKind.GLOB)
    if raw == "*":
        return PatternSegment(SegmentKind.STAR)
    param = _PARAM.fullmatch(raw)
    if param:
        return _param_segment(param, offset, seen)
    if any(c in raw for c in "{}*"):
        raise PatternError(
            f"`{raw}` is not a valid segment",
            offset,
            len(raw),
            "parameters are `{name}`, `{name:int}` or `{name:uuid}`; "
            "wildcards `*` and `**` stand alone",
        )
    _check_canonical(raw, offset, normalize)
    return PatternSegment(SegmentKind.STATIC, raw)


def _param_segment(param: re.Match[str], offset: int, seen: set[str]) -> PatternSegment:
    name, type_name = param.group(1), param.group(2)
    if name in seen:
        raise PatternError(f"path parameter `{name}` appears twice", offset, len(param.group(0)))
    seen.add(name)
    if type_name is None:
        return PatternSegment(SegmentKind.PARAM, name)
    if type_name not in PARAM_TYPES:
        raise PatternError(
            f"unknown parameter type `{type_name}`",
            offset,
            len(param.group(0)),
            "types are `int` and `uuid`",
        )
    return PatternSegment(SegmentKind.TYPED, name, PARAM_TYPES[type_name])


def _check_canonical(raw: str, offset: int, normalize: object) -> None:
    """Static text must equal what request normalization produces, or it could never match."""
    assert callable(normalize)
    if raw in (".", ".."):
        raise PatternError(
            "dot segments cannot appear in a route path",
            offset,
            len(raw),
            "requests are normalized before matching, so none would ever match",
        )
    try:
        canonical = normalize("/" + raw)
    except ValueError as err:
        raise PatternError(f"`{raw}` can never match a request: {err}", offset, len(raw)) from None
    if canonical != (raw,):
        written = "/".join(canonical) or "(nothing)"
        raise PatternError(
            f"`{raw}` is not in normalized form",
            offset,
            len(raw),
            f"requests are normalized before matching; write `{written}`",
        )
