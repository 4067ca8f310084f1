"""Inline schemas (the policy language) to JSON Schema 2020-12, checking what cannot be right.

Each check reports a diagnostic at the span of the part that is wrong and carries on, so
one `check` shows every problem. The JSON Schema produced is plain data: it is what the
validator runs and what `policyengine schema export` prints.
"""

from __future__ import annotations

from typing import Any

from policyengine import ast
from policyengine.errors import Diagnostics, one_of
from policyengine.regex import RegexError, compile_regex
from policyengine.source import Span

FORMATS = ("date-time", "email", "uri", "uuid")
DEFS_PREFIX = "#/$defs/"

JsonSchema = dict[str, Any]


class InlineConverter:
    """One policy set's inline schemas to JSON Schema.

    `for_query` restricts field types to what a URL can carry: strings, numbers, bools,
    string enums, and lists of those (repeated parameters).
    """

    def __init__(self, diags: Diagnostics, *, for_query: bool = False) -> None:
        self.diags = diags
        self.for_query = for_query

    def object(self, schema: ast.InlineSchema) -> JsonSchema:
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        for field in schema.fields:
            name = field.name.value
            if name in properties:
                self.diags.error(
                    "compile/duplicate-field",
                    f"field `{name}` is given twice",
                    field.name.span,
                )
                continue
            if self.for_query:
                self._check_query_type(field.type, top=True)
            properties[name] = self.type(field.type)
            if not field.optional:
                required.append(name)
        result: JsonSchema = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        if not schema.open:
            result["additionalProperties"] = False
        return result

    def type(self, kind: ast.TypeExpr) -> JsonSchema:
        if isinstance(kind, ast.StringType):
            return self._string(kind)
        if isinstance(kind, ast.IntType):
            return {"type": "integer", **self._bounds(kind.range, "minimum", "maximum", whole=True)}
        if isinstance(kind, ast.NumberType):
            return {"type": "number", **self._bounds(kind.range, "minimum", "maximum")}
        if isinstance(kind, ast.BoolType):
            return {"type": "boolean"}
        if isinstance(kind, ast.ArrayType):
            length = self._bounds(kind.length, "minItems", "maxItems", whole=True, count=True)
            return {"type": "array", "items": self.type(kind.items), **length}
        if isinstance(kind, ast.EnumType):
            return {"enum": list(dict.fromkeys(kind.values))}
        return {"$ref": DEFS_PREFIX + kind.name.value}

    def _string(self, kind: ast.StringType) -> JsonSchema:
        result: JsonSchema = {"type": "string"}
        result.update(self._bounds(kind.length, "minLength", "maxLength", whole=True, count=True))
        if kind.matching is not None:
            self._check_pattern(kind.matching, kind.matching_span or kind.span)
            result["pattern"] = kind.matching
        if kind.format is not None:
            if kind.format.value not in FORMATS:
                self.diags.error(
                    "compile/unknown-format",
                    f"unknown format `{kind.format.value}`",
                    kind.format.span,
                    f"formats are {one_of(FORMATS)}",
                )
            result["format"] = kind.format.value
        return result

    def _check_pattern(self, pattern: str, span: Span) -> None:
        """The validator's own regex engine decides, so compile time and request time agree."""
        try:
            compile_regex(pattern)
        except RegexError as err:
            self.diags.error("compile/bad-regex", str(err), span, err.help)

    def _bounds(
        self,
        rng: ast.Range | None,
        low_key: str,
        high_key: str,
        *,
        whole: bool = False,
        count: bool = False,
    ) -> JsonSchema:
        if rng is None:
            return {}
        bounds = [b for b in (rng.low, rng.high) if b is not None]
        if whole and any(isinstance(b, float) and not b.is_integer() for b in bounds):
            what = "a length" if count else "an int range"
            self.diags.error("compile/bad-range", f"{what} takes whole numbers", rng.span)
        elif count and any(b < 0 for b in bounds):
            self.diags.error("compile/bad-range", "a length cannot be negative", rng.span)
        elif rng.low is not None and rng.high is not None and rng.low > rng.high:
            self.diags.error(
                "compile/empty-range",
                f"the range {_show(rng.low)}..{_show(rng.high)} is empty",
                rng.span,
                "the low end comes first: `A..B` with A <= B",
            )
        result: JsonSchema = {}
        if rng.low is not None:
            result[low_key] = _whole(rng.low) if whole else rng.low
        if rng.high is not None:
            result[high_key] = _whole(rng.high) if whole else rng.high
        return result

    def _check_query_type(self, kind: ast.TypeExpr, *, top: bool) -> None:
        if isinstance(kind, ast.ArrayType) and top:
            self._check_query_type(kind.items, top=False)
            return
        if isinstance(kind, ast.ArrayType):
            what = "a list of lists"
        elif isinstance(kind, ast.SchemaRef):
            what = "an object"
        else:
            return
        self.diags.error(
            "compile/bad-query-field",
            f"a query parameter cannot hold {what}",
            kind.span,
            "query parameters are strings, numbers, bools, string enums, or a list of one "
            "of these (the parameter repeated)",
        )


def _whole(value: int | float) -> int | float:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _show(value: int | float) -> str:
    return str(_whole(value))
