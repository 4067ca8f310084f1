"""Compile-time checks of schemas: each wrong schema is an error with a code and a span."""

from __future__ import annotations

from pathlib import Path

import pytest
from schema_support import route_policy

from policyengine import Engine, PolicyError


def errors_of(policy: str, directory: Path) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        Engine.from_text(policy, directory=str(directory))
    return caught.value


@pytest.mark.parametrize(
    ("schemas", "rules", "code", "marked"),
    [
        ("schema S { a: Nope }", "body S", "compile/unknown-schema", "Nope"),
        ("schema S { a: [[Nope]] }", "body S", "compile/unknown-schema", "Nope"),
        ("", "body Nope", "compile/unknown-schema", "Nope"),
        ("", "query { a: Nope }", "compile/unknown-schema", "Nope"),
        ('schema S { s: string matching "(" }', "body S", "compile/bad-regex", '"("'),
        ('schema S { s: string matching "[z-a]" }', "body S", "compile/bad-regex", '"[z-a]"'),
        ('schema S { s: string matching "(?<=a)b" }', "body S", "compile/bad-regex", '"(?<=a)b"'),
        ('schema S { s: string matching "(a)\\\\1" }', "body S", "compile/bad-regex", '"(a)\\\\1"'),
        (
            'schema S { s: string matching "a{1000}{1000}" }',
            "body S",
            "compile/bad-regex",
            '"a{1000}{1000}"',
        ),
        ("", 'query { s: string matching "(" }', "compile/bad-regex", '"("'),
        ("schema S { n: int 5..1 }", "body S", "compile/empty-range", "5..1"),
        ("schema S { x: number 0.5..0.25 }", "body S", "compile/empty-range", "0.5..0.25"),
        ("schema S { s: string len 3..2 }", "body S", "compile/empty-range", "3..2"),
        ("schema S { a: [int] len 9..1 }", "body S", "compile/empty-range", "9..1"),
        ("schema S { n: int 0.5..3 }", "body S", "compile/bad-range", "0.5..3"),
        ("schema S { s: string len 1.5.. }", "body S", "compile/bad-range", "1.5.."),
        ("schema S { s: string len -1..3 }", "body S", "compile/bad-range", "-1..3"),
        ("schema S { a: [int] len ..-1 }", "body S", "compile/bad-range", "..-1"),
        ("schema S { s: string format phone }", "body S", "compile/unknown-format", "phone"),
        ("schema S { a: int; a: string }", "body S", "compile/duplicate-field", "a"),
        ("schema S { next: S }", "body S", "compile/recursive-schema", "next: S"),
        (
            "schema A { b: B }\nschema B { a: A }\nschema S { a?: A }",
            "body S",
            "compile/recursive-schema",
            "b: B",
        ),
        (
            "schema S { kids: [S] len 1.. }",
            "body S",
            "compile/recursive-schema",
            "kids: [S] len 1..",
        ),
        ("schema P { x: int }", "query { p: P }", "compile/bad-query-field", "P"),
        ("", "query { a: [[int]] }", "compile/bad-query-field", "[int]"),
        ("schema S { a: int }\nschema S { b: int }", "body S", "compile/duplicate-name", "S"),
    ],
)
def test_schema_errors(tmp_path: Path, schemas: str, rules: str, code: str, marked: str) -> None:
    error = errors_of(route_policy(schemas, rules), tmp_path)
    assert code in error.codes
    diagnostic = next(d for d in error.diagnostics if d.code == code)
    assert diagnostic.span is not None
    assert diagnostic.span.source.text[diagnostic.span.start : diagnostic.span.end] == marked


@pytest.mark.parametrize(
    "schemas",
    [
        "schema S { next?: S; v: int }",  # optional breaks the cycle
        "schema S { kids: [S] }",  # an empty list does
        "schema S { kids: [S] len ..3 }",
        "schema A { b?: B }\nschema B { a: A }",
        'schema S { s: string matching "^[\\\\w.+-]+@[a-z]+$" }',
        "schema S { n: int 3..3; x: number -0.5..0.5; s: string len 0..0 }",
        "schema S { n: int 1.0..2.0 }",  # whole numbers written with a fraction
        "schema S { }",
    ],
)
def test_schemas_that_compile(tmp_path: Path, schemas: str) -> None:
    Engine.from_text(
        route_policy(schemas + "\nschema Z { ... }", "body Z"), directory=str(tmp_path)
    )


def test_a_cycle_is_reported_once_with_its_path(tmp_path: Path) -> None:
    error = errors_of(
        route_policy("schema A { b: B }\nschema B { c: [C] len 2.. }\nschema C { a: A }"),
        tmp_path,
    )
    cycles = [d for d in error.diagnostics if d.code == "compile/recursive-schema"]
    assert len(cycles) == 1
    assert "(A.b -> B.c -> C.a -> A)" in cycles[0].message


def test_every_schema_error_is_reported_at_once(tmp_path: Path) -> None:
    error = errors_of(
        route_policy('schema S { a: int 3..1; b: string matching "("; c: string format x }'),
        tmp_path,
    )
    assert sorted(error.codes) == [
        "compile/bad-regex",
        "compile/empty-range",
        "compile/unknown-format",
    ]


@pytest.mark.parametrize(
    ("files", "code_detail"),
    [
        ({}, "does not exist"),
        ({"s.json": "{nope"}, "is not valid JSON"),
        ({"s.json": "[1, 2]"}, "does not hold a JSON Schema object"),
        ({"s.json": '{"type": "strin"}'}, "is not a valid JSON Schema"),
        ({"s.json": '{"minimum": "3"}'}, "is not a valid JSON Schema"),
        ({"s.json": '{"$ref": "#/$defs/Missing"}'}, "cannot be compiled"),
        ({"s.json": '{"$ref": "other.json"}'}, "cannot be compiled"),
        ({"s.json": '{"$ref": "https://example.test/s.json"}'}, "cannot be compiled"),
        ({"s.json": '{"pattern": "(?=a)"}'}, "cannot be compiled"),
        ({"s.json": '{"format": "my-own"}'}, "cannot be compiled"),
        ({"s.json": '{"$schema": "https://example.test/my-draft"}'}, "not a valid JSON Schema"),
        ({"s.yaml": "type: [object\n"}, "is not valid YAML"),
        ({"s.yaml": "const: 2024-01-01\n"}, "is not valid YAML"),  # a date is not JSON
        ({"s.json": "\xff"}, "cannot read schema file"),
    ],
)
def test_bad_schema_files(tmp_path: Path, files: dict[str, str], code_detail: str) -> None:
    name = next(iter(files), "s.json")
    for file_name, text in files.items():
        (tmp_path / file_name).write_bytes(text.encode("latin-1"))
    error = errors_of(route_policy(f'schema S file "{name}"'), tmp_path)
    assert error.codes == ["compile/schema-file"]
    diagnostic = error.diagnostics[0]
    assert code_detail in diagnostic.message
    assert diagnostic.span is not None
    assert diagnostic.span.source.text[diagnostic.span.start : diagnostic.span.end] == f'"{name}"'


def test_schema_file_paths_are_relative_to_the_policy_file(tmp_path: Path) -> None:
    (tmp_path / "sub" / "schemas").mkdir(parents=True)
    (tmp_path / "sub" / "schemas" / "s.json").write_text('{"type": "object"}')
    (tmp_path / "sub" / "api.policy").write_text(route_policy('schema S file "schemas/s.json"'))
    engine = Engine.load(tmp_path)
    assert engine.policy.schemas["S"].json_schema["type"] == "object"
