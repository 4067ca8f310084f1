"""One walker into parsed JSON: conditions (`body.a.b`, `claims.a.b`) and limit keys
(`by claims.a.b`) read a path the same way."""

from __future__ import annotations

from typing import Any

import pytest

from policyengine import Engine, Identity, Request
from policyengine.context import RequestContext
from policyengine.jsonbody import value_at
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
