"""Path templates as route paths: `/pets/{petId}` with an integer petId is `/pets/{petId:int}`.

Also the sample request path `coverage` sends through the decision tree for a template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from policyengine.openapi.operations import Operation
from policyengine.paths import normalize_path
from policyengine.patterns import PatternError, parse_pattern

_PARAM = re.compile(r"\{([^{}]*)\}")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
SAMPLE_INT = "1"
SAMPLE_UUID = "00000000-0000-4000-8000-000000000000"
SAMPLE_TEXT = "sample"


@dataclass(frozen=True, slots=True)
class RoutePath:
    text: str
    shape: object  # what decides whether two routes overlap (patterns.PathPattern.shape)
    error: str | None
    notes: tuple[str, ...]


def route_path(op: Operation) -> RoutePath:
    template, notes = op.path, []
    if len(template) > 1 and template.endswith("/"):
        template = template.rstrip("/") or "/"
        notes.append("the spec's trailing `/` is dropped: it is not significant in requests")
    segments: list[str] = []
    taken: set[str] = set()
    for raw in template.split("/")[1:] if template != "/" else []:
        names = _PARAM.findall(raw)
        if not names:
            segments.append(raw)
            continue
        name = _param_name("_".join(names), taken)
        if raw != "{" + names[0] + "}":
            notes.append(f"the segment `{raw}` is matched whole, as the parameter `{name}`")
        segments.append("{" + name + _param_type(op, names) + "}")
    text = "/" + "/".join(segments)
    try:
        pattern = parse_pattern(text, normalize_path)
    except PatternError as err:
        return RoutePath(text, None, f"`{text}` is no route path: {err}", tuple(notes))
    return RoutePath(text, pattern.shape, None, tuple(notes))


def _param_name(raw: str, taken: set[str]) -> str:
    name = _NOT_NAME.sub("_", raw) or "p"
    if not (name[0].isalpha() or name[0] == "_"):
        name = "p_" + name
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _param_type(op: Operation, names: list[str]) -> str:
    """`:int` or `:uuid` when the one parameter of a segment is of that type."""
    if len(names) != 1:
        return ""
    param = op.param(names[0], "path")
    schema = param.schema if param is not None else {}
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "integer" or kind == ["integer"]:
        return ":int"
    if kind in ("string", ["string"]) and schema.get("format") == "uuid":
        return ":uuid"
    return ""


def sample_path(op: Operation) -> str:
    """A request path for the template, each parameter a value of its type."""

    def value(match: re.Match[str]) -> str:
        kind = _param_type(op, [match.group(1)])
        return SAMPLE_INT if kind == ":int" else SAMPLE_UUID if kind == ":uuid" else SAMPLE_TEXT

    return _PARAM.sub(value, op.path)
