"""Compiler passes: each check reports a stable code at the right place."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyengine.compile import PASSES, compile_policy_set
from policyengine.errors import PolicyError
from policyengine.loader import load_policy_set, parse_text


def compile_text(text: str):  # type: ignore[no-untyped-def]
    return compile_policy_set(parse_text(text))


def error_codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as err:
        compile_text(text)
    return err.value.codes


def test_passes_are_named_and_ordered() -> None:
    names = [p.name for p in PASSES]
    assert names.index("collect-declarations") == 0
    assert names.index("role-hierarchy") < names.index("compile-routes")
    assert names.index("parse-paths") < names.index("detect-conflicts")
    assert len(set(names)) == len(names)


def test_role_closure_folds_inheritance_both_ways() -> None:
    policy = compile_text(
        "role viewer\nrole user inherits viewer\nrole admin inherits user\nrole auditor\n"
        "role boss inherits admin, auditor\nroute GET /x { allow anyone }"
    )
    assert policy.inherited_roles["admin"] == {"admin", "user", "viewer"}
    assert policy.inherited_roles["boss"] == {"boss", "admin", "user", "viewer", "auditor"}
    assert policy.inherited_roles["viewer"] == {"viewer"}


def test_allow_role_accepts_every_role_that_inherits_it() -> None:
    policy = compile_text(
        "role viewer\nrole user inherits viewer\nrole admin inherits user\n"
        "route GET /x { allow role user }"
    )
    route = policy.tree.match(("x",), "GET")
    assert route is not None
    assert route[0].allows[0].roles == {"user", "admin"}


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("role a inherits b\nrole b inherits a", ["compile/role-cycle"]),  # once per cycle
        ("role a inherits a", ["compile/role-cycle"]),
        ("role a inherits ghost", ["compile/unknown-role"]),
        ("role a\nrole a", ["compile/duplicate-name"]),
        ("limit l 5 per 10s\nlimit l 6 per 10s", ["compile/duplicate-name"]),
        ('policy "a"\npolicy "b"', ["compile/policy-name"]),
        ("route GET /x { allow role ghost }", ["compile/unknown-role"]),
        ("route GET /x { deny role ghost when true\n allow anyone }", ["compile/unknown-role"]),
        ("route POST /x { allow anyone; body Nope }", ["compile/unknown-schema"]),
        ("route GET /x { allow anyone; limit nope }", ["compile/unknown-limit"]),
        ("route GET /x { allow anyone; require authn nope }", ["compile/unknown-authn"]),
        ("schema A { b: B }", ["compile/unknown-schema"]),
        ("schema A { b: [[B]] }", ["compile/unknown-schema"]),
        (
            "schema S { a: int }\nroute POST /x { allow anyone; body S; body S }",
            ["compile/duplicate-rule"],
        ),
        ('group "api" { route GET /x { allow anyone } }', ["compile/bad-group"]),
    ],
)
def test_name_and_declaration_errors(text: str, codes: list[str]) -> None:
    assert error_codes(text) == codes


@pytest.mark.parametrize(
    ("text", "conflict"),
    [
        ("route GET /a/{x} { allow anyone }\nroute GET /a/{y} { allow anyone }", True),
        ("route GET /a/{x} { allow anyone }\nroute ANY /a/{y} { allow anyone }", True),
        ("route ANY /a/** { allow anyone }\nroute ANY /a/** { allow anyone }", True),
        ("route GET /a, GET /a { allow anyone }", True),
        ('group "/a" { route GET /b { allow anyone } }\nroute GET /a/b { allow anyone }', True),
        ("route GET /a/{x} { allow anyone }\nroute POST /a/{y} { allow anyone }", False),
        ("route GET /a/{x:int} { allow anyone }\nroute GET /a/{y} { allow anyone }", False),
        ("route GET /a/{x:int} { allow anyone }\nroute GET /a/{y:uuid} { allow anyone }", False),
        ("route GET /a/* { allow anyone }\nroute GET /a/{y} { allow anyone }", False),
        ("route GET /a/b { allow anyone }\nroute GET /a/{y} { allow anyone }", False),
    ],
)
def test_route_conflicts(text: str, conflict: bool) -> None:
    if conflict:
        assert error_codes(text) == ["compile/route-conflict"]
    else:
        compile_text(text)


def test_a_conflict_names_both_places() -> None:
    with pytest.raises(PolicyError) as err:
        compile_text("route GET /a/{x} { allow anyone }\n\nroute GET /a/{y} { allow anyone }")
    diagnostic = err.value.diagnostics[0]
    assert diagnostic.span is not None and diagnostic.span.location() == "inline.policy:3:7"
    assert "inline.policy:1:7" in diagnostic.message


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/a/**/b", "compile/bad-path"),
        ("/a/{x:float}", "compile/bad-path"),
        ("/a/{x}/{x}", "compile/bad-path"),
        ("/a/x{y}", "compile/bad-path"),
        ("/a/./b", "compile/bad-path"),
        ("/a/%7euser", "compile/bad-path"),  # not canonical: requests decode %7e to ~
        ("/a/", "compile/bad-path"),
        ("/a//b", "compile/bad-path"),
    ],
)
def test_bad_path_patterns(path: str, code: str) -> None:
    assert error_codes(f"route GET {path} {{ allow anyone }}") == [code]


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ('allow when path.id == "7"', "compile/type-mismatch"),
        ("allow when path.nope == 1", "compile/unknown-path-param"),
        ("allow when subject > 3", "compile/type-mismatch"),
        ('allow when client_ip matches "x"', "compile/type-mismatch"),
        ("allow when subject in 3", "compile/type-mismatch"),
        ("allow when 5 in 10.0.0.0/8", "compile/type-mismatch"),
        ('allow when "ghost" in roles', "compile/unknown-role"),
        ('allow when subject matches "("', "compile/bad-regex"),
        ("allow when nothing == 1", "compile/unknown-reference"),
        ('allow when subject.x == "a"', "compile/bad-reference"),
        ('allow when header == "a"', "compile/bad-reference"),
        ('allow when query.nope == "1"\n query { page: int }', "compile/unknown-query-param"),
    ],
)
def test_expression_checks(rule: str, code: str) -> None:
    assert error_codes(f"route GET /o/{{id:int}} {{\n {rule}\n}}") == [code]


def test_a_param_missing_from_one_target_is_reported_once() -> None:
    codes = error_codes('route GET /a, GET /a/{id} { allow when path.id == "x" }')
    assert codes == ["compile/unknown-path-param"]


def test_errors_are_collected_across_passes_and_sorted() -> None:
    text = (
        "route GET /b { allow role ghost }\n"
        "route GET /a/{x} { allow when path.y == 1 }\n"
        "role r inherits nobody\n"
    )
    with pytest.raises(PolicyError) as err:
        compile_text(text)
    lines = [d.span.line for d in err.value.diagnostics if d.span]
    assert lines == sorted(lines) == [1, 2, 3]


def test_errors_beyond_ten_are_counted_not_shown() -> None:
    text = "\n".join(f"route GET /r{i} {{ allow role ghost{i} }}" for i in range(13))
    with pytest.raises(PolicyError) as err:
        compile_text(text)
    assert len(err.value.diagnostics) == 13
    assert err.value.render().count("error[") == 10
    assert err.value.render().endswith("... and 3 more errors")


def test_warnings_do_not_stop_the_build() -> None:
    policy = compile_text("route GET /x { deny when true }")
    assert [w.code for w in policy.warnings] == ["lint/no-allow"]


def test_names_are_global_across_files_of_a_set(tmp_path: Path) -> None:
    (tmp_path / "roles.policy").write_text("role viewer\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "routes.policy").write_text("route GET /x { allow role viewer }\n")
    policy = compile_policy_set(load_policy_set(tmp_path))
    assert policy.route_count == 1


def test_syntax_errors_of_every_file_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.policy").write_text("route GET /x {")
    (tmp_path / "b.policy").write_text("role")
    with pytest.raises(PolicyError) as err:
        load_policy_set(tmp_path)
    assert [d.span.source.name for d in err.value.diagnostics if d.span] == ["a.policy", "b.policy"]


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy_set(tmp_path)
    assert err.value.codes == ["load/empty"]


@pytest.mark.parametrize("public", [False, True])
def test_the_engine_tree_holds_each_route_in_the_order_written(public: bool) -> None:
    """lint-public takes a public route out of the lints' tree and puts it back; the
    engine gets that tree only when nothing was taken out."""
    text = (
        "role admin\n"
        "route GET /admin/health, POST /admin/health { allow role admin }\n"
        + ("route PATCH /admin/health { allow anyone }\n" if public else "")
        + "route PUT /admin/health { allow role admin }\n"
    )
    endpoint = compile_text(text).tree.endpoint(("admin", "health"))
    assert endpoint is not None
    assert list(endpoint.by_method) == [
        "GET",
        "POST",
        *(["PATCH"] if public else []),
        "PUT",
    ]


def test_a_role_is_satisfied_by_itself_and_every_role_inheriting_it() -> None:
    compiled = compile_text(
        "role viewer\nrole editor inherits viewer\nrole admin inherits editor\nrole other\n"
        "route GET /a { allow role viewer }\nroute GET /b { allow role editor }\n"
    )
    allowed = {}
    for path in ("a", "b"):
        match = compiled.tree.match((path,), "GET")
        assert match is not None
        allowed[path] = match[0].allows[0].roles
    assert allowed == {
        "a": frozenset({"viewer", "editor", "admin"}),
        "b": frozenset({"editor", "admin"}),
    }
