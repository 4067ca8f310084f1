"""The parser: the whole language of LANGUAGE.md to AST nodes with spans."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine import ast
from policyengine.errors import PolicyError
from policyengine.source import Source
from policyengine.syntax import parse_source

RETAIL_EXAMPLE = """\
policy "retail-api"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"            # sha256 of each key, subject, roles
}

authn jwt {
    issuer     "https://idp.example.test"
    audience   "retail-api"
    algorithms RS256, HS256
    public_key file "jwt_rs256.pub.pem"
    secret     env "RETAIL_JWT_SECRET"
    subject    claim "sub"
    roles      claim "roles"
    roles      map { "grp-ops": admin, "grp-staff": user }
    leeway     0s
}

role viewer
role user  inherits viewer
role admin inherits user

schema Order {
    productId: string matching "^[A-Z0-9]{8}$"
    quantity:  int 1..100
    note?:     string len ..200
    tags:      [string] len 0..5
    kind:      "retail" | "wholesale"
    ...
}

limit orders_per_user 5 per 10s by subject
limit per_ip          100 per minute by client_ip, header "X-Tenant", claims.org.id burst 20

group "/api" {
    route GET /public/health { allow anyone }
    group "/v2" {
        route GET /products, GET /products/{id} {
            allow authenticated
        }
    }
}

route POST /api/orders {
    allow role user
    body Order max 16KiB
    limit orders_per_user, per_ip
    query { page?: int 1.., expand?: bool, ... }
    require authn api_key
}

