"""The lints: each warns where an author's policy does not do what it says, and only there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from policyengine.cli import main
from policyengine.compile import compile_policy_set
from policyengine.errors import Diagnostic
from policyengine.loader import parse_text

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def lint(text: str, directory: Path | None = None) -> list[Diagnostic]:
    policy = compile_policy_set(parse_text(text, "t.policy", str(directory or ".")))
    return [w for w in policy.warnings if w.code.startswith("lint/")]


def found(text: str, directory: Path | None = None) -> list[tuple[str, str]]:
    """(code, the text the span covers) for every lint warning."""
    result = []
    for warning in lint(text, directory):
        assert warning.span is not None and warning.help
        result.append(
            (warning.code, warning.span.source.text[warning.span.start : warning.span.end])
        )
    return result


def codes(text: str) -> list[str]:
    return [code for code, _ in found(text)]


ROLES = "role user\nrole admin inherits user\n"


# -- shadowed routes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "shadowed"),
    [
        # `{x}` beats `*` at the same position, and ANY covers GET
        ("route ANY /a/{x}/b { allow anyone }\nroute GET /a/*/b { allow anyone }", "GET /a/*/b"),
        # /files is taken by its own route, every deeper path by `{name}/**`
        (
            "route GET /files { allow anyone }\n"
            "route GET /files/{name}/** { allow anyone }\n"
            "route GET /files/** { allow anyone }",
            "GET /files/**",
        ),
        ("route ANY /a/{x} { allow anyone }\nroute ANY /a/* { allow anyone }", "ANY /a/*"),
    ],
)
def test_a_route_no_request_reaches_is_reported(routes: str, shadowed: str) -> None:
    assert found(routes) == [("lint/shadowed-route", shadowed)]
    assert "can never be reached" in lint(routes)[0].message


@pytest.mark.parametrize(
    "routes",
    [
        "route GET /a/{id:int} { allow anyone }\nroute GET /a/{x} { allow anyone }",  # non-ints
        "route GET /a/5 { allow anyone }\nroute GET /a/{id:int} { allow anyone }",  # other ints
        "route GET /a/** { allow anyone }\nroute GET /a/{x} { allow anyone }",  # /a, /a/x/y
        "route GET /a/{x} { allow anyone }\nroute HEAD /a/{x} { allow anyone }",
        "route GET /a/{x} { allow anyone }\nroute ANY /a/* { allow anyone }",  # other methods
        "route GET /a { allow anyone }\nroute ANY /a/** { allow anyone }",  # /a/x
    ],
)
def test_routes_that_win_some_request_are_not_reported(routes: str) -> None:
    assert codes(routes) == []


# -- public routes inside protected areas ---------------------------------------------------


def test_a_public_hole_in_a_protected_glob() -> None:
    text = ROLES + (
        "route ANY /admin/** { allow role admin }\nroute GET /admin/health { allow anyone }\n"
    )
    assert found(text) == [("lint/public-in-protected", "allow anyone")]
    assert "`ANY /admin/**` admits only roles `admin`" in lint(text)[0].message


def test_a_public_route_among_role_only_siblings() -> None:
    text = ROLES + (
        "route GET /admin/users { allow role admin }\n"
        "route GET /admin/settings { allow role admin }\n"
        "route GET /admin/status { allow anyone }\n"
    )
    assert found(text) == [("lint/public-in-protected", "allow anyone")]


@pytest.mark.parametrize(
    "routes",
    [
        # authenticated is not a role area: a public health check beside it is normal
        "route ANY /api/** { allow authenticated }\nroute GET /api/health { allow anyone }",
        # one sibling is not an area
        "route GET /admin/users { allow role admin }\nroute GET /admin/status { allow anyone }",
        # a deeper protected subtree does not make a shallower route suspicious
        "route GET /v1/status { allow anyone }\n"
        "route GET /v1/orgs/{o}/a { allow role user }\n"
        "route GET /v1/orgs/{o}/b { allow role user }",
    ],
)
def test_public_routes_outside_role_areas_are_not_reported(routes: str) -> None:
    assert "lint/public-in-protected" not in codes(ROLES + routes)


# -- rules that can never match ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ('allow when claims.tier == "gold" and claims.tier == "silver"', "cannot be both"),
        ("allow when claims.flag == true and claims.flag == 1", "cannot be both"),
        ("allow role user when path.n < 1 and path.n > 5", "no value within the bounds"),
        ("allow role user when path.n >= 5 and path.n < 5", "no value within the bounds"),
        ("allow role user when path.n == 7 and path.n > 9", "within the bounds"),
        ('allow when header["X-Env"] in ["a", "b"] and header["x-env"] == "c"', "in the list"),
        ('allow when claims.a == "x" and not (claims.a == "x")', "be and not be"),
        ('allow when claims.a in ["x"] and claims.a not in ["x"]', "no list value"),
        ("allow when false", "`false`"),
        (
            "allow when (claims.a == 1 and claims.a == 2) or (claims.b == 1 and claims.b == 2)",
            "cannot be both",
        ),
        ('allow role admin when not ("admin" in roles)', "includes `admin`"),
        ('allow role admin when "user" not in roles', "includes `user`"),
        ("deny when claims.a == 1 and claims.a == 2", "cannot be both"),
    ],
)
def test_a_condition_no_request_satisfies_is_reported(rule: str, why: str) -> None:
    text = ROLES + f"route GET /x/{{n:int}} {{\n    allow anyone\n    {rule}\n}}\n"
    warnings = [w for w in lint(text) if w.code == "lint/unsatisfiable-rule"]
    assert len(warnings) == 1 and why in warnings[0].message, [w.message for w in warnings]
    span = warnings[0].span
    assert span is not None and span.source.text[span.start : span.end] == rule


@pytest.mark.parametrize(
    "rule",
    [
        "allow when claims.n == 1 and claims.n == 1.0",  # equal numbers
        'allow when claims.a == "x" or claims.a == "y"',
        "allow role user when path.n >= 5 and path.n <= 5",
        'allow role user when "admin" not in roles',  # a plain user has no admin
        'allow when claims.a in ["x", "y"] and claims.a != "x"',
        "allow when claims.a == null and claims.b == 1",
        'allow when not (claims.a == "x" and claims.a == "y")',  # always true, not never
        'allow when claims.a == subject and claims.a == "x"',
    ],
)
def test_satisfiable_conditions_are_not_reported(rule: str) -> None:
    text = ROLES + f"route GET /x/{{n:int}} {{\n    {rule}\n}}\n"
    assert "lint/unsatisfiable-rule" not in codes(text)


def _key_file(directory: Path, claims: str) -> None:
    digest = hashlib.sha256(b"k").hexdigest()
    (directory / "keys.yaml").write_text(
        f'keys:\n  - sha256: "{digest}"\n    subject: s\n    roles: [user]\n    claims: {claims}\n'
    )


KEYED = """authn api_key { header "X-API-Key"; keys file "keys.yaml" }
role user
route GET /t/{tenant} { allow role user when claims.tenant == path.tenant }
"""


def test_a_claim_no_api_key_carries_is_reported(tmp_path: Path) -> None:
    _key_file(tmp_path, "{org: acme}")
    warnings = [w for w in lint(KEYED, tmp_path) if w.code == "lint/unsatisfiable-rule"]
    assert len(warnings) == 1 and "`claims.tenant` is always null" in warnings[0].message


def test_a_claim_some_api_key_carries_is_not_reported(tmp_path: Path) -> None:
    _key_file(tmp_path, "{tenant: acme}")
    assert [w.code for w in lint(KEYED, tmp_path)] == []


def test_claims_of_token_routes_are_never_guessed(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("")
    text = KEYED.replace('authn api_key { header "X-API-Key"; keys file "keys.yaml" }', "")
    assert "lint/unsatisfiable-rule" not in [w.code for w in lint(text, tmp_path)]


def test_a_scope_rule_only_api_keys_serve_is_reported(tmp_path: Path) -> None:
    _key_file(tmp_path, "{}")
    text = KEYED + 'route GET /r { allow role user scope "reports:read" }\n'
    assert ("lint/unsatisfiable-rule", 'allow role user scope "reports:read"') in found(
        text, tmp_path
    )


def test_a_scope_rule_a_token_block_serves_is_not_reported(tmp_path: Path) -> None:
    _key_file(tmp_path, "{}")
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "k.pem").write_bytes(pem)
    jwt_block = (
        'authn jwt { issuer "i"; audience "a"; algorithms EdDSA; public_key file "k.pem" }\n'
    )
    text = jwt_block + KEYED + 'route GET /r { allow scope "reports:read" }\n'
    assert "lint/unsatisfiable-rule" not in [w.code for w in lint(text, tmp_path)]


# -- unused declarations ------------------------------------------------------------------------


def test_unused_declarations_are_reported_at_their_names() -> None:
    text = """
