"""Input schemas: inline schemas to JSON Schema (draft 2020-12), validators compiled once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml

from policyengine import ast
from policyengine.decision import InputError
from policyengine.errors import Diagnostics

if TYPE_CHECKING:
    from policyengine.compile.state import CompileState
    from policyengine.tree import InputSpec

DEFAULT_MAX_BODY = 1024 * 1024
MAX_ERRORS = 20
_FORMATS = {"email", "uuid", "date-time", "uri"}


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    name: str
    json_schema: dict[str, Any]
    validate: Callable[[Any], tuple[InputError, ...]]
    fields: tuple[str, ...]
    open_fields: bool


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path) if path else ""


def make_validator(json_schema: dict[str, Any]) -> Callable[[Any], tuple[InputError, ...]]:
    validator = jsonschema.Draft202012Validator(
        json_schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )

    def validate(value: Any) -> tuple[InputError, ...]:
        errors = []
        for error in validator.iter_errors(value):
            errors.append(InputError(_pointer(error.absolute_path) or "/", error.message))
            if len(errors) >= MAX_ERRORS:
                break
        return tuple(sorted(errors, key=lambda e: e.pointer))

    return validate


class InlineConverter:
    """Inline schema syntax to a JSON Schema dict, reporting what cannot be right."""

    def __init__(self, diags: Diagnostics) -> None:
        self.diags = diags

    def object(self, schema: ast.InlineSchema) -> dict[str, Any]:
        properties = {f.name.value: self.type(f.type) for f in schema.fields}
        required = [f.name.value for f in schema.fields if not f.optional]
        result: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        if not schema.open:
            result["additionalProperties"] = False
        return result

    def type(self, kind: ast.TypeExpr) -> dict[str, Any]:
        if isinstance(kind, ast.StringType):
            return self._string(kind)
        if isinstance(kind, ast.IntType):
            return {"type": "integer", **self._range(kind.range, "minimum", "maximum")}
        if isinstance(kind, ast.NumberType):
            return {"type": "number", **self._range(kind.range, "minimum", "maximum")}
        if isinstance(kind, ast.BoolType):
            return {"type": "boolean"}
        if isinstance(kind, ast.ArrayType):
            return {"type": "array", "items": self.type(kind.items),
                    **self._range(kind.length, "minItems", "maxItems")}
        if isinstance(kind, ast.EnumType):
            return {"type": "string", "enum": list(kind.values)}
        return {"$ref": f"#/$defs/{kind.name.value}"}

    def _string(self, kind: ast.StringType) -> dict[str, Any]:
        result: dict[str, Any] = {"type": "string"}
        result.update(self._range(kind.length, "minLength", "maxLength"))
        if kind.matching is not None:
            import re

            try:
                re.compile(kind.matching)
            except re.error as err:
                self.diags.error("compile/bad-regex", f"invalid regular expression: {err.msg}",
                                 kind.matching_span)
            result["pattern"] = kind.matching
        if kind.format is not None:
            if kind.format.value not in _FORMATS:
                self.diags.error("compile/unknown-format", f"unknown format `{kind.format.value}`",
                                 kind.format.span, "formats are `email`, `uuid`, `date-time`, `uri`")
            result["format"] = kind.format.value
        return result

    def _range(self, rng: ast.Range | None, low_key: str, high_key: str) -> dict[str, Any]:
        if rng is None:
            return {}
        if rng.low is not None and rng.high is not None and rng.low > rng.high:
            self.diags.error("compile/empty-range", f"the range {rng.low}..{rng.high} is empty",
                             rng.span)
        result: dict[str, Any] = {}
        if rng.low is not None:
            result[low_key] = rng.low
        if rng.high is not None:
            result[high_key] = rng.high
        return result


def compile_schemas(state: CompileState) -> None:
    """Compile every declared schema with the others as `$defs`, so references resolve."""
    converter = InlineConverter(state.diags)
    defs: dict[str, dict[str, Any]] = {}
    for name, declared in state.schemas.items():
        decl = declared.node
        assert isinstance(decl, ast.SchemaDecl)
        if isinstance(decl.body, ast.InlineSchema):
            defs[name] = converter.object(decl.body)
        else:
            loaded = _load_schema_file(Path(declared.file.path).parent / decl.body.path,
                                       decl.body, state.diags)
            if loaded is not None:
                defs[name] = loaded
    for name, body in defs.items():
        decl = state.schemas[name].node
        assert isinstance(decl, ast.SchemaDecl)
        document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **body,
                    "$defs": {k: v for k, v in defs.items() if k != name}}
        fields: tuple[str, ...] = ()
        open_fields = True
        if isinstance(decl.body, ast.InlineSchema):
            fields = tuple(f.name.value for f in decl.body.fields)
            open_fields = decl.body.open
        state.compiled_schemas[name] = CompiledSchema(name, document, make_validator(document),
                                                      fields, open_fields)


def _load_schema_file(path: Path, node: ast.SchemaFile, diags: Diagnostics
                      ) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as err:
        diags.error("compile/schema-file", f"cannot read schema file `{node.path}`: {err}",
                    node.span)
        return None
    if not isinstance(data, dict):
        diags.error("compile/schema-file", f"`{node.path}` is not a JSON Schema object",
                    node.span)
        return None
    try:
        jsonschema.Draft202012Validator.check_schema(data)
    except jsonschema.SchemaError as err:
        diags.error("compile/schema-file", f"`{node.path}` is not a valid JSON Schema: "
                    f"{err.message}", node.span)
        return None
    return data


def compile_query_schema(rule: ast.QueryRule, state: CompileState, diags: Diagnostics
                         ) -> InputSpec:
    from policyengine.tree import InputSpec

    converter = InlineConverter(diags)
    document = converter.object(rule.schema)
    document["$defs"] = {k: v.json_schema for k, v in state.compiled_schemas.items()}
    return InputSpec("query", DEFAULT_MAX_BODY, make_validator(document),
                     tuple(f.name.value for f in rule.schema.fields), rule.schema.open)
