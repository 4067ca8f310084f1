"""One walker into parsed JSON: conditions (`body.a.b`, `claims.a.b`), limit keys
(`by claims.a.b`) and the authn settings' dotted claim paths (`roles claim "a.b"`) take
the same steps (`member`)."""

from __future__ import annotations

from typing import Any

import pytest

from policyengine import Engine, Identity, Request
from policyengine.authn.claims import ClaimMapping, ClaimRules, Rejection
from policyengine.context import RequestContext
from policyengine.jsonbody import member, value_at, value_at_dotted
from policyengine.ratelimit.counter_keys import limit_key
from policyengine.ratelimit.plan import LimitSpec, rule_of

CLAIMS: dict[str, Any] = {"org": {"id": 7, "teams": ["red", {"name": "blue"}]}, "plan": "gold"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("plan",), "gold"),
        (("org", "id"), 7),
        (("org", "teams", "0"), "red"),
        (("org", "teams", "1", "name"), "blue"),
        (("org", "teams", "2"), None),  # past the end
        (("org", "teams", "x"), None),  # a name into an array
        (("plan", "x"), None),  # a name into a string
        (("nope", "x"), None),
        (("org", "id", "x"), None),  # a name into a number
        ((), CLAIMS),
    ],
)
def test_a_path_reads_members_by_name_and_elements_by_index(
    path: tuple[str, ...], expected: Any
) -> None:
    assert value_at(CLAIMS, path) == expected


def _key(path: str, claims: dict[str, Any]) -> bytes:
    spec = LimitSpec("l", 5, 10.0, None, (("claims", path),), "t:1")
    request = Request("GET", "/x", identity=Identity("a", claims=claims))
    return limit_key(rule_of(spec), RequestContext(request, ("x",), "", 0.0))


def test_limit_keys_and_conditions_agree_on_a_path_through_an_array() -> None:
    engine = Engine.from_text(
        'policy "p"\nrole r\n'
        'route GET /x { allow role r when claims.org.teams["1"].name == "blue" }'
    )
    request = Request("GET", "/x", identity=Identity("a", frozenset({"r"}), claims=CLAIMS))
    assert engine.decide(request).allow
    # the limit key reads the same element: it counts "blue" apart from "green"
    other = {"org": {"teams": ["red", {"name": "green"}]}}
    assert _key("org.teams.1.name", CLAIMS) != _key("org.teams.1.name", other)
    assert _key("org.teams.1.name", CLAIMS) == _key("org.teams.1.name", {"org": CLAIMS["org"]})


@pytest.mark.parametrize(
    ("value", "key", "expected"),
    [
        ({"a": 1}, "a", 1),
        ({"a": 1}, "b", None),
        (["x", "y"], "1", "y"),
        (["x", "y"], "2", None),
        (["x", "y"], "-1", None),  # no negative index: `-1` is not a decimal index
        (["x", "y"], "a", None),
        (["x", "y"], "\u00b2", None),  # a superscript two is a digit but no index
        ("text", "0", None),  # no indexing into strings
        (None, "a", None),
        (7, "a", None),
    ],
)
def test_one_step_is_a_member_or_an_element(value: Any, key: str, expected: Any) -> None:
    assert member(value, key) == expected


NAMESPACED: dict[str, Any] = {
    "https://example.test/roles": ["admin"],
    "https://example": {"test/roles": ["wrong"]},
    "realm_access": {"roles": ["user"], "a.b": {"c": 1}},
    "groups": ["g0", {"id": "g1"}],
    "gone": None,
    "a": {"b": None},
    "a.b": 2,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("realm_access.roles", ["user"]),  # Keycloak's nesting
        ("https://example.test/roles", ["admin"]),  # a name with dots is tried whole first
        ("realm_access.a.b.c", 1),  # and again at every level
        ("groups.1.id", "g1"),  # arrays by index, as in conditions and limit keys
        ("groups.2", None),
        ("realm_access.roles.x", None),  # a name into an array
        ("realm_access.roles.0.x", None),  # a name into a string
        ("missing", None),
        ("missing.x", None),
        ("gone", None),
        ("gone.x", None),  # a step through null finds nothing
        ("a.b", 2),  # whole first
        (".a", None),  # a leading dot is part of the name
    ],
)
def test_a_dotted_claim_path_takes_the_same_steps(path: str, expected: Any) -> None:
    assert value_at_dotted(NAMESPACED, path) == expected


def test_a_null_found_whole_does_not_hide_the_nested_claim() -> None:
    """null is nothing, at every step: the split path is tried next."""
    assert value_at_dotted({"a.b": None, "a": {"b": 1}}, "a.b") == 1


def test_token_claims_read_dotted_paths_with_the_same_walker() -> None:
    mapping = ClaimMapping("org.users.0", "groups.1.roles", None, frozenset({"admin"}))
    claims = {"org": {"users": ["u-1"]}, "groups": [{}, {"roles": ["admin", "x"]}]}
    identity = mapping.identity(claims, "jwt")
    assert not isinstance(identity, Rejection)
    assert (identity.subject, identity.roles) == ("u-1", frozenset({"admin"}))
    rules = ClaimRules(None, None, 0.0, ("org.users.0", "org.id"), require_exp=False)
    rejection = rules.check(claims, 0.0)
    assert rejection is not None and rejection.message == "token lacks claim `org.id`"
