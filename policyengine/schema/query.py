"""`query { fields }`: URL parameters coerced by the schema's types, then validated.

Parameters arrive as strings (`parse_qs` with blank values kept). A field typed int,
number or bool turns a string that spells one into that type; a string that does not is
left as it is, so the validator reports it (`"abc" is not an integer`). A `[T]` field
takes every occurrence of a repeated parameter; any other field takes exactly one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from policyengine import ast
from policyengine.errors import Diagnostics
from policyengine.numbers import NumberError, exact_float
from policyengine.request import InputError
from policyengine.schema.build import DEFAULT_MAX_BODY, build_validator
from policyengine.schema.convert import InlineConverter, JsonSchema
from policyengine.schema.files import DRAFT_2020_12
from policyengine.schema.validator import MAX_ERRORS, SchemaValidator, to_pointer
from policyengine.tree import InputSpec

Coerce = Callable[[str], Any]
_INT = re.compile(r"-?[0-9]{1,100}")
_NUMBER = re.compile(r"-?[0-9]{1,100}(?:\.[0-9]{1,100})?(?:[eE][+-]?[0-9]{1,4})?")
_BOOLS: Mapping[str, bool] = MappingProxyType({"true": True, "false": False})


@dataclass(frozen=True, slots=True)
class QueryValidator:
    """Callable on `ctx.query`; compiled once per route."""

    scalars: Mapping[str, Coerce]  # field -> coercion of its one value
    lists: Mapping[str, Coerce]  # `[T]` field -> coercion of each value
    validator: SchemaValidator
    json_schema: JsonSchema  # the coerced parameters' schema, for `schema export --query`

    def __call__(self, query: Mapping[str, list[str]]) -> tuple[InputError, ...]:
        repeated = tuple(
            InputError(to_pointer([name]), f"given {len(values)} times; takes one value")
            for name, values in query.items()
            if len(values) > 1 and name in self.scalars
        )
        try:
            coerced = self.coerce(query)
        except _Unreadable as err:  # checking the double would not check what was sent
            return (*repeated, InputError(to_pointer([err.name]), err.message))[:MAX_ERRORS]
        return (repeated + self.validator(coerced))[:MAX_ERRORS]

    def coerce(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for name, values in query.items():
            try:
                if name in self.lists:
                    value[name] = [self.lists[name](v) for v in values]
                elif name in self.scalars:
                    value[name] = self.scalars[name](values[0])
                else:  # unknown: rejected by a closed schema, ignored by an open one
                    value[name] = values[0] if len(values) == 1 else values
            except NumberError as err:
                raise _Unreadable(name, str(err)) from None
        return value


class _Unreadable(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def compile_query_schema(rule: ast.QueryRule, diags: Diagnostics) -> InputSpec:
    errors_before = len(diags.errors)
    converter = InlineConverter(diags, for_query=True)
    document: JsonSchema = {"$schema": DRAFT_2020_12, **converter.object(rule.schema)}
    fields = tuple(f.name.value for f in rule.schema.fields)
    validate: Callable[[Any], tuple[InputError, ...]] = _unusable
    if len(diags.errors) == errors_before:
        validator = build_validator(document, diags, rule.schema.span, "compile/bad-schema")
        if validator is not None:
            validate = _query_validator(rule.schema, validator, document)
    return InputSpec("query", DEFAULT_MAX_BODY, validate, fields, rule.schema.open)


def _query_validator(
    schema: ast.InlineSchema, validator: SchemaValidator, document: JsonSchema
) -> QueryValidator:
    scalars: dict[str, Coerce] = {}
    lists: dict[str, Coerce] = {}
    for field in schema.fields:
        if isinstance(field.type, ast.ArrayType):
            lists[field.name.value] = _coercion(field.type.items)
        else:
            scalars[field.name.value] = _coercion(field.type)
    return QueryValidator(MappingProxyType(scalars), MappingProxyType(lists), validator, document)


def _coercion(kind: ast.TypeExpr) -> Coerce:
    if isinstance(kind, ast.IntType):
        return _to_int
    if isinstance(kind, ast.NumberType):
        return _to_number
    if isinstance(kind, ast.BoolType):
        return _to_bool
    return _as_is


def _to_int(text: str) -> int | str:
    return int(text) if _INT.fullmatch(text) else text


def _to_number(text: str) -> int | float | str:
    """Raises a NumberError for a number a double cannot hold as written."""
    if not _NUMBER.fullmatch(text):
        return text
    if _INT.fullmatch(text):
        return int(text)
    return exact_float(text)


def _to_bool(text: str) -> bool | str:
    return _BOOLS.get(text, text)


def _as_is(text: str) -> str:
    return text


def _unusable(value: Any) -> tuple[InputError, ...]:
    # only ever built for a policy that fails to compile; fails closed all the same
    return (InputError("", "the query schema could not be compiled"),)