route ANY /api/admin/** {
    allow role admin
    deny when not (client_ip in 10.0.0.0/8)
}

route GET /api/tenants/{tenant}/reports {
    allow role viewer when claims.tenant == path.tenant; allow role admin
}
"""


def parse(text: str) -> ast.PolicyFile:
    return parse_source(Source("t.policy", text))


def statements_of(text: str, kind: type) -> list:  # type: ignore[type-arg]
    return [s for s in parse(text).statements if isinstance(s, kind)]


def first_rule(text: str) -> ast.Rule:
    route = statements_of(text, ast.Route)[0]
    return route.rules[0]  # type: ignore[no-any-return]


def test_the_whole_example_parses_into_every_statement_kind() -> None:
    kinds = [type(s).__name__ for s in parse(RETAIL_EXAMPLE).statements]
    assert kinds == [
        "PolicyName", "AuthnBlock", "AuthnBlock", "RoleDecl", "RoleDecl", "RoleDecl",
        "SchemaDecl", "LimitDecl", "LimitDecl", "Group", "Route", "Route", "Route",
    ]  # fmt: skip


def test_authn_settings_keep_groups_and_maps() -> None:
    jwt = statements_of(RETAIL_EXAMPLE, ast.AuthnBlock)[1]
    by_key = {}
    for setting in jwt.settings:
        by_key.setdefault(setting.key.value, []).append(setting)
    algorithms = by_key["algorithms"][0]
    assert [[w.value for w in g] for g in algorithms.groups] == [["RS256"], ["HS256"]]
    assert [w.value for w in by_key["public_key"][0].groups[0]] == ["file", "jwt_rs256.pub.pem"]
    mapping = by_key["roles"][1].mapping
    assert mapping is not None
    assert [(m.key, m.value.value) for m in mapping] == [
        ("grp-ops", "admin"),
        ("grp-staff", "user"),
    ]
    assert by_key["leeway"][0].groups[0][0].value == 0


def test_schema_fields_and_types() -> None:
    schema = statements_of(RETAIL_EXAMPLE, ast.SchemaDecl)[0]
    body = schema.body
    assert isinstance(body, ast.InlineSchema)
    assert body.open
    fields = {f.name.value: f for f in body.fields}
    product = fields["productId"].type
    assert isinstance(product, ast.StringType) and product.matching == "^[A-Z0-9]{8}$"
    quantity = fields["quantity"].type
    assert isinstance(quantity, ast.IntType) and quantity.range is not None
    assert (quantity.range.low, quantity.range.high) == (1, 100)
    note = fields["note"]
    assert note.optional
    assert isinstance(note.type, ast.StringType) and note.type.length is not None
    assert (note.type.length.low, note.type.length.high) == (None, 200)
    assert isinstance(fields["tags"].type, ast.ArrayType)
    kind = fields["kind"].type
    assert isinstance(kind, ast.EnumType) and kind.values == ("retail", "wholesale")


def test_keywords_are_fine_as_field_and_reference_names() -> None:
    schema = statements_of(
        "schema S { role: string\n limit: int\n body: bool\n format: string }", ast.SchemaDecl
    )[0]
    assert isinstance(schema.body, ast.InlineSchema)
    assert [f.name.value for f in schema.body.fields] == ["role", "limit", "body", "format"]
    rule = first_rule('route POST /x { allow when body.limit == 3 and query.body == "x" }')
    assert isinstance(rule, ast.AllowWhen)


def test_limits() -> None:
    limits = statements_of(RETAIL_EXAMPLE, ast.LimitDecl)
    assert (limits[0].count, limits[0].period_seconds, limits[0].burst) == (5, 10.0, None)
    keys = [(k.kind, k.arg) for k in limits[1].by]
    assert keys == [
        (ast.LimitKeyKind.CLIENT_IP, None),
        (ast.LimitKeyKind.HEADER, "x-tenant"),
        (ast.LimitKeyKind.CLAIM, "org.id"),
    ]
    assert limits[1].period_seconds == 60.0 and limits[1].burst == 20


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("limit l 0 per 10s", "syntax/limit-count"),
        ("limit l 5 per fortnight", "syntax/limit-period"),
        ("limit l 5 per 10s by ip", "syntax/limit-key"),
        ("limit l 5 per 10s burst 0", "syntax/limit-burst"),
        ("route FETCH /x { allow anyone }", "syntax/unknown-method"),
        ("schema S { ...\n a: int }", "syntax/open-not-last"),
        ("route GET /x { allow anyone", "syntax/unexpected"),
    ],
)
def test_values_the_language_rejects(text: str, code: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse(text)
    assert err.value.codes == [code]


def test_groups_nest_and_keep_their_routes() -> None:
    group = statements_of(RETAIL_EXAMPLE, ast.Group)[0]
    assert group.prefix == "/api"
    inner = group.items[1]
    assert isinstance(inner, ast.Group) and inner.prefix == "/v2"
    route = inner.items[0]
    assert isinstance(route, ast.Route)
    assert [t.path for t in route.targets] == ["/products", "/products/{id}"]


def test_semicolons_separate_like_newlines() -> None:
    route = statements_of(RETAIL_EXAMPLE, ast.Route)[-1]
    assert [type(r).__name__ for r in route.rules] == ["AllowRole", "AllowRole"]


def test_expressions_bind_not_over_and_over_or() -> None:
    rule = first_rule("route GET /x { allow when not a == 1 and b == 2 or c == 3 }")
    assert isinstance(rule, ast.AllowWhen)
    top = rule.when
    assert isinstance(top, ast.BoolOp) and top.op is ast.BoolOpKind.OR
    left = top.operands[0]
    assert isinstance(left, ast.BoolOp) and left.op is ast.BoolOpKind.AND
    assert isinstance(left.operands[0], ast.Not)


def test_expressions_wrap_inside_parentheses() -> None:
    rule = first_rule("route GET /x {\n allow when (a == 1\n   and b == 2)\n}")
    assert isinstance(rule, ast.AllowWhen) and isinstance(rule.when, ast.BoolOp)


def test_literals() -> None:
    rule = first_rule(
        'route GET /x { allow when a in [10.0.0.0/8, fd00::/8, 1.2.3.4, "s", 5, -2.5, 10s, '
        "2KiB, true, false, null] }"
    )
    assert isinstance(rule, ast.AllowWhen) and isinstance(rule.when, ast.Compare)
    items = rule.when.right
    assert isinstance(items, ast.ListExpr)
    values = [i.value for i in items.items if isinstance(i, ast.Literal)]
    assert values == [
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("1.2.3.4/32"), "s", 5, -2.5, 10, 2048, True, False, None,
    ]  # fmt: skip


def test_strings_keep_regex_backslashes_and_unescape_quotes() -> None:
    rule = first_rule(r'route GET /x { allow when a matches "\d+\"x\\" }')
    assert isinstance(rule, ast.AllowWhen) and isinstance(rule.when, ast.Compare)
    right = rule.when.right
    assert isinstance(right, ast.Literal) and right.value == '\\d+"x\\'


def test_header_and_claim_index_references() -> None:
    rule = first_rule('route GET /x { allow when header["X-Env"] == claims["https://x/org"] }')
    assert isinstance(rule, ast.AllowWhen) and isinstance(rule.when, ast.Compare)
    left, right = rule.when.left, rule.when.right
    assert isinstance(left, ast.Ref) and left.dotted == "header.X-Env"
    assert isinstance(right, ast.Ref) and right.parts[0].key == "https://x/org"


def test_spans_point_at_the_source() -> None:
    text = "role viewer\nroute GET /a/{id} {\n    allow role viewer\n}\n"
    route = statements_of(text, ast.Route)[0]
    rule = route.rules[0]
    assert rule.span.location() == "t.policy:3:5"
    assert route.targets[0].path_span.location() == "t.policy:2:11"


def test_syntax_errors_speak_the_authors_language() -> None:
    with pytest.raises(PolicyError) as err:
        parse("route GET /x {\n    allow rol admin\n}")
    rendered = err.value.render()
    assert "t.policy:2:11" in rendered
    assert "expected" in rendered and "`role`" in rendered
    assert "__ANON" not in rendered and "NAME" not in rendered


TOKENS = [
    "route", "GET", "POST", "ANY", "/a", "/a/{id}", "/**", "{", "}", "allow", "deny", "role",
    "anyone", "authenticated", "when", "and", "or", "not", "in", "==", "!=", "<", "(", ")", "[",
    "]", ",", ";", "\n", '"s"', "1", "1..5", "10s", "x", "claims.a", "schema", "S", ":", "int",
    "string", "?", "...", "limit", "per", "by", "burst", "authn", "api_key", "group", "policy",
    "body", "max", "16KiB", "query", "require", "#c\n", "10.0.0.0/8", "map", "matches", "\\\n",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_parses_or_fails_cleanly(tokens: list[str]) -> None:
    try:
        parse(" ".join(tokens))
    except PolicyError as err:
        assert err.diagnostics and all(d.span is not None for d in err.diagnostics)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        parse(text)
    except PolicyError as err:
        assert err.render()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100.0000000000000000001", "a number has more precision than a 64-bit float holds"),
        ("1e999", "a number is out of range"),
    ],
)
def test_policy_numbers_a_double_would_change_are_refused(text: str, message: str) -> None:
    source = Source("n.policy", f"schema S {{ n: number 0..{text} }}")
    with pytest.raises(PolicyError) as caught:
        parse_source(source)
    rendered = caught.value.render()
    assert f"n.policy:1:25: error[syntax/bad-number]: {message}" in rendered
