"""Random JSON values against random inline schemas: the engine's verdict, the chosen
library's verdict on the exported JSON Schema, an independent validator's verdict, and a
direct reading of the inline language (a small reference interpreter) all agree."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine import Engine, Request

NAMES = ("a", "b", "c-d", "e_f", "g")
PATTERNS = ("^[a-c]*$", "b", "^a", "[xy]{2}")  # read alike by ECMA-262 and Python here
ALPHABET = "abcxyé"
BOUNDS = st.one_of(st.none(), st.integers(-5, 5))


@dataclass(frozen=True)
class Str:
    low: int | None
    high: int | None
    pattern: str | None


@dataclass(frozen=True)
class Int:
    low: int | None
    high: int | None


@dataclass(frozen=True)
class Num:
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Arr:
    item: Any
    low: int | None
    high: int | None


@dataclass(frozen=True)
class Obj:
    fields: tuple[tuple[str, Any, bool], ...]  # name, type, optional
    open: bool


def _ordered(low: Any, high: Any) -> tuple[Any, Any]:
    if low is not None and high is not None and low > high:
        return high, low
    return low, high


def _lengths() -> st.SearchStrategy[tuple[int | None, int | None]]:
    return st.tuples(
        st.one_of(st.none(), st.integers(0, 3)), st.one_of(st.none(), st.integers(0, 3))
    ).map(lambda p: _ordered(*p))


SCALARS = st.one_of(
    st.builds(
        lambda lh, p: Str(*lh, p), _lengths(), st.one_of(st.none(), st.sampled_from(PATTERNS))
    ),
    st.builds(lambda p: Int(*_ordered(*p)), st.tuples(BOUNDS, BOUNDS)),
    st.builds(
        lambda p: Num(*_ordered(*p)),
        st.tuples(
            st.one_of(st.none(), st.sampled_from([-1.5, 0.0, 2.25])),
            st.one_of(st.none(), st.sampled_from([-1.0, 0.5, 3.0])),
        ),
    ),
    st.just(Bool()),
    st.builds(
        lambda vs: Enum(tuple(vs)),
        st.lists(st.sampled_from(["x", "y", "z z"]), min_size=1, max_size=3, unique=True),
    ),
)


def objects(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Obj]:
    fields = st.lists(
        st.tuples(st.sampled_from(NAMES), item, st.booleans()), max_size=4, unique_by=lambda f: f[0]
    )
    return st.builds(lambda fs, o: Obj(tuple(fs), o), fields, st.booleans())


TYPES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda i, lh: Arr(i, *lh), inner, _lengths()), objects(inner)
    ),
    max_leaves=6,
)
SCHEMAS = objects(TYPES)


# -- the inline language, written out ---------------------------------------------------------
def render(root: Obj) -> str:
    named: list[tuple[str, Obj]] = []

    def name_of(obj: Obj) -> str:
        name = f"S{len(named)}" if named else "S"
        named.append((name, obj))
        return name

    def range_text(low: Any, high: Any) -> str:
        return f"{'' if low is None else low}..{'' if high is None else high}"

    def type_text(kind: Any) -> str:
        if isinstance(kind, Str):
            text = "string"
            if kind.low is not None or kind.high is not None:
                text += f" len {range_text(kind.low, kind.high)}"
            return text + (f' matching "{kind.pattern}"' if kind.pattern else "")
        if isinstance(kind, Int | Num):
            word = "int" if isinstance(kind, Int) else "number"
            no_range = kind.low is None and kind.high is None
            return word if no_range else f"{word} {range_text(kind.low, kind.high)}"
        if isinstance(kind, Bool):
            return "bool"
        if isinstance(kind, Enum):
            return " | ".join(f'"{v}"' for v in kind.values)
        if isinstance(kind, Arr):
            no_len = kind.low is None and kind.high is None
            suffix = "" if no_len else f" len {range_text(kind.low, kind.high)}"
            return f"[{type_text(kind.item)}]{suffix}"
        return name_of(kind)

    blocks = []
    name_of(root)
    for name, obj in named:  # grows while nested objects are named
        lines = [f"{n}{'?' if optional else ''}: {type_text(t)}" for n, t, optional in obj.fields]
        lines += ["..."] if obj.open else []
        blocks.append(f"schema {name} {{\n    " + "\n    ".join(lines) + "\n}")
    return "\n".join(blocks) + "\nroute POST /r { allow anyone; body S }\n"


# -- a direct reading of the language ---------------------------------------------------------
def conforms(value: Any, kind: Any) -> bool:
    if isinstance(kind, Str):
        return (
            isinstance(value, str)
            and _within(len(value), kind.low, kind.high)
            and (kind.pattern is None or re.search(kind.pattern, value) is not None)
        )
    if isinstance(kind, Int):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return _number(value) and whole and _within(value, kind.low, kind.high)
    if isinstance(kind, Num):
        return _number(value) and _within(value, kind.low, kind.high)
    if isinstance(kind, Bool):
        return isinstance(value, bool)
    if isinstance(kind, Enum):
        return value in kind.values and isinstance(value, str)
    if isinstance(kind, Arr):
        return (
            isinstance(value, list)
            and _within(len(value), kind.low, kind.high)
            and all(conforms(item, kind.item) for item in value)
        )
    assert isinstance(kind, Obj)
    if not isinstance(value, dict):
        return False
    types = {name: (t, optional) for name, t, optional in kind.fields}
    if not kind.open and set(value) - set(types):
        return False
    if any(not optional and name not in value for name, (_, optional) in types.items()):
        return False
    return all(conforms(value[name], t) for name, (t, _) in types.items() if name in value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _within(number: Any, low: Any, high: Any) -> bool:
    return (low is None or number >= low) and (high is None or number <= high)


# -- values near a schema ---------------------------------------------------------------------
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3)
    | st.text(ALPHABET, max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3)
    ),
    max_leaves=5,
)


def value_for(data: st.DataObject, kind: Any) -> Any:
    if data.draw(st.integers(0, 9)) == 0:
        return data.draw(ANY_JSON)
    if isinstance(kind, Str):
        return data.draw(st.text(ALPHABET, max_size=5))
    if isinstance(kind, Int):
        return data.draw(st.integers(-7, 7) | st.sampled_from([2.0, 10**30]))
    if isinstance(kind, Num):
        return data.draw(st.floats(-4, 4) | st.integers(-4, 4))
    if isinstance(kind, Bool):
        return data.draw(st.booleans())
    if isinstance(kind, Enum):
        return data.draw(st.sampled_from([*kind.values, "w"]))
    if isinstance(kind, Arr):
        return [value_for(data, kind.item) for _ in range(data.draw(st.integers(0, 4)))]
    assert isinstance(kind, Obj)
    value = {}
    for name, t, optional in kind.fields:
        if not (optional or data.draw(st.integers(0, 19)) == 0) or data.draw(st.booleans()):
            value[name] = value_for(data, t)
    if data.draw(st.integers(0, 4)) == 0:
        value[data.draw(st.sampled_from(NAMES))] = data.draw(ANY_JSON)
    return value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=SCHEMAS, data=st.data())
def test_every_verdict_agrees(schema: Obj, data: st.DataObject) -> None:
    engine = Engine.from_text(render(schema))
    exported = json.loads(json.dumps(engine.policy.schemas["S"].json_schema))
    library = jsonschema_rs.validator_for(
        exported, validate_formats=True, pattern_options=jsonschema_rs.RegexOptions()
    )
    independent = jsonschema.Draft202012Validator(exported)
    for _ in range(5):
        value = value_for(data, schema)
        decision = engine.decide(
            Request("POST", "/r", {"Content-Type": "application/json"}, json.dumps(value))
        )
        expected = conforms(value, schema)
        assert decision.allow == expected, (value, decision.errors)
        assert library.is_valid(value) == expected
        assert independent.is_valid(value) == expected
        assert bool(decision.errors) != expected
