"""Query parameters as an inline `query { ... }` schema, in the policy language.

Query fields take scalars and lists of scalars only (`compile/bad-query-field`); a
parameter the language cannot describe is left out, the schema is opened with `...`
so it is not refused, and a note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from policyengine.openapi.operations import Parameter
from policyengine.openapi.schemas import INT_BOUNDS
from policyengine.openapi.spec import Spec

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_STRING_FORMATS = ("date-time", "email", "uri", "uuid")  # what inline schemas assert
_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True, slots=True)
class QueryBlock:
    fields: tuple[str, ...]  # `name?: type`, one per parameter described
    open: bool  # some parameter could not be described: unknown ones are let through
    notes: tuple[str, ...]  # what the author must still decide


class _Unsupported(Exception):
    pass


def query_block(spec: Spec, params: list[Parameter]) -> QueryBlock:
    fields: list[str] = []
    notes: list[str] = []
    for param in params:
        if not _NAME.match(param.name):
            notes.append(f"query parameter `{param.name}` has a name fields cannot take")
            continue
        try:
            kind = _type(spec, param.schema, top=True)
        except _Unsupported as why:
            notes.append(f"query parameter `{param.name}` is not checked: {why}")
            continue
        fields.append(f"{param.name}{'' if param.required else '?'}: {kind}")
    return QueryBlock(tuple(fields), bool(notes), tuple(notes))


def _type(spec: Spec, raw: Any, top: bool) -> str:
    schema = spec.resolve(raw)
    if not isinstance(schema, dict):
        raise _Unsupported("its schema is not an object")
    kinds = [k for k in _kinds(schema) if k != "null"]
    if len(kinds) != 1:
        raise _Unsupported("it has no single type")
    kind = kinds[0]
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return "bool"
    if kind == "array" and top:
        items = _type(spec, schema.get("items") or {}, top=False)
        return f"[{items}]" + _range("len", schema.get("minItems"), schema.get("maxItems"))
    raise _Unsupported(f"a query field cannot be of type `{kind}`")


def _kinds(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return ["string"]
    return []


def _string(schema: dict[str, Any]) -> str:
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return " | ".join(policy_string(v) for v in dict.fromkeys(enum))
    if enum is not None:
        raise _Unsupported("its enum holds values other than strings")
    text = "string" + _range("len", schema.get("minLength"), schema.get("maxLength"))
    pattern = schema.get("pattern")
    fmt = schema.get("format")
    if pattern is None and fmt == "date":
        pattern = _DATE
    if isinstance(pattern, str):
        if "\n" in pattern:
            raise _Unsupported("its pattern spans lines")
        text += f" matching {policy_string(pattern)}"
    if fmt in _STRING_FORMATS:
        text += f" format {fmt}"
    return text


def _number(schema: dict[str, Any], kind: str) -> str:
    if "enum" in schema:
        raise _Unsupported("an enum of numbers has no query form")
    low, high = schema.get("minimum"), schema.get("maximum")
    ex_low, ex_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(ex_low, bool):  # OpenAPI 3.0: a flag on minimum
        ex_low = low if ex_low else None
        low = None if ex_low is not None else low
    if isinstance(ex_high, bool):
        ex_high = high if ex_high else None
        high = None if ex_high is not None else high
    if kind == "integer":
        if ex_low is not None:
            low = int(ex_low) + 1 if low is None else max(low, int(ex_low) + 1)
        if ex_high is not None:
            high = int(ex_high) - 1 if high is None else min(high, int(ex_high) - 1)
        bounds = INT_BOUNDS.get(str(schema.get("format")))
        if bounds and low is None:
            low = bounds[0]
        if bounds and high is None:
            high = bounds[1]
        return "int" + _range("", low, high)
    if ex_low is not None or ex_high is not None:
        raise _Unsupported("exclusive bounds on a number have no query form")
    return "number" + _range("", low, high)


def _range(word: str, low: Any, high: Any) -> str:
    if low is None and high is None:
        return ""
    text = f"{_number_text(low)}..{_number_text(high)}"
    return f" {word} {text}" if word else f" {text}"


def _number_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(int(value))


def policy_string(text: str) -> str:
    """A policy string: `\\` and `"` are its only escapes, every other backslash is kept."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
