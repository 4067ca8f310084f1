"""`policyengine diff` as a command: routes added and removed, REV:DIR from a real git
repository, --fail-on-widen exit codes, and each output format."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from analysis_support import BASE, MakeSet, changes, edit, run
from ci_support import missing

NEW_ROUTE = "route GET /status { allow anyone }\n"


def test_a_route_open_to_anyone_added_widens(make_set: MakeSet) -> None:
    (change,) = changes(make_set("old"), make_set("new", BASE + NEW_ROUTE))
    assert change["kind"] == "added"
    assert change["route"] == "GET /status"
    assert change["widens"] is True
    assert change["before"] is None
    assert change["after"]["access"]["anyone"] == "allow"


def test_a_route_removed_narrows(make_set: MakeSet) -> None:
    (change,) = changes(make_set("old", BASE + NEW_ROUTE), make_set("new"))
    assert (change["kind"], change["widens"], change["after"]) == ("removed", False, None)
    assert change["before"]["access"]["anyone"] == "allow"


CARVED = 'route DELETE /admin/users/{id} { allow role admin; deny when subject == "ops" }\n'
LOOSER = "route DELETE /admin/users/{id} { allow role user }\n"


def test_added_and_removed_routes_are_judged_against_the_route_they_carve_from(
    make_set: MakeSet,
) -> None:
    (added,) = changes(make_set("a"), make_set("b", BASE + CARVED))
    assert added["kind"] == "added"
    assert added["widens"] is False  # narrower than `ANY /admin/**`, which it came out of
    assert added["before"]["reached"] == "ANY /admin/**"
    (removed,) = changes(make_set("c", BASE + CARVED), make_set("d"))
    assert removed["widens"] is True  # its requests now reach the looser glob
    assert removed["after"]["reached"] == "ANY /admin/**"
    (looser,) = changes(make_set("e"), make_set("f", BASE + LOOSER))
    assert looser["widens"] is True  # users reach what only admins did


def test_fail_on_widen_exit_codes(make_set: MakeSet) -> None:
    old, wider = make_set("old"), make_set("wider", BASE + NEW_ROUTE)
    assert run("diff", old, wider)[0] == 0
    assert run("diff", old, wider, "--fail-on-widen")[0] == 1
    assert run("diff", wider, old, "--fail-on-widen")[0] == 0  # narrowing only
    assert run("diff", old, old, "--fail-on-widen")[0] == 0


def test_a_broken_or_missing_set_is_exit_2_with_the_diagnostic(
    make_set: MakeSet, tmp_path: Path
) -> None:
    broken = make_set("broken", edit(BASE, "allow role user }", "allow role nobody }"))
    code, out = run("diff", make_set("old"), broken)
    assert code == 2
    assert "compile/unknown-role" in out
    code, out = run("diff", make_set("x"), tmp_path / "nowhere")
    assert code == 2
    assert "does not exist" in out


def test_json_has_exactly_the_documented_keys(make_set: MakeSet) -> None:
    code, out = run("diff", make_set("old"), make_set("new", BASE + NEW_ROUTE), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["changes"]
    assert list(document["changes"][0]) == ["route", "kind", "widens", "before", "after"]


def test_text_and_markdown(make_set: MakeSet) -> None:
    old, new = make_set("old"), make_set("new", BASE + NEW_ROUTE)
    code, text = run("diff", old, new)
    assert code == 0
    assert "GET /status: added (WIDENS)" in text
    assert "anyone: allow" in text
    assert text.rstrip().endswith("1 change, 1 widens")
    code, markdown = run("diff", old, new, "--format", "markdown")
    lines = markdown.splitlines()
    assert lines[0] == "### Policy diff: 1 change, 1 widens"
    assert lines[2] == "| | route | change | before | after |"
    assert lines[4].startswith("| :warning: widens | `GET /status` | added | (none) | ")
    code, empty = run("diff", old, old, "--format", "markdown")
    assert empty == "### Policy diff: no changes\n"


# --- REV:DIR -------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, make_set: MakeSet, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose first commit has the base set under policies/."""
    if shutil.which("git") is None:
        missing("git is not installed", ".ci/run installs it")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(make_set("base"), root / "policies")
    git(root, "add", "policies")
    git(root, "commit", "-q", "-m", "base")
    monkeypatch.chdir(root)
    return root


def test_rev_dir_against_the_work_tree(repo: Path) -> None:
    assert changes("HEAD:policies", "policies") == []
    (repo / "policies" / "shop.policy").write_text(BASE + NEW_ROUTE)
    (change,) = changes("HEAD:policies", "policies")
    assert (change["kind"], change["route"], change["widens"]) == ("added", "GET /status", True)
    code, _ = run("diff", "HEAD:policies", "policies", "--fail-on-widen")
    assert code == 1
    git(repo, "commit", "-q", "-am", "status route")
    (change,) = changes("HEAD~1:policies", "HEAD:policies")
    assert change["route"] == "GET /status"
    assert (repo / "policies" / "shop.policy").read_text() == BASE + NEW_ROUTE  # untouched


def test_rev_dir_errors(repo: Path) -> None:
    code, out = run("diff", "no-such-rev:policies", "policies")
    assert code == 2
    assert "cannot read `policies` at `no-such-rev`" in out
    code, out = run("diff", "HEAD:elsewhere", "policies")
    assert code == 2
    assert "elsewhere" in out


def test_get_made_any_widens_for_the_other_methods(make_set: MakeSet) -> None:
    old = BASE + "route GET /files/{name} { allow role user }\n"
    new = BASE + "route ANY /files/{name} { allow role user }\n"
    found = {c["kind"]: c for c in changes(make_set("a", old), make_set("b", new))}
    assert found["added"]["widens"] is True  # POST /files/x was unmatched
    assert found["added"]["before"]["reached"] == "GET /files/{name}"
    assert found["removed"]["widens"] is False  # GET now reaches the ANY route, as open
    assert found["removed"]["after"]["reached"] == "ANY /files/{name}"
