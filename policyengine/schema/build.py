"""What the `build-schemas` pass does: every declared schema compiled once into a validator.

Each schema becomes one self-contained JSON Schema document: the schema itself at the root
and every schema it references, directly or not, under `$defs` (inline references are
`#/$defs/NAME`). A schema file referenced from an inline schema is embedded with an `$id`,
so `$ref`s inside the file keep resolving against the file itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

from policyengine import ast
from policyengine.errors import Diagnostics
from policyengine.schema.convert import InlineConverter, JsonSchema
from policyengine.schema.cycles import report_required_cycles
from policyengine.schema.files import DRAFT_2020_12, first_line, load_schema_file
from policyengine.schema.validator import SchemaValidator
from policyengine.source import Span

DEFAULT_MAX_BODY = 1024 * 1024
EMBEDDED_ID = "urn:policyengine:schema:"


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    name: str
    json_schema: dict[str, Any]  # the document the validator runs, as `schema export` prints it
    validate: SchemaValidator
    fields: tuple[str, ...]  # top-level fields of an inline schema; () for a file
    open_fields: bool  # unknown top-level fields allowed (`...`, or any schema file)


@dataclass(frozen=True, slots=True)
class _Converted:
    decl: ast.SchemaDecl
    body: JsonSchema
    refs: frozenset[str]  # schemas it names directly


def compile_schemas(
    declared: Mapping[str, tuple[ast.SchemaDecl, Path]], diags: Diagnostics
) -> dict[str, CompiledSchema]:
    """Each declared schema (with the directory its file paths are relative to) that
    compiles, by name; diagnostics for the others."""
    converted = _convert_all(declared, diags)
    report_required_cycles(_inline_bodies(converted), diags)
    compiled: dict[str, CompiledSchema] = {}
    for name, item in converted.items():
        closure = _closure(name, converted)
        if closure is None:
            continue  # refers to an unknown or broken schema: already reported
        document = _document(item, {n: converted[n] for n in closure})
        is_file = isinstance(item.decl.body, ast.SchemaFile)
        code = "compile/schema-file" if is_file else "compile/bad-schema"
        validator = build_validator(document, diags, _span_of(item.decl), code)
        if validator is not None:
            compiled[name] = _compiled(name, item.decl, document, validator)
    return compiled


def build_validator(
    document: JsonSchema, diags: Diagnostics, span: Span, code: str
) -> SchemaValidator | None:
    """The validator, or None and a diagnostic (a file's unresolvable `$ref`, say)."""
    try:
        return SchemaValidator(document)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as err:
        diags.error(code, f"this schema cannot be compiled: {first_line(err)}", span)
        return None


def _convert_all(
    declared: Mapping[str, tuple[ast.SchemaDecl, Path]], diags: Diagnostics
) -> dict[str, _Converted]:
    """Schemas that converted without an error, by name."""
    converter = InlineConverter(diags)
    converted: dict[str, _Converted] = {}
    for name, (decl, directory) in declared.items():
        errors_before = len(diags.errors)
        body: JsonSchema | None
        if isinstance(decl.body, ast.InlineSchema):
            body = converter.object(decl.body)
            refs = frozenset(_references(decl.body))
        else:
            body = load_schema_file(directory, decl.body, diags)
            refs = frozenset()
        if body is not None and len(diags.errors) == errors_before:
            converted[name] = _Converted(decl, body, refs)
    return converted


def _inline_bodies(converted: dict[str, _Converted]) -> dict[str, ast.InlineSchema]:
    return {
        name: item.decl.body
        for name, item in converted.items()
        if isinstance(item.decl.body, ast.InlineSchema)
    }


def _references(schema: ast.InlineSchema) -> set[str]:
    found: set[str] = set()
    for field in schema.fields:
        kind = field.type
        while isinstance(kind, ast.ArrayType):
            kind = kind.items
        if isinstance(kind, ast.SchemaRef):
            found.add(kind.name.value)
    return found


def _closure(name: str, converted: dict[str, _Converted]) -> set[str] | None:
    """Every schema `name` reaches through references; None if one of them is unusable."""
    found: set[str] = set()
    stack = [name]
    while stack:
        item = converted.get(stack.pop())
        if item is None:
            return None
        for ref in item.refs - found:
            found.add(ref)
            stack.append(ref)
    return found


def _document(root: _Converted, defs: dict[str, _Converted]) -> JsonSchema:
    if isinstance(root.decl.body, ast.SchemaFile):
        return root.body  # a file is its own document, `$schema` included
    document: JsonSchema = {"$schema": DRAFT_2020_12, **root.body}
    if defs:
        document["$defs"] = {name: _embedded(name, defs[name]) for name in sorted(defs)}
    return document


def _embedded(name: str, item: _Converted) -> JsonSchema:
    if isinstance(item.decl.body, ast.InlineSchema):
        return item.body
    return {"$id": EMBEDDED_ID + name, **item.body}


def _compiled(
    name: str, decl: ast.SchemaDecl, document: JsonSchema, validator: SchemaValidator
) -> CompiledSchema:
    if isinstance(decl.body, ast.InlineSchema):
        fields = tuple(f.name.value for f in decl.body.fields)
        return CompiledSchema(name, document, validator, fields, decl.body.open)
    return CompiledSchema(name, document, validator, (), True)


def _span_of(decl: ast.SchemaDecl) -> Span:
    return decl.body.span if isinstance(decl.body, ast.SchemaFile) else decl.name.span
