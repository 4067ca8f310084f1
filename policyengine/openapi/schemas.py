"""OpenAPI schemas as JSON Schema 2020-12 documents, the form `schema NAME file` reads.

A body schema becomes one standalone document: component references point into its
own `$defs`, which hold every component it reaches (recursive ones included). OpenAPI
3.0's dialect is rewritten (`nullable`, boolean `exclusiveMinimum`); 3.1 already is
2020-12. Annotations that do not validate (examples, `xml`, `discriminator`) are
dropped, and so are formats the validator does not assert (`int32` becomes bounds),
since an unknown format is a compile error (README, "Schemas and input validation").
"""

from __future__ import annotations

from collections import deque
from typing import Any

from policyengine.openapi.spec import Json, Spec, SpecError

DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMPONENT = "#/components/schemas/"
# formats JSON Schema 2020-12 defines, which the validator asserts
FORMATS = frozenset(
    [
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "idn-email",
        "hostname",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "uri",
        "uri-reference",
        "iri",
        "iri-reference",
        "uuid",
        "uri-template",
        "json-pointer",
        "relative-json-pointer",
        "regex",
    ]
)
INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_DROPPED = frozenset(
    [
        "example",
        "examples",
        "xml",
        "discriminator",
        "externalDocs",
        "$id",
        "$schema",
        "$comment",
        "nullable",
    ]
)
_SCHEMA_MAPS = frozenset(["properties", "patternProperties", "$defs", "dependentSchemas"])
_SCHEMA_LISTS = frozenset(["allOf", "anyOf", "oneOf", "prefixItems"])
_SCHEMA_ONE = frozenset(
    [
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "contentSchema",
    ]
)


def body_document(spec: Spec, schema: Json) -> dict[str, Any]:
    """A standalone 2020-12 document for one request-body schema."""
    converter = _Converter(spec)
    root = converter.schema(schema)
    document: dict[str, Any] = {"$schema": DIALECT}
    document.update(root if isinstance(root, dict) else {"not": {}} if root is False else {})
    defs = converter.definitions()
    if defs:
        document["$defs"] = defs
    return document


class _Converter:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.legacy = spec.version == "3.0"
        self.pending: deque[str] = deque()
        self.names: set[str] = set()

    def definitions(self) -> dict[str, Json]:
        defs: dict[str, Json] = {}
        while self.pending:
            name = self.pending.popleft()
            defs[name] = self.schema(self.spec.pointer(COMPONENT + name))
        return dict(sorted(defs.items()))

    def schema(self, node: Json) -> Json:
        if not isinstance(node, dict):
            return node  # true / false (3.1)
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = self._ref(ref)
            if self.legacy or len(node) == 1:  # 3.0 ignores a $ref's siblings
                return target
            node = {k: v for k, v in node.items() if k != "$ref"}
            return {"allOf": [target, self.schema(node)]}
        out: dict[str, Json] = {}
        for key, value in node.items():
            if key in _DROPPED or key.startswith("x-"):
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {k: self.schema(v) for k, v in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.schema(v) for v in value]
            elif key in _SCHEMA_ONE:
                out[key] = self.schema(value)
            else:
                out[key] = value
        self._fix_keywords(node, out)
        return self._nullable(out) if self.legacy and node.get("nullable") is True else out

    def _ref(self, ref: str) -> dict[str, str]:
        if ref.startswith(COMPONENT) and "/" not in ref[len(COMPONENT) :]:
            name = ref[len(COMPONENT) :].replace("~1", "/").replace("~0", "~")
            if name not in self.names:
                self.names.add(name)
                self.pending.append(name)
            return {"$ref": "#/$defs/" + ref[len(COMPONENT) :]}
        raise SpecError(
            "openapi/unsupported-ref",
            f"schema `$ref` `{ref}` does not name a component schema",
            "move the schema to `components/schemas` and refer to it there",
        )

    def _fix_keywords(self, node: dict[str, Any], out: dict[str, Json]) -> None:
        fmt = node.get("format")
        if fmt is not None and fmt not in FORMATS:
            del out["format"]
            low, high = INT_BOUNDS.get(str(fmt), (None, None))
            if low is not None and "integer" in _types(node):
                out.setdefault("minimum", low)
                out.setdefault("maximum", high)
        if self.legacy:
            for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
                if out.get(bound) is True and plain in out:
                    out[bound] = out.pop(plain)
                elif isinstance(out.get(bound), bool):
                    del out[bound]
        # readOnly properties are never sent in a request (OpenAPI 3.x, "readOnly")
        read_only = {
            name
            for name, prop in (node.get("properties") or {}).items()
            if isinstance(prop, dict) and self._read_only(prop)
        }
        if read_only and isinstance(out.get("required"), list):
            out["required"] = [r for r in out["required"] if r not in read_only]
            if not out["required"]:
                del out["required"]

    def _read_only(self, prop: dict[str, Any]) -> bool:
        try:
            resolved = self.spec.resolve(prop)
        except SpecError:
            return False
        return bool(
            prop.get("readOnly") or (isinstance(resolved, dict) and resolved.get("readOnly"))
        )

    @staticmethod
    def _nullable(out: dict[str, Json]) -> dict[str, Json]:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
            return out
        return {"anyOf": [out, {"type": "null"}]} if out else out


def _types(node: dict[str, Any]) -> list[str]:
    kind = node.get("type")
    return [kind] if isinstance(kind, str) else list(kind or [])
