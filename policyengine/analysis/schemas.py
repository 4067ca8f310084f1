"""Whether one JSON Schema accepts no value another refused: sound, not complete.

`schema_narrower(old, new)` is True only when it can show that every value `new` accepts,
`old` accepted too: a field made required, a range or a length tightened, an enum cut,
an open object closed. Any keyword it does not know must be equal on both sides; when
in doubt the answer is False, and `diff` then counts the change as widening.
"""

from __future__ import annotations

import json
from typing import Any

_DEFS = "#/$defs/"
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "examples", "default"}
_LOWER_BOUNDS = {"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"}
_UPPER_BOUNDS = {"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"}
_MAX_DEPTH = 64


def schema_narrower(old: str, new: str) -> bool:
    old_doc, new_doc = json.loads(old), json.loads(new)
    walk = _Walk(old_doc.get("$defs", {}), new_doc.get("$defs", {}))
    return walk.narrower(old_doc, new_doc, 0)


class _Walk:
    def __init__(self, old_defs: dict[str, Any], new_defs: dict[str, Any]) -> None:
        self.old_defs = old_defs
        self.new_defs = new_defs
        self.assumed: set[tuple[str, str]] = set()  # $ref pairs under proof (recursion)

    def narrower(self, old: Any, new: Any, depth: int) -> bool:
        if isinstance(old, dict) and isinstance(new, dict) and depth <= _MAX_DEPTH:
            refs = (old.get("$ref"), new.get("$ref"))
            if isinstance(refs[0], str) or isinstance(refs[1], str):
                return self._refs(old, new, refs, depth)  # equal refs, maybe unequal targets
        if old == new or old is True or old == {} or new is False:
            return True
        if not isinstance(old, dict) or not isinstance(new, dict) or depth > _MAX_DEPTH:
            return False
        return all(
            self._keyword(key, old, new, depth)
            for key in old
            if key not in _ANNOTATIONS and key != "$defs"
        )

    def _refs(self, old: Any, new: Any, refs: tuple[Any, Any], depth: int) -> bool:
        pair = (str(refs[0]), str(refs[1]))
        if pair in self.assumed:
            return True  # the same pair again inside itself: holds if the rest does
        self.assumed.add(pair)
        return self.narrower(_resolve(old, self.old_defs), _resolve(new, self.new_defs), depth + 1)

    def _keyword(self, key: str, old: dict[str, Any], new: dict[str, Any], depth: int) -> bool:
        want = old[key]
        have = new.get(key)
        if key in _LOWER_BOUNDS:
            return isinstance(have, int | float) and have >= want
        if key in _UPPER_BOUNDS:
            return isinstance(have, int | float) and have <= want
        if key == "type":
            return have is not None and _types(have) <= _widened(_types(want))
        if key == "required":
            return set(have or ()) >= set(want)
        if key == "enum":
            values = have if have is not None else ([new["const"]] if "const" in new else None)
            return values is not None and all(v in want for v in values)
        if key == "items":
            return self.narrower(want, new.get("items", True), depth + 1)
        if key == "properties":
            return self._properties(old, new, depth)
        if key == "additionalProperties":
            return self._additional(old, new, depth)
        return bool(have == want)

    def _properties(self, old: dict[str, Any], new: dict[str, Any], depth: int) -> bool:
        new_props = new.get("properties", {})
        extra = new.get("additionalProperties", True)
        return all(
            self.narrower(schema, new_props.get(name, extra), depth + 1)
            for name, schema in old["properties"].items()
        )

    def _additional(self, old: dict[str, Any], new: dict[str, Any], depth: int) -> bool:
        """A field `new` knows and `old` does not must have met `old`'s rule for others."""
        rule = old["additionalProperties"]
        known = old.get("properties", {})
        fields_ok = all(
            self.narrower(rule, schema, depth + 1)
            for name, schema in new.get("properties", {}).items()
            if name not in known
        )
        return fields_ok and self.narrower(rule, new.get("additionalProperties", True), depth + 1)


MAX_DELTA = 10


def schema_delta(old: str, new: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What differs, by JSON pointer: each side's values (a side lacking one omits it)."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    def walk(a: Any, b: Any, pointer: str) -> None:
        if len(before) + len(after) >= 2 * MAX_DELTA or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(a.keys() | b.keys()):
                step = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
                if key not in b:
                    before[step] = a[key]
                elif key not in a:
                    after[step] = b[key]
                else:
                    walk(a[key], b[key], step)
            return
        before[pointer or "/"], after[pointer or "/"] = a, b

    walk(json.loads(old), json.loads(new), "")
    return before, after


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> Any:
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith(_DEFS):
        return node
    target = defs.get(ref[len(_DEFS) :])
    if not isinstance(target, dict):
        return None  # unresolvable: nothing can be proved about it
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _types(value: Any) -> set[str]:
    return set(value) if isinstance(value, list) else {str(value)}


def _widened(types: set[str]) -> set[str]:
    return types | {"integer"} if "number" in types else types