role user
role auditor
role base
role admin inherits base
schema Unused { a: string }
schema Inner { b: int }
schema Outer { inner: Inner }
limit spare 5 per minute
limit used 5 per minute
route POST /x { allow role admin; body Outer; limit used }
"""
    assert sorted(found(text)) == [
        ("lint/unused-limit", "spare"),
        ("lint/unused-role", "auditor"),
        ("lint/unused-role", "user"),
        ("lint/unused-schema", "Unused"),
    ]


def test_a_role_named_only_in_a_condition_is_used() -> None:
    assert codes('role auditor\nroute GET /x { allow when "auditor" in roles }') == []


def test_roles_read_as_a_whole_make_every_role_count() -> None:
    assert codes("role a\nrole b\nroute GET /x { allow when roles == [] }") == []


def test_an_authn_block_no_route_requires_is_reported(tmp_path: Path) -> None:
    _key_file(tmp_path, "{}")
    text = """authn api_key a { header "A"; keys file "keys.yaml" }
authn api_key b { header "B"; keys file "keys.yaml" }
role user
route GET /x { require authn a; allow role user }
"""
    assert found(text, tmp_path) == [("lint/unused-authn", "b")]


# -- request data ---------------------------------------------------------------------------------


def test_spoofable_headers_are_reported() -> None:
    text = """limit by_forwarded 5 per minute by header "X-Real-IP"
