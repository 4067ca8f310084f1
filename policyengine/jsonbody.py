"""Strict JSON for request bodies (RFC 8259 and I-JSON, RFC 7493).

Rejected, each with a message safe to show the client: invalid UTF-8, a byte order mark,
an empty body, duplicate keys, NaN/Infinity, numbers longer than MAX_NUMBER_CHARS, out
of float range or more precise than a float holds (numbers.py), nesting deeper than
MAX_DEPTH, and unpaired surrogates. The parser is the standard library's C scanner;
every check is linear in the body's size.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from policyengine.numbers import MAX_CHARS, NumberError, exact_float
from policyengine.request import InputError, InputRefused, Reason

MAX_DEPTH = 64
MAX_NUMBER_CHARS = MAX_CHARS
# an escaped surrogate; paired ones are decoded into one character, unpaired ones are not
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def member(value: Any, key: str) -> Any:
    """One step into parsed JSON (a body, a token's claims): an object member by name, an
    array element by a decimal index (`items.0`); None when it is missing, or when `value`
    is of another kind (a string, a number, null). The only step every path takes."""
    if isinstance(value, dict | Mapping):  # dict first: bodies and most claims
        return value.get(key)
    if isinstance(value, list) and key.isdecimal():  # not isdigit: int("²") raises
        index = int(key)
        return value[index] if index < len(value) else None
    return None


def value_at(value: Any, keys: tuple[str, ...]) -> Any:
    """The value at a path of names, one `member` step per name; None as soon as a step
    finds nothing (a JSON null counts as nothing). Conditions (`body.a.b`, `claims.a.b`)
    and limit keys (`by claims.a.b`) read paths split when the policy was compiled."""
    for key in keys:
        value = member(value, key)
        if value is None:
            return None
    return value


def value_at_dotted(value: Any, path: str) -> Any:
    """A dotted path as the authn settings write it (`subject claim "realm_access.sub"`,
    `required_claims "org.id"`): the same `member` steps as value_at, but since a name may
    itself hold dots (Auth0's `https://example.com/roles`), each level tries the rest of
    the path as one name first, then splits it at each dot from the left. The first
    value found (not None) wins; a path starting with a dot is only a name."""
    found = member(value, path)
    if found is not None:
        return found
    start = 0
    while (dot := path.find(".", start)) > 0:
        inner = member(value, path[:dot])
        if inner is not None:
            found = value_at_dotted(inner, path[dot + 1 :])
            if found is not None:
                return found
        start = dot + 1
    return None


class InvalidJson(ValueError):
    """A body that is not strict JSON; the message is safe to show the client."""


def parse_json(data: bytes | str) -> Any:
    """Parse strict JSON or raise InvalidJson with a client-safe message."""
    text = _text(data)
    if not text.strip():
        raise InvalidJson("the body is empty")
    if text.startswith("\ufeff"):
        raise InvalidJson("the body starts with a byte order mark")
    try:
        value = _DECODER.decode(text)
    except InvalidJson:
        raise
    except NumberError as err:
        raise InvalidJson(str(err)) from None
    except RecursionError:  # the C scanner recurses per level; Python's limit stops it
        raise InvalidJson(f"nesting deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as err:
        raise InvalidJson(
            f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except ValueError:
        raise InvalidJson("invalid JSON") from None
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _check_depth(value)
    if _SURROGATE_ESCAPE.search(text):
        _check_surrogates(value)
    return value


def _text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("the body is not valid UTF-8") from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidJson(f"duplicate key {json.dumps(key[:64], ensure_ascii=False)}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidJson(f"`{name}` is not a JSON number")


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise InvalidJson(f"a number is longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _check_depth(value: Any) -> None:
    """Iterative, over containers only: cheap next to the parse that built them."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidJson(f"nesting deeper than {MAX_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


_DECODER = json.JSONDecoder(  # built once: json.loads with hooks builds one per call
    object_pairs_hook=_object,
    parse_constant=_reject_constant,
    parse_int=_int,
    parse_float=exact_float,  # the number as written, or refused: numbers.py
)


def _check_surrogates(value: Any) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJson("a string holds an unpaired UTF-16 surrogate") from None


def read_strict(body: Any, max_bytes: int) -> Any:
    """The one way a request body is read: within `max_bytes`, measured before parsing
    (413), then strict JSON (400). Raises InputRefused with the client-facing reason."""
    try:
        raw = _raw_bytes(body)
    except InvalidJson as err:
        raise _not_json(err) from None
    if len(raw) > max_bytes:
        raise InputRefused(413, Reason.INPUT_TOO_LARGE,
                           f"the body is larger than {max_bytes} bytes")  # fmt: skip
    try:
        return parse_json(raw)
    except InvalidJson as err:
        raise _not_json(err) from None


def _not_json(err: InvalidJson) -> InputRefused:
    return InputRefused(400, Reason.INPUT_INVALID, "the body is not valid JSON",
                        (InputError("", str(err)),))  # fmt: skip


def _raw_bytes(body: Any) -> bytes:
    """The body as bytes, so `max` and strict parsing apply the same way in every face: a
    value the caller parsed already (the Python API, `/v1/decide`) is serialized first."""
    if isinstance(body, bytes):
        return body
    try:
        if isinstance(body, str):
            return body.encode("utf-8")
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise InvalidJson("the body is not a JSON value") from None
