"""One compiled JSON Schema validator, and its violations as pointers and client messages.

The library is jsonschema-rs (bench/schema.py has the comparison). Patterns run on Rust's
`regex` engine, which matches in linear time, so no user-supplied pattern can make a
request backtrack for seconds; the price is no look-around and no backreferences.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

import jsonschema_rs
from jsonschema_rs import ValidationErrorKind as Kind

from policyengine.request import InputError

PATTERN_OPTIONS = jsonschema_rs.RegexOptions()
MAX_ERRORS = 20  # violations reported in one decision
DETAILED_UP_TO = 1000  # values in a body past which only its first violation is described
SHOWN_CHARS = 40  # how much of a client's string a message quotes back
_ARTICLES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


class SchemaValidator:
    """A validator compiled once from a JSON Schema document; calling it never raises for
    any JSON value, and returns at most MAX_ERRORS violations."""

    __slots__ = ("_validator",)

    def __init__(self, document: dict[str, Any]) -> None:
        """Raises jsonschema_rs.ValidationError, ReferencingError or ValueError when the
        document cannot be compiled (the compiler turns those into diagnostics)."""
        self._validator = jsonschema_rs.validator_for(
            document,
            validate_formats=True,
            ignore_unknown_formats=False,
            pattern_options=PATTERN_OPTIONS,
            offline=True,  # a `$ref` never reaches the network or the disk
        )

    def __call__(self, value: Any) -> tuple[InputError, ...]:
        if self._validator.is_valid(value):
            return ()
        return tuple(islice(self._violations(value), MAX_ERRORS))

    def _violations(self, value: Any) -> Iterator[InputError]:
        # iter_errors builds every error up front (2-6 µs each), and a 1 MiB body can hold
        # 100k of them: only a value small enough to bound that work is described in full
        if _has_at_most(value, DETAILED_UP_TO):
            for error in self._validator.iter_errors(value):
                yield from describe(error)
            return
        try:
            self._validator.validate(value)
        except jsonschema_rs.ValidationError as first:
            yield from describe(first)


def _has_at_most(value: Any, limit: int) -> bool:
    """Whether `value` holds at most `limit` values; stops counting past the limit."""
    count = 0
    stack = [value] if isinstance(value, dict | list) else []
    while stack:
        item = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        count += len(children)
        if count > limit:
            return False
        stack.extend(child for child in children if isinstance(child, dict | list))
    return True


def describe(error: jsonschema_rs.ValidationError) -> Iterator[InputError]:
    """One library error as InputErrors a client developer can act on."""
    pointer = to_pointer(error.instance_path)
    kind = error.kind
    if isinstance(kind, Kind.Required):
        yield InputError(f"{pointer}/{_escape(kind.property)}", "required field is missing")
    elif isinstance(kind, Kind.AdditionalProperties):
        for name in kind.unexpected[:MAX_ERRORS]:
            yield InputError(f"{pointer}/{_escape(name)}", "unknown field")
    else:
        yield InputError(pointer, message(kind, error.instance, error.message))


def message(kind: Kind, instance: Any, fallback: str) -> str:
    shown = show(instance)
    if isinstance(kind, Kind.Type):
        return f"{shown} is not {' or '.join(_ARTICLES.get(t, t) for t in kind.types)}"
    if isinstance(kind, Kind.Maximum):
        return f"{shown} is greater than the maximum of {show(kind.limit)}"
    if isinstance(kind, Kind.Minimum):
        return f"{shown} is less than the minimum of {show(kind.limit)}"
    if isinstance(kind, Kind.MaxLength):
        return f"{shown} is longer than {_count(kind.limit, 'character')}"
    if isinstance(kind, Kind.MinLength):
        return f"{shown} is shorter than {_count(kind.limit, 'character')}"
    if isinstance(kind, Kind.MaxItems):
        return f"the array has more than {_count(kind.limit, 'item')}"
    if isinstance(kind, Kind.MinItems):
        return f"the array has fewer than {_count(kind.limit, 'item')}"
    if isinstance(kind, Kind.Pattern):
        return f"{shown} does not match `{_clip(kind.pattern, 100)}`"
    if isinstance(kind, Kind.Format):
        return f"{shown} is not a valid {kind.format}"
    if isinstance(kind, Kind.Enum):
        return f"{shown} is not one of {_options(kind.options)}"
    return _clip(fallback, 200)


def show(value: Any) -> str:
    """A short rendering of a client's value: strings clipped, containers named."""
    if isinstance(value, dict):
        return "the object"
    if isinstance(value, list):
        return "the array"
    if isinstance(value, str):
        return json.dumps(_clip(value, SHOWN_CHARS), ensure_ascii=False)
    scalar = value is None or isinstance(value, bool | int | float)
    return _clip(json.dumps(value) if scalar else str(value), SHOWN_CHARS)


def to_pointer(path: Sequence[str | int]) -> str:
    """An RFC 6901 JSON pointer; the whole document is the empty pointer."""
    return "".join(f"/{_escape(str(part))}" for part in path)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(limit: int, noun: str) -> str:
    return f"{limit} {noun}" + ("" if limit == 1 else "s")


def _options(options: Sequence[Any]) -> str:
    listed = ", ".join(show(option) for option in options[:10])
    return listed + (", …" if len(options) > 10 else "")