route GET /x {
    allow when header["X-Forwarded-For"] == "10.0.0.1" or header["x-auth-subject"] == "ops"
    deny when header["X-Forwarded-Host"] == "admin.example.test"
    limit by_forwarded
}
"""
    assert sorted(found(text)) == [
        ("lint/spoofable-header", 'header "X-Real-IP"'),
        ("lint/spoofable-header", 'header["X-Forwarded-For"]'),
        ("lint/spoofable-header", 'header["X-Forwarded-Host"]'),
        ("lint/spoofable-header", 'header["x-auth-subject"]'),
    ]


def test_unchecked_inputs_are_reported() -> None:
    text = """role user
route GET /a { allow when query.q == "x" }
route GET /b { allow when query.q == "x"; query { q: string } }
route POST /c { allow role user; deny when body.role == "owner" }
route POST /d { allow role user when body.kind == "public" }
"""
    assert found(text) == [
        ("lint/unchecked-input", "query.q"),
        ("lint/unchecked-input", "body.role"),
    ]


# -- the example policies --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in POLICIES.iterdir() if p.is_dir()))
def test_example_policies_are_lint_clean(name: str) -> None:
    result = CliRunner().invoke(main, ["check", "--strict", str(POLICIES / name)])
    assert result.exit_code == 0, result.output


def test_strict_check_fails_on_a_lint(tmp_path: Path) -> None:
    (tmp_path / "p.policy").write_text("role ghost\nroute GET /x { allow anyone }\n")
    result = CliRunner().invoke(main, ["check", "--strict", str(tmp_path)])
    assert result.exit_code == 1 and "warning[lint/unused-role]" in result.output
