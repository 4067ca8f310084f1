"""Input schemas: inline schemas to JSON Schema (draft 2020-12), validators compiled once.

convert.py   inline schema -> JSON Schema, with compile-time checks
cycles.py    required-field cycles that no value can satisfy
files.py     `schema NAME file "x.json|yaml"`
build.py     the `build-schemas` pass: one self-contained document and validator per schema
validator.py the validator (jsonschema-rs) and client-readable violations
query.py     `query { ... }`: coercion of URL parameters, then validation
"""

from policyengine.schema.build import DEFAULT_MAX_BODY, CompiledSchema, compile_schemas
from policyengine.schema.query import QueryValidator, compile_query_schema
from policyengine.schema.validator import MAX_ERRORS, SchemaValidator

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_ERRORS",
    "CompiledSchema",
    "QueryValidator",
    "SchemaValidator",
    "compile_query_schema",
    "compile_schemas",
]
