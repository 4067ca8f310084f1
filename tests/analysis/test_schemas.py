"""schema_narrower: checked by an independent validator on generated schemas and values."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.analysis.schemas import schema_delta, schema_narrower

FIELDS = ("a", "b", "c")


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    bound = st.integers(-3, 3)
    integer = st.fixed_dictionaries(
        {"type": st.just("integer")}, optional={"minimum": bound, "maximum": bound}
    )
    string = st.fixed_dictionaries(
        {"type": st.just("string")}, optional={"maxLength": st.integers(0, 3)}
    )
    enum = st.fixed_dictionaries({"enum": st.lists(st.integers(-2, 2), min_size=1, unique=True)})
    return integer | string | enum | st.just({"type": "number"})


@st.composite
def object_schema(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=3))
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: draw(leaf()) for name in names},
    }
    required = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    if required:
        schema["required"] = required
    extra = draw(st.sampled_from([None, False, True, {"type": "integer"}]))
    if extra is not None:
        schema["additionalProperties"] = extra
    return {"$defs": {"d0": schema}, "$ref": "#/$defs/d0"} if draw(st.booleans()) else schema


values = st.dictionaries(
    st.sampled_from(FIELDS),
    st.integers(-4, 4) | st.text("xy", max_size=4) | st.just(1.5),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(object_schema(), object_schema(), st.lists(values, min_size=20, max_size=20))
def test_narrower_is_sound(old: dict[str, Any], new: dict[str, Any], samples: list[Any]) -> None:
    if not schema_narrower(json.dumps(old), json.dumps(new)):
        return
    for value in samples:
        if jsonschema.Draft202012Validator(new).is_valid(value):
            assert jsonschema.Draft202012Validator(old).is_valid(value), (old, new, value)


def narrower(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return schema_narrower(json.dumps(old), json.dumps(new))


def test_what_it_proves() -> None:
    base = {"type": "object", "properties": {"q": {"type": "integer", "maximum": 100}}}
    tighter = {**base, "properties": {"q": {"type": "integer", "maximum": 10}}}
    assert narrower(base, tighter) and not narrower(tighter, base)
    required = {**base, "required": ["q"]}
    assert narrower(base, required) and not narrower(required, base)
    closed = {**base, "additionalProperties": False}
    assert narrower(base, closed) and not narrower(closed, base)
    assert not narrower(closed, {**closed, "properties": {**base["properties"], "x": {}}})
    assert narrower({"type": "number"}, {"type": "integer"})
    assert not narrower({"type": "integer"}, {"type": "number"})
    assert not narrower({"pattern": "^a"}, {"pattern": "^b"})  # unknown to it: must be equal


def test_recursive_schemas_terminate() -> None:
    kids = {"type": "array", "items": {"$ref": "#/$defs/d0"}}
    tree = {"$defs": {"d0": {"type": "object", "properties": {"kids": kids}}}, "$ref": "#/$defs/d0"}
    assert narrower(tree, tree)
    fewer = {**kids, "maxItems": 2}
    smaller = {
        "$defs": {"d0": {"type": "object", "properties": {"kids": fewer}}},
        "$ref": "#/$defs/d0",
    }
    assert narrower(tree, smaller) and not narrower(smaller, tree)


def test_delta_names_the_pointers() -> None:
    before, after = schema_delta(
        json.dumps({"properties": {"a/b": {"maximum": 1}}, "required": ["x"]}),
        json.dumps({"properties": {"a/b": {"maximum": 2}}}),
    )
    assert before == {"/properties/a~1b/maximum": 1, "/required": ["x"]}
    assert after == {"/properties/a~1b/maximum": 2}
