"""A spec as a policy set: the text of `api.policy`, its schema files and keys file.

One route per operation. Comments that start with `TODO` say what the author must
still decide; the set passes `policyengine check` as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from policyengine.fmt import format_source
from policyengine.openapi.operations import Operation, RequestBody, operations
from policyengine.openapi.paths import route_path
from policyengine.openapi.query import policy_string, query_block
from policyengine.openapi.schemas import body_document
from policyengine.openapi.security import KEYS_FILE, AuthnPlan, plan_access, plan_authn
from policyengine.openapi.spec import Spec
from policyengine.source import Source

POLICY_FILE = "api.policy"
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_TYPE_WORDS = frozenset({"string", "int", "number", "bool", "file"})


@dataclass(frozen=True, slots=True)
class PolicyOutput:
    """Files to write, by path relative to the output directory."""

    files: dict[str, str]
    routes: int
    skipped: tuple[str, ...]  # operations with no route, and why


def policy_name(text: str, taken: set[str]) -> str:
    """A NAME of the language from any text, unique among `taken`."""
    name = _NOT_NAME.sub("_", text).strip("_") or "x"
    if not (name[0].isalpha() or name[0] == "_"):
        name = "_" + name
    if name in _TYPE_WORDS:
        name += "_"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def emit(spec: Spec) -> PolicyOutput:
    builder = _Builder(spec)
    return builder.build()


class _Builder:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.files: dict[str, str] = {}
        self.schemas: dict[str, str] = {}  # schema file text -> schema name
        self.schema_lines: list[str] = []
        self.skipped: list[str] = []
        self.block_names: set[str] = set()
        self.schema_names: set[str] = set()

    def build(self) -> PolicyOutput:
        schemes = (self.spec.doc.get("components") or {}).get("securitySchemes") or {}
        names = {s: policy_name(str(s), self.block_names) for s in schemes}
        plans = plan_authn(self.spec, names)
        routes: list[str] = []
        shapes: dict[tuple[str, object], str] = {}
        ops = operations(self.spec)
        for op in ops:
            routes.extend(self._route(op, plans, shapes))
        head = [
            f"# Imported from the OpenAPI {self.spec.version} description `{self.spec.title}`",
            "# by `policyengine import openapi`. Lines marked TODO need a decision.",
            *self._overview(ops),
            f"policy {policy_string(_one_line(self.spec.title))}",
            "",
        ]
        for plan in plans.values():
            head.extend([*plan.lines, ""])
        for scheme in schemes:
            if scheme not in plans:
                kind = self.spec.resolve(schemes[scheme]).get("type")
                head.append(f"# TODO: security scheme `{scheme}` ({kind}) has no authn kind here")
        if self.schema_lines:
            head.extend([*self.schema_lines, ""])
        if any(p.kind == "api_key" for p in plans.values()):
            self.files[KEYS_FILE] = "# sha256 of each key: `policyengine keys add`\nkeys: []\n"
        text = "\n".join([*head, *routes]).rstrip("\n") + "\n"
        self.files[POLICY_FILE] = format_source(Source(POLICY_FILE, text))  # as `fmt` writes it
        return PolicyOutput(self.files, len(shapes), tuple(self.skipped))

    def _overview(self, ops: tuple[Operation, ...]) -> list[str]:
        lines = []
        open_ops = sum(1 for op in ops if not op.security)
        if open_ops:
            lines.append(
                f"# TODO: {open_ops} of {len(ops)} operations name no security requirement, so"
                " `allow anyone`: is that so?"
            )
        if any(op.body is not None and op.body.json_schema is not None for op in ops):
            lines.append(
                "# TODO: JSON bodies are refused above 1MiB; set each route's own limit"
                " (`body NAME max 64KiB`)"
            )
        lines.append("# Query schemas are closed: a parameter the spec does not name is refused.")
        return lines

    def _route(
        self, op: Operation, plans: dict[str, AuthnPlan], shapes: dict[tuple[str, object], str]
    ) -> list[str]:
        title = " - ".join(t for t in (op.operation_id, op.summary) if t)
        lines = [f"# {op.label}" + (f": {_one_line(title)}" if title else "")]
        if op.method == "TRACE":
            self.skipped.append(f"{op.label}: TRACE has no route method here")
            return [f"# TODO: {op.label}: TRACE has no route method here (ANY would cover it)", ""]
        path = route_path(op)
        if path.error is not None:
            self.skipped.append(f"{op.label}: {path.error}")
            return [f"# TODO: {op.label} has no route: {path.error}", ""]
        key = (op.method, path.shape)
        if key in shapes:
            self.skipped.append(f"{op.label}: requests to it match `{shapes[key]}`")
            return [f"# TODO: {op.label} is matched by the route `{shapes[key]}`", ""]
        shapes[key] = f"{op.method} {path.text}"
        access = plan_access(op, plans, len(plans))
        notes = [*path.notes, *access.notes]
        rules = list(access.rules)
        if access.require:
            rules.insert(0, f"require authn {', '.join(access.require)}")
        body, body_notes = self._body(op)
        notes.extend(body_notes)
        rules.extend(body)
        query = query_block(self.spec, [p for p in op.parameters if p.location == "query"])
        notes.extend(query.notes)
        if query.fields or query.open:
            fields = [*query.fields, *self._key_fields(plans, access.require, query.fields)]
            fields += ["..."] if query.open else []
            rules.append("query { " + ", ".join(fields) + " }")
        skipped = [p.name for p in op.parameters if p.location in ("header", "cookie")]
        if skipped:
            notes.append(f"header and cookie parameters are not checked: {', '.join(skipped)}")
        lines.extend(f"# TODO: {note}" for note in notes)
        lines.append(f"route {op.method} {path.text} {{")
        lines.extend(f"    {rule}" for rule in rules)
        lines.extend(["}", ""])
        return lines

    @staticmethod
    def _key_fields(
        plans: dict[str, AuthnPlan], require: tuple[str, ...], fields: tuple[str, ...]
    ) -> list[str]:
        """API keys sent in the query must not be refused as unknown parameters."""
        taken = {f.split(":")[0].rstrip("?") for f in fields}
        return [
            f"{p.query_param}?: string"
            for p in plans.values()
            if p.query_param and p.query_param not in taken and (not require or p.block in require)
        ]

    def _body(self, op: Operation) -> tuple[list[str], list[str]]:
        body = op.body
        if body is None:
            return [], []
        others = [m for m in body.media_types if body.json_schema is None or not _is_json(m)]
        if body.json_schema is None:
            return [], [f"the body ({', '.join(others)}) is not checked: only JSON bodies are"]
        notes = []
        if others:
            notes.append(f"a body other than JSON ({', '.join(others)}) is refused (415) here")
        if not body.required:
            notes.append("the spec makes the body optional; a request without one is refused")
        return [f"body {self._schema(op, body)}"], notes

    def _schema(self, op: Operation, body: RequestBody) -> str:
        text = json.dumps(body_document(self.spec, body.json_schema), indent=2) + "\n"
        if text in self.schemas:
            return self.schemas[text]
        base = body.name or f"{op.operation_id or op.method.lower() + op.path}Body"
        name = policy_name(base, self.schema_names)
        self.schemas[text] = name
        self.files[f"schemas/{name}.json"] = text
        self.schema_lines.append(f'schema {name} file "schemas/{name}.json"')
        return name


def _is_json(media_type: str) -> bool:
    base = media_type.split(";")[0].strip().lower()
    return base == "application/json" or (
        base.startswith("application/") and base.endswith("+json")
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())[:120]
