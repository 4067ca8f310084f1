"""An OpenAPI 3.0/3.1 document read from disk, validated, with its local `$ref`s resolved.

Only references inside the document (`#/components/...`) are followed: a reference to
another file or a URL is refused before validation, so reading a spec never fetches
anything (as with schema files, README "Schemas and input validation").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_SPEC_BYTES = 32 * 1024 * 1024
_VERSIONS = ("3.0", "3.1")

Json = Any  # a value of a parsed YAML/JSON document


class SpecError(Exception):
    """A spec that cannot be used, with a stable code (`openapi/invalid`) for tests."""

    def __init__(self, code: str, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.help = help

    def render(self, name: str) -> str:
        text = f"{name}: error[{self.code}]: {self.message}"
        return text + (f"\n  help: {self.help}" if self.help else "")


@dataclass(frozen=True, slots=True)
class Spec:
    """A validated document: `version` is `3.0` or `3.1`; `doc` the parsed mapping."""

    doc: dict[str, Any]
    version: str

    def resolve(self, node: Json) -> Json:
        """Follow `$ref` until a node that is no reference (cycles of bare refs refused)."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise SpecError("openapi/ref-cycle", f"`$ref` `{ref}` refers to itself")
            seen.add(ref)
            node = self.pointer(ref)
        return node

    def pointer(self, ref: str) -> Json:
        """The node a local reference (`#/components/schemas/Pet`) names (RFC 6901)."""
        node: Json = self.doc
        for raw in ref[2:].split("/") if ref != "#" else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                raise SpecError("openapi/bad-ref", f"`$ref` `{ref}` names nothing")
        return node

    @property
    def title(self) -> str:
        info = self.doc.get("info") or {}
        return str(info.get("title") or "api")


def load_spec(path: Path) -> Spec:
    """Read, parse and validate; every failure is a SpecError with a code."""
    doc = _json_safe(_parse(path))
    version = str(doc.get("openapi", ""))
    if "swagger" in doc:
        raise SpecError(
            "openapi/version",
            "Swagger 2.0 documents are not supported",
            "convert it to OpenAPI 3 first (e.g. with swagger2openapi)",
        )
    if version[:3] not in _VERSIONS or version[3:4] not in ("", "."):
        raise SpecError(
            "openapi/version",
            f"OpenAPI version `{version}` is not supported",
            "supported versions are 3.0.x and 3.1.x",
        )
    for ref in _refs(doc):
        if not ref.startswith("#"):
            raise SpecError(
                "openapi/external-ref",
                f"`$ref` `{ref}` points outside the document",
                "bundle the spec into one file first (e.g. `redocly bundle`); nothing is fetched",
            )
    _validate(doc, version[:3])
    return Spec(doc=doc, version=version[:3])


def _parse(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SpecError("openapi/unreadable", f"cannot read `{path}`: {err.strerror}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError("openapi/too-large", f"`{path}` is larger than 32 MiB")
    try:
        text = raw.decode("utf-8")
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SpecError("openapi/unparsable", f"`{path}` is not JSON or YAML: {first}") from None
    if not isinstance(doc, dict):
        raise SpecError("openapi/unparsable", f"`{path}` is not an OpenAPI document (a mapping)")
    return doc


def _refs(node: Json) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                yield ref
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _validate(doc: dict[str, Any], version: str) -> None:
    # imported here: the `openapi` extra is needed for reading specs, not for the package
    from openapi_spec_validator import (
        OpenAPIV30SpecValidator,
        OpenAPIV31SpecValidator,
        validate,
    )
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    cls = OpenAPIV30SpecValidator if version == "3.0" else OpenAPIV31SpecValidator
    try:
        validate(doc, cls=cls)
    except OpenAPIValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(the document)"
        first = err.message.splitlines()[0] if err.message else "invalid"
        raise SpecError(
            "openapi/invalid", f"not a valid OpenAPI {version} document: {first}", f"at `{where}`"
        ) from None


def _json_safe(node: Json) -> Json:
    """YAML reads `2023-10-29` as a date; JSON Schema (and our output) want the string."""
    if isinstance(node, dict):
        return {str(k): _json_safe(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_json_safe(v) for v in node]
    if hasattr(node, "isoformat") and not isinstance(node, str):
        return node.isoformat()
    return node
