"""The operations of a spec, each with its parameters, body and security, `$ref`s resolved.

What `import openapi` turns into routes and what `coverage` checks routes against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from policyengine.openapi.spec import Json, Spec

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
_TEMPLATE_PARAM = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path, query, header, cookie
    required: bool
    schema: Json  # the parameter's schema, `$ref` resolved at its top only


@dataclass(frozen=True, slots=True)
class RequestBody:
    required: bool
    media_types: tuple[str, ...]
    json_schema: Json | None  # the schema of its JSON media type, if it has one
    name: str | None  # the component it came from (requestBodies or schemas), for naming


# One security requirement: every scheme named, with its scopes (OpenAPI: all must pass)
Requirement = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # upper case, as in routes
    path: str  # the template as the spec writes it
    operation_id: str | None
    summary: str | None
    parameters: tuple[Parameter, ...]
    body: RequestBody | None
    security: tuple[Requirement, ...]  # alternatives; empty: no security at all

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def anonymous(self) -> bool:
        """No requirement, or an empty one (`{}`: authentication optional)."""
        return not self.security or any(not req for req in self.security)

    def param(self, name: str, location: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name and p.location == location), None)


def operations(spec: Spec) -> tuple[Operation, ...]:
    """Every operation, in the order of the document."""
    found: list[Operation] = []
    for path, item in (spec.doc.get("paths") or {}).items():
        item = spec.resolve(item) or {}
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                found.append(_operation(spec, method, str(path), op, shared))
    return tuple(found)


def _operation(spec: Spec, method: str, path: str, op: dict[str, Any], shared: Json) -> Operation:
    params: dict[tuple[str, str], Parameter] = {}
    for raw in [*shared, *(op.get("parameters") or [])]:  # the operation's own win
        param = spec.resolve(raw)
        schema = spec.resolve(param.get("schema") or _content_schema(param) or {})
        key = (str(param["name"]), str(param["in"]))
        params[key] = Parameter(key[0], key[1], bool(param.get("required")), schema)
    security = op.get("security", spec.doc.get("security")) or []
    return Operation(
        method=method.upper(),
        path=path,
        operation_id=op.get("operationId"),
        summary=op.get("summary"),
        parameters=tuple(params.values()),
        body=_body(spec, op.get("requestBody")),
        security=tuple(
            tuple((str(name), tuple(str(s) for s in scopes or ())) for name, scopes in req.items())
            for req in security
        ),
    )


def _content_schema(param: dict[str, Any]) -> Json:
    for media in (param.get("content") or {}).values():
        return media.get("schema")
    return None


def _body(spec: Spec, raw: Json) -> RequestBody | None:
    if raw is None:
        return None
    name = _component_name(raw, "requestBodies")
    body = spec.resolve(raw)
    content = body.get("content") or {}
    schema: Json | None = None
    for media_type, media in content.items():
        if _JSON_MEDIA.match(media_type.split(";")[0].strip().lower()):
            schema = (media or {}).get("schema", {})
            name = _component_name(schema, "schemas") or name
            break
    return RequestBody(
        required=bool(body.get("required")),
        media_types=tuple(content),
        json_schema=schema,
        name=name,
    )


def _component_name(node: Json, kind: str) -> str | None:
    prefix = f"#/components/{kind}/"
    ref = node.get("$ref") if isinstance(node, dict) else None
    if isinstance(ref, str) and ref.startswith(prefix) and "/" not in ref[len(prefix) :]:
        return ref[len(prefix) :]
    return None


def template_params(path: str) -> list[str]:
    """The parameter names in a path template, in order."""
    return _TEMPLATE_PARAM.findall(path)
