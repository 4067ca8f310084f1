"""`schema NAME file "x.json"`: a JSON Schema document in JSON or YAML, checked at compile time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from policyengine import ast
from policyengine.errors import Diagnostics
from policyengine.yamldata import load_yaml

MAX_SCHEMA_FILE_BYTES = 4 * 1024 * 1024
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_YAML_SUFFIXES = (".yaml", ".yml")


def load_schema_file(
    directory: Path, node: ast.SchemaFile, diags: Diagnostics
) -> dict[str, Any] | None:
    """The document, checked against its meta-schema; None (and a diagnostic) when unusable.

    A document without `$schema` is taken as draft 2020-12, the language's own draft.
    """
    path = directory / node.path
    data = _read(path, node, diags)
    if data is None:
        return None
    if not isinstance(data, dict):
        _fail(diags, node, f"`{node.path}` does not hold a JSON Schema object")
        return None
    document = {"$schema": DRAFT_2020_12, **data}
    try:
        jsonschema_rs.meta.validate(document)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as err:
        _fail(diags, node, f"`{node.path}` is not a valid JSON Schema: {first_line(err)}")
        return None
    return document


def _read(path: Path, node: ast.SchemaFile, diags: Diagnostics) -> Any:
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_SCHEMA_FILE_BYTES:
            _fail(diags, node, f"`{node.path}` is larger than 4 MiB")
            return None
        text = raw.decode("utf-8")
        loaded = load_yaml(text) if path.suffix in _YAML_SUFFIXES else json.loads(text)
        # YAML can hold what JSON cannot (dates, sets, NaN): only JSON data is a schema
        return json.loads(json.dumps(loaded, allow_nan=False))
    except FileNotFoundError:
        _fail(
            diags,
            node,
            f"schema file `{node.path}` does not exist",
            f"the path is relative to the policy file, here `{path}`",
        )
    except (OSError, UnicodeDecodeError) as err:
        _fail(diags, node, f"cannot read schema file `{node.path}`: {err}")
    except (ValueError, TypeError, RecursionError, yaml.YAMLError) as err:
        _fail(diags, node, f"`{node.path}` is not valid {_kind(path)}: {first_line(err)}")
    return None


def _kind(path: Path) -> str:
    return "YAML" if path.suffix in _YAML_SUFFIXES else "JSON"


def first_line(err: BaseException) -> str:
    return str(err).strip().split("\n", 1)[0]


def _fail(diags: Diagnostics, node: ast.SchemaFile, message: str, help: str | None = None) -> None:
    diags.error("compile/schema-file", message, node.span, help)
