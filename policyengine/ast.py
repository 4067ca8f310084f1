"""The policy AST: frozen dataclasses with spans. No Lark types ever reach this module."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from policyengine.source import Source, Span


@dataclass(frozen=True, slots=True)
class Name:
    value: str
    span: Span


# --- settings of authn blocks ----------------------------------------------------------


class WordKind(Enum):
    STRING = "string"
    NAME = "name"
    NUMBER = "number"
    DURATION = "duration"
    SIZE = "size"


@dataclass(frozen=True, slots=True)
class Word:
    """One argument of a setting: `"sub"`, `claim`, `RS256`, `30s`."""

    kind: WordKind
    text: str  # the source text (strings unquoted)
    value: str | int | float
    span: Span


@dataclass(frozen=True, slots=True)
class MapEntry:
    """`"grp-ops": manager` inside `roles map { ... }`."""

    key: str
    value: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Setting:
    """`key word word, word word` or `key word { "a": b }`; each comma group is a tuple."""

    key: Name
    groups: tuple[tuple[Word, ...], ...]
    mapping: tuple[MapEntry, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class AuthnBlock:
    kind: Name
    name: Name | None
    settings: tuple[Setting, ...]
    span: Span

    @property
    def label(self) -> str:
        return (self.name or self.kind).value


# --- declarations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyName:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class HostDecl:
    """`host "api.example.test", "*.example.test"`: on a policy set, a group or a route."""

    hosts: tuple[Name, ...]  # as written (unquoted); canonicalized by the compiler
    span: Span


@dataclass(frozen=True, slots=True)
class Permit:
    """`permit method_override, ...`: hardening the set opts out of (hardening.Permission)."""

    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class RoleDecl:
    name: Name
    inherits: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Range:
    """`A..B`, `A..`, `..B` (inclusive)."""

    low: int | float | None
    high: int | float | None
    span: Span


@dataclass(frozen=True, slots=True)
class StringType:
    length: Range | None
    matching: str | None
    matching_span: Span | None
    format: Name | None
    span: Span


@dataclass(frozen=True, slots=True)
class IntType:
    range: Range | None
    span: Span


@dataclass(frozen=True, slots=True)
class NumberType:
    range: Range | None
    span: Span


@dataclass(frozen=True, slots=True)
class BoolType:
    span: Span


@dataclass(frozen=True, slots=True)
class ArrayType:
    items: TypeExpr
    length: Range | None
    span: Span


@dataclass(frozen=True, slots=True)
class EnumType:
    values: tuple[str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class SchemaRef:
    name: Name

    @property
    def span(self) -> Span:
        return self.name.span


TypeExpr: TypeAlias = (
    StringType | IntType | NumberType | BoolType | ArrayType | EnumType | SchemaRef
)


@dataclass(frozen=True, slots=True)
class Field:
    name: Name
    optional: bool
    type: TypeExpr
    span: Span


@dataclass(frozen=True, slots=True)
class InlineSchema:
    fields: tuple[Field, ...]
    open: bool  # `...` as the last field: unknown fields allowed
    span: Span

    def schema_refs(self) -> Iterator[Name]:
        """The names of the schemas its fields refer to (`a: Address`, `b: [Item]`)."""
        for schema_field in self.fields:
            kind = schema_field.type
            while isinstance(kind, ArrayType):
                kind = kind.items
            if isinstance(kind, SchemaRef):
                yield kind.name


@dataclass(frozen=True, slots=True)
class SchemaFile:
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class SchemaDecl:
    name: Name
    body: InlineSchema | SchemaFile
    span: Span


class LimitKeyKind(Enum):
    SUBJECT = "subject"
    CLIENT_IP = "client_ip"
    API_KEY = "api_key"
    ROUTE = "route"
    HEADER = "header"
    CLAIM = "claims"


@dataclass(frozen=True, slots=True)
class LimitKey:
    kind: LimitKeyKind
    arg: str | None  # header name or claim path
    span: Span


@dataclass(frozen=True, slots=True)
class LimitDecl:
    name: Name
    count: int
    period_seconds: float
    by: tuple[LimitKey, ...]
    burst: int | None
    span: Span


@dataclass(frozen=True, slots=True)
class BanDecl:
    """`ban NAME after N failures per D by KEYS for B [on STATUS, ...]`."""

    name: Name
    count: int  # failures that start a ban
    period_seconds: float  # the window they are counted in
    by: tuple[LimitKey, ...]
    ban_seconds: float
    statuses: tuple[int, ...]  # what counts as a failure: (401,) unless `on` says
    span: Span


# --- expressions --------------------------------------------------------------------------

LiteralValue: TypeAlias = (
    str | int | float | bool | ipaddress.IPv4Network | ipaddress.IPv6Network | None
)


class LiteralKind(Enum):
    STRING = "string"
    INT = "int"
    NUMBER = "number"
    BOOL = "bool"
    NULL = "null"
    CIDR = "cidr"
    DURATION = "duration"  # value in seconds
    SIZE = "size"  # value in bytes


@dataclass(frozen=True, slots=True)
class Literal:
    kind: LiteralKind
    value: LiteralValue
    span: Span


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class RefPart:
    key: str
    span: Span


@dataclass(frozen=True, slots=True)
class Ref:
    """`subject`, `claims.tenant`, `header["X-Env"]`, `body.customer.id`."""

    root: Name
    parts: tuple[RefPart, ...]
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join([self.root.value, *(p.key for p in self.parts)])


class CompareOp(Enum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    MATCHES = "matches"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span


class BoolOpKind(Enum):
    AND = "and"
    OR = "or"


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: BoolOpKind
    operands: tuple[Expr, ...]
    span: Span


Expr: TypeAlias = Literal | ListExpr | Ref | Compare | Not | BoolOp


# --- routes and rules ---------------------------------------------------------------------


class Method(Enum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"
    ANY = "ANY"


@dataclass(frozen=True, slots=True)
class RouteTarget:
    method: Method
    path: str  # the pattern as written; enclosing group prefixes are added by a pass
    path_span: Span
    span: Span

    def __hash__(self) -> int:
        # the compiler's passes look targets up by the thousand (CompileState.patterns):
        # hash what tells targets apart, not every span and source down the tree
        return hash((self.path, self.span.start, self.span.end))


@dataclass(frozen=True, slots=True)
class AllowAnyone:
    span: Span


@dataclass(frozen=True, slots=True)
class AllowAuthenticated:
    """`allow authenticated`, or `allow scope "a", "b"`: any identity holding the scopes."""

    when: Expr | None
    span: Span
    scopes: tuple[Name, ...] = ()  # OAuth2 scopes (RFC 6749 §3.3), every one required


@dataclass(frozen=True, slots=True)
class AllowRole:
    roles: tuple[Name, ...]
    when: Expr | None
    span: Span
    scopes: tuple[Name, ...] = ()


@dataclass(frozen=True, slots=True)
class AllowWhen:
    when: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Deny:
    roles: tuple[Name, ...]  # empty: whoever the caller is
    when: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class RequireAuthn:
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class BodyRule:
    schema: Name
    max_bytes: int | None
    span: Span


@dataclass(frozen=True, slots=True)
class QueryRule:
    schema: InlineSchema
    span: Span


@dataclass(frozen=True, slots=True)
class LimitRule:
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class BanRule:
    names: tuple[Name, ...]
    span: Span


Rule: TypeAlias = (
    AllowAnyone
    | AllowAuthenticated
    | AllowRole
    | AllowWhen
    | Deny
    | RequireAuthn
    | BodyRule
    | QueryRule
    | LimitRule
    | HostDecl
    | BanRule
)


@dataclass(frozen=True, slots=True)
class Route:
    targets: tuple[RouteTarget, ...]
    rules: tuple[Rule, ...]
    span: Span  # the whole route, `route` to `}`
    header: Span  # `route GET /a, GET /b`: where route-level problems are reported


@dataclass(frozen=True, slots=True)
class Group:
    prefix: str
    items: tuple[Route | Group | HostDecl, ...]
    span: Span


Statement: TypeAlias = (
    PolicyName
    | Permit
    | AuthnBlock
    | RoleDecl
    | SchemaDecl
    | LimitDecl
    | BanDecl
    | Route
    | Group
    | HostDecl
)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    source: Source
    path: str  # filesystem path, to resolve `file "..."` references
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class PolicySet:
    files: tuple[PolicyFile, ...]
