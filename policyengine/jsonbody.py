"""Strict JSON for request bodies: bounded size and depth, no duplicate keys, no NaN."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 100


class InvalidJson(ValueError):
    """A body that is not strict JSON; the message is safe to show the client."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidJson(f"duplicate key `{key[:64]}`")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"`{name}` is not valid JSON")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise InvalidJson("number too long")
    return int(text)


def _bounded_float(text: str) -> float:
    if len(text) > MAX_NUMBER_DIGITS:
        raise InvalidJson("number too long")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidJson("number out of range")
    return value


def _check_depth(data: bytes | str) -> None:
    """Reject deep nesting before json.loads can recurse (its C parser is bounded only by
    the recursion limit). Counting brackets outside strings is linear and cheap."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidJson(f"nesting deeper than {MAX_DEPTH}")
        elif ch in "]}":
            depth -= 1


def parse_json(data: bytes | str) -> Any:
    """Parse strict JSON or raise InvalidJson with a client-safe message."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJson("body is not valid UTF-8") from None
    _check_depth(data)
    try:
        return json.loads(
            data,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
            parse_float=_bounded_float,
        )
    except InvalidJson:
        raise
    except (ValueError, RecursionError) as err:
        message = err.msg if isinstance(err, json.JSONDecodeError) else "invalid JSON"
        raise InvalidJson(f"invalid JSON: {message}") from None
