"""`policyengine diff`: each kind of change, widening and narrowing, and form-only edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from analysis_support import BASE, KEYS, MakeSet, changes, edit, run


def one(found: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    picked = [c for c in found if c["kind"] == kind]
    assert len(picked) == 1, found
    return picked[0]


def diff_of(make_set: MakeSet, new_text: str, files: dict[str, str] | None = None) -> list[Any]:
    return changes(make_set("old"), make_set("new", new_text, files))


# --- form only: no change -----------------------------------------------------------------

REFORMATTED = """# the same policy, written differently
policy   "shop"
role admin inherits user   # declared before the roles it inherits
role user  inherits viewer
role viewer
limit per_caller 5 per 10s by subject          # renamed, same numbers
schema Town { city: string len 1..50 }         # Address, renamed
schema OrderIn {                               # Order, renamed
  productId :string matching "^[A-Z0-9]{8}$"
  quantity: int 1 .. 100
  note?: string len ..200
  ship?: Town
}
route ANY /admin/** { allow role admin }
route POST /orders { limit per_caller
  body OrderIn max 16384B
  allow role user }
route GET /reports/{t} {                       # the parameter renamed
  allow role admin
  allow role viewer when (claims.tenant == path.t)
}
"""

SECOND_FILE = """authn api_key {
  keys   file "keys.yaml"
        header "X-API-Key"
}
route GET /orders/{order:int} { allow role user }
route GET /health {
    allow anyone
}
"""


def test_form_only_changes_are_no_change(make_set: MakeSet, tmp_path: Path) -> None:
    new = make_set("new", REFORMATTED, {"more.policy": SECOND_FILE})
    # the keys file in flow style: the same keys
    new.joinpath("keys.yaml").write_text(
        "keys: [{subject: alice, roles: [user], claims: {tenant: acme}, sha256: "
        '"ad77f83d5d5b9a3b738cfc75982ec0460450b94aa1bac0f16451a1142c89c4c8"}]\n'
    )
    old = make_set("old")
    assert changes(old, new) == []
    code, out = run("diff", old, new, "--fail-on-widen")
    assert code == 0
    assert "no changes" in out


def test_a_condition_written_differently_is_no_change(make_set: MakeSet) -> None:
    text = edit(BASE, "claims.tenant == path.tenant", "(claims.tenant==path.tenant)  # same")
    assert diff_of(make_set, text) == []


# --- access -------------------------------------------------------------------------------


def test_a_role_granted_widens_and_names_who(make_set: MakeSet) -> None:
    text = edit(BASE, "route GET /orders/{id:int} { allow role user }",
                "route GET /orders/{id:int} { allow role viewer }")  # fmt: skip
    change = one(diff_of(make_set, text), "access")
    assert change["route"] == "GET /orders/{id:int}"
    assert change["widens"] is True
    assert change["before"] == {"viewer": "deny"}
    assert change["after"] == {"viewer": "allow"}


def test_a_role_taken_away_narrows(make_set: MakeSet) -> None:
    text = edit(BASE, "route GET /orders/{id:int} { allow role user }",
                "route GET /orders/{id:int} { allow role admin }")  # fmt: skip
    change = one(diff_of(make_set, text), "access")
    assert change["widens"] is False
    assert change["before"] == {"user": "allow"}
    assert change["after"] == {"user": "deny"}


def test_a_condition_dropped_widens_and_one_added_narrows(make_set: MakeSet) -> None:
    text = edit(BASE, "allow role viewer when claims.tenant == path.tenant", "allow role viewer")
    change = one(diff_of(make_set, text), "access")
    assert change["widens"] is True
    assert change["before"]["viewer"].startswith("conditional")
    assert change["after"]["viewer"] == "allow"
    narrowed = edit(BASE, "route GET /orders/{id:int} { allow role user }",
                    "route GET /orders/{id:int} { allow role user when path.id > 10 }")  # fmt: skip
    change = one(changes(make_set("a"), make_set("b", narrowed)), "access")
    assert change["widens"] is False
    assert change["after"]["user"] == "conditional: allow when (path.id > 10)"


def test_a_deny_added_narrows_and_a_condition_rewritten_counts_as_widening(
    make_set: MakeSet,
) -> None:
    denied = edit(
        BASE, "route ANY /admin/** {\n", 'route ANY /admin/** {\n    deny when subject == "bob"\n'
    )
    change = one(diff_of(make_set, denied), "access")
    assert change["route"] == "ANY /admin/**"
    assert change["widens"] is False
    rewritten = edit(BASE, "claims.tenant == path.tenant", "claims.tenant != path.tenant")
    change = one(changes(make_set("a"), make_set("b", rewritten)), "access")
    assert change["widens"] is True  # not provably narrower: fails closed


def test_role_inheritance_counts(make_set: MakeSet) -> None:
    text = edit(
        BASE, "role user inherits viewer", "role user inherits viewer\nrole auditor inherits viewer"
    )
    found = diff_of(make_set, text)
    change = next(c for c in found if c["route"] == "GET /reports/{tenant}")
    assert change["widens"] is True
    assert change["before"] == {"auditor": "deny"}
    assert change["after"]["auditor"].startswith("conditional")
    flat = edit(BASE, "role admin inherits user", "role admin")
    change = next(c for c in changes(make_set("a"), make_set("b", flat))
                  if c["route"] == "POST /orders")  # fmt: skip
    assert change["widens"] is False
    assert change["after"] == {"admin": "deny"}


def test_anyone_and_authenticated_columns(make_set: MakeSet) -> None:
    text = edit(BASE, "route GET /orders/{id:int} { allow role user }",
                "route GET /orders/{id:int} { allow authenticated }")  # fmt: skip
    change = one(diff_of(make_set, text), "access")
    assert change["after"] == {"viewer": "allow", "authenticated": "allow"}
    assert change["widens"] is True


def test_scopes_are_conditions_of_the_grant(make_set: MakeSet) -> None:
    old = edit(BASE, "route GET /orders/{id:int} { allow role user }",
               'route GET /orders/{id:int} { allow scope "orders:read" }')  # fmt: skip
    new = edit(old, '"orders:read"', '"orders:read", "orders:list"')
    change = one(changes(make_set("a", old), make_set("b", new)), "access")
    assert change["widens"] is False  # one more scope needed
    assert change["after"]["authenticated"].startswith("conditional")
    change = one(changes(make_set("c", new), make_set("d", old)), "access")
    assert change["widens"] is True


# --- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "widens"),
    [
        ("limit per_user 5 per 10s by subject", "limit per_user 50 per 10s by subject", True),
        ("limit per_user 5 per 10s by subject", "limit per_user 5 per 1s by subject", True),
        ("limit per_user 5 per 10s by subject", "limit per_user 2 per 10s by subject", False),
        ("limit per_user 5 per 10s by subject", "limit per_user 5 per 10s by client_ip", True),
        (
            "limit per_user 5 per 10s by subject",
            "limit per_user 5 per 10s by subject burst 9",
            True,
        ),
    ],
)
def test_a_limit_changed(make_set: MakeSet, old: str, new: str, widens: bool) -> None:
    change = one(diff_of(make_set, edit(BASE, old, new)), "limit")
    assert change["route"] == "POST /orders"
    assert change["widens"] is widens
    assert change["before"].startswith("per_user: 5 per 10s")


def test_a_limit_removed_widens_and_one_added_narrows(make_set: MakeSet) -> None:
    removed = edit(BASE, "    limit per_user\n", "")
    change = one(diff_of(make_set, removed), "limit")
    assert (change["widens"], change["after"]) == (True, None)
    added = edit(BASE, "route GET /orders/{id:int} { allow role user }",
                 "route GET /orders/{id:int} { allow role user; limit per_user }")  # fmt: skip
    change = one(changes(make_set("a"), make_set("b", added)), "limit")
    assert (change["widens"], change["before"]) == (False, None)
    assert change["route"] == "GET /orders/{id:int}"


# --- input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "widens"),
    [
        ("quantity: int 1..100", "quantity: int 1..1000", True),
        ("quantity: int 1..100", "quantity: int 1..10", False),
        ("note?: string len ..200", "note: string len ..200", False),  # now required
        ("note?: string len ..200", "note?: string", True),
        ("body Order max 16KiB", "body Order max 1KiB", False),
        ("body Order max 16KiB", "body Order max 1MiB", True),
        ("city: string len 1..50", "city: string len 1..500", True),  # a referenced schema
        ("city: string len 1..50", "city: string len 1..5", False),
        ("ship?: Address\n", "ship?: Address\n    gift?: bool\n", True),  # a new field
    ],
)
def test_a_body_schema_changed(make_set: MakeSet, old: str, new: str, widens: bool) -> None:
    change = one(diff_of(make_set, edit(BASE, old, new)), "input")
    assert change["route"] == "POST /orders"
    assert change["widens"] is widens
    assert set(change["before"]) == {"body", "schema"}  # the schema: what differs


def test_an_input_change_says_what_differs(make_set: MakeSet) -> None:
    change = one(
        diff_of(make_set, edit(BASE, "quantity: int 1..100", "quantity: int 1..10")), "input"
    )
    assert change["before"] == {
        "body": "Order max 16384 bytes", "schema": {"/properties/quantity/maximum": 100},
    }  # fmt: skip
    assert change["after"]["schema"] == {"/properties/quantity/maximum": 10}


def test_a_body_removed_widens_and_a_query_added_narrows(make_set: MakeSet) -> None:
    change = one(diff_of(make_set, edit(BASE, "    body Order max 16KiB\n", "")), "input")
    assert (change["widens"], change["after"]) == (True, None)
    query = "route GET /orders/{id:int} { allow role user; query { page?: int 1.. } }"
    queried = edit(BASE, "route GET /orders/{id:int} { allow role user }", query)
    change = one(changes(make_set("a"), make_set("b", queried)), "input")
    assert (change["widens"], change["before"]) == (False, None)
    assert set(change["after"]) == {"query"}


# --- authn --------------------------------------------------------------------------------

MORE_KEYS = (
    KEYS + '  - sha256: "74dcc6c222ab14b1fa70f3b134fe9dc5ceee7ddd7bfb744da8fbe53009c84b89"\n'
    "    subject: victor\n    roles: [viewer]\n"
)


def test_a_key_added_to_the_keys_file_widens_every_route(make_set: MakeSet) -> None:
    found = diff_of(make_set, BASE, {"keys.yaml": MORE_KEYS})
    assert {c["kind"] for c in found} == {"authn"}
    assert len(found) == 5  # each route reads the block
    assert all(c["widens"] for c in found)
    assert "keys file" in found[0]["before"]


PARTNER = """authn api_key partner {
    header "X-Partner-Key"
    keys file "keys.yaml"
}
"""


def test_an_authn_block_added_widens_and_one_dropped_from_a_route_narrows(
    make_set: MakeSet,
) -> None:
    two = edit(BASE, "role viewer\n", PARTNER + "role viewer\n")
    found = diff_of(make_set, two)
    assert len(found) == 5
    assert all(c["kind"] == "authn" and c["widens"] and c["before"] is None for c in found)
    assert found[0]["after"].startswith("authn api_key partner: ")
    required = edit(two, "route GET /health { allow anyone }",
                    "route GET /health { allow anyone; require authn api_key }")  # fmt: skip
    change = one(changes(make_set("a", two), make_set("b", required)), "authn")
    assert change["route"] == "GET /health"
    assert (change["widens"], change["after"]) == (False, None)


def test_an_authn_setting_changed_widens(make_set: MakeSet) -> None:
    found = diff_of(make_set, edit(BASE, '"X-API-Key"', '"X-Key"'))
    assert len(found) == 5
    assert all(c["kind"] == "authn" and c["widens"] for c in found)
    assert 'header "X-Key"' in found[0]["after"]


def test_hosts_narrowed_narrow_and_widened_widen(make_set: MakeSet) -> None:
    hosted = edit(BASE, "route GET /health { allow anyone }",
                  'route GET /health { host "a.example", "b.example"; allow anyone }')  # fmt: skip
    old = make_set("old", hosted)
    narrower = make_set("new", edit(hosted, '"a.example", "b.example"', '"a.example"'))
    change = one(changes(old, narrower), "host")
    assert not change["widens"] and change["after"] == "a.example"
    wider = make_set("wider", edit(hosted, '"a.example", "b.example"', '"*.example"'))
    assert one(changes(old, wider), "host")["widens"]
    assert one(changes(old, make_set("any")), "host")["widens"]  # no host: any host


def test_a_permit_added_widens_every_route_and_one_dropped_narrows(make_set: MakeSet) -> None:
    permitted = BASE + "\npermit double_encoding\n"
    change = one(diff_of(make_set, permitted), "hardening")
    assert change == {
        "route": "*",
        "kind": "hardening",
        "widens": True,
        "before": [],
        "after": ["double_encoding"],
    }
    more = make_set("more", BASE + "\npermit method_override, double_encoding\n")
    change = one(changes(more, make_set("less", permitted)), "hardening")
    assert (change["widens"], change["after"]) == (False, ["double_encoding"])
    reordered = make_set("again", BASE + "\npermit double_encoding\npermit method_override\n")
    assert changes(more, reordered) == []


BANNED = BASE.replace(
    "route GET /health { allow anyone }",
    "ban guessing after 5 failures per 1m by client_ip for 10m\nroute GET /health { allow anyone }",
).replace(
    "route GET /orders/{id:int} { allow role user }",
    "route GET /orders/{id:int} { allow role user; ban guessing }",
)


@pytest.mark.parametrize(
    ("old", "new", "widens"),
    [
        (BASE, BANNED, False),  # a ban added narrows
        (BANNED, BASE, True),  # dropped: guessing goes unchecked again
        (BANNED, BANNED.replace("after 5", "after 50"), True),  # later
        (BANNED, BANNED.replace("for 10m", "for 1m"), True),  # shorter
        (BANNED, BANNED.replace("after 5", "after 3"), False),  # sooner
        (BANNED, BANNED.replace("by client_ip", 'by header "X-Device"'), True),  # other key
    ],
)
def test_a_ban_changed(make_set: MakeSet, old: str, new: str, widens: bool) -> None:
    change = one(changes(make_set("a", old), make_set("b", new)), "ban")
    assert change["route"] == "GET /orders/{id:int}"
    assert change["widens"] is widens, change


def test_a_ban_renamed_is_no_change(make_set: MakeSet) -> None:
    renamed = BANNED.replace("guessing", "brute_force")
    assert changes(make_set("a", BANNED), make_set("b", renamed)) == []
