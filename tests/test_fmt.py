"""The formatter: a fixed point, the same AST, every comment kept."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.cli import main
from policyengine.errors import PolicyError
from policyengine.fmt import format_source
from policyengine.source import Source, Span
from policyengine.syntax import parse_source

ROOT = Path(__file__).resolve().parents[1]
POLICY_FILES = sorted((ROOT / "policies").rglob("*.policy")) + sorted(
    (ROOT / "tests" / "diagnostics" / "cases").glob("unknown_*.policy")
)

MESSY = """\
# a policy
policy "shop"   # its name


authn api_key { header   "X-Key" ; keys file "k.yaml"   # hashes only
}
role viewer
role user  inherits viewer , viewer2
schema S { a:string matching "^x{2}$"  ; b: int 1 .. 100
   c?: [string] len .. 5
   ...
}
limit l 5 per minute by client_ip , header "X-T"   burst 2
group "/api" {
  route GET /a,GET /b/{id} { allow anyone }
  route POST /o {
     allow role user when (claims.t == path.t
        # a comment inside an expression
        and header["X-E"] in ["a","b"])
     query { page?:int 1.., ... }
     # before the closing brace
  }
}
route GET /empty { }
route GET /scoped {
  allow   scope "orders:read","orders:list"   # two scopes, both needed
  allow role  user scope   "orders:write" when  path.x == "1"
}
# the end
"""


def fmt(text: str) -> str:
    return format_source(Source("t.policy", text))


def shape(node: Any) -> Any:
    """An AST with spans and sources removed, for comparing structure."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        kept = [
            shape(getattr(node, f.name))
            for f in dataclasses.fields(node)
            if not isinstance(getattr(node, f.name), Span | Source) and f.name != "path"
        ]
        return (type(node).__name__, *kept)
    if isinstance(node, tuple | list):
        return tuple(shape(n) for n in node)
    return node


def same_ast(a: str, b: str) -> bool:
    return bool(shape(parse_source(Source("t", a))) == shape(parse_source(Source("t", b))))


def comments(text: str) -> list[str]:
    return [c.strip() for c in re.findall(r"#[^\n]*", text)]


def test_messy_input_gets_canonical_layout() -> None:
    out = fmt(MESSY)
    assert 'authn api_key {\n    header "X-Key"\n    keys file "k.yaml"  # hashes only\n}' in out
    assert "role user inherits viewer, viewer2" in out
    assert "    b: int 1..100\n    c?: [string] len ..5\n    ...\n}" in out
    assert 'limit l 5 per minute by client_ip, header "X-T" burst 2' in out
    assert "    route GET /a, GET /b/{id} {\n        allow anyone\n    }" in out
    assert "        # before the closing brace\n    }\n}" in out
    assert "route GET /empty {}" in out
    assert '    allow scope "orders:read", "orders:list"  # two scopes, both needed\n' in out
    assert '    allow role user scope "orders:write" when path.x == "1"\n' in out
    assert "\n\n\n" not in out


def test_format_is_a_fixed_point_with_the_same_ast_and_comments() -> None:
    once = fmt(MESSY)
    assert fmt(once) == once
    assert same_ast(MESSY, once)
    assert comments(once) == comments(MESSY)


@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_real_policies_round_trip(path: Path) -> None:
    text = path.read_text()
    once = fmt(text)
    assert fmt(once) == once
    assert same_ast(text, once)
    assert comments(once) == comments(text)


def test_fmt_check_and_write(tmp_path: Path) -> None:
    target = tmp_path / "a.policy"
    target.write_text("route GET /x {allow anyone}\n")
    result = CliRunner().invoke(main, ["fmt", "--check", str(tmp_path)])
    assert result.exit_code == 1 and "would reformat" in result.output
    assert target.read_text() == "route GET /x {allow anyone}\n"
    assert CliRunner().invoke(main, ["fmt", str(tmp_path)]).exit_code == 0
    assert target.read_text() == "route GET /x {\n    allow anyone\n}\n"
    assert CliRunner().invoke(main, ["fmt", "--check", str(tmp_path)]).exit_code == 0


def test_fmt_refuses_broken_policies(tmp_path: Path) -> None:
    (tmp_path / "a.policy").write_text("route GET /x {")
    result = CliRunner().invoke(main, ["fmt", str(tmp_path)])
    assert result.exit_code == 2 and "syntax/unexpected" in result.output


LINES = [
    'policy "p"', "role a", "role b inherits a", "limit l 5 per 10s by subject",
    "limit m 1 per minute burst 3", 'schema S { x: int 1..5; y?: string len ..3; ... }',
    'route GET /a/{id:int} { allow role a when path.id > 3 and not (subject == "x") }',
    'group "/g" { route POST /p { allow anyone; query { q: string, n?: int 1.. } } }',
    'authn api_key k { header "X"; keys file "k.yaml" }', "# comment", "",
    'route ANY /z/** { deny when client_ip in [10.0.0.0/8, fd00::/8]; allow authenticated }',
    'route PUT /s { allow scope "s:w","s:r" when true; allow role a scope "x" }  # scopes',
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=8), st.sampled_from(["\n", "\n\n", "\n  "]))
def test_any_valid_policy_formats_to_a_fixed_point(lines: list[str], joiner: str) -> None:
    text = joiner.join(lines)
    try:
        parse_source(Source("t", text))
    except PolicyError:
        return
    once = fmt(text)
    assert fmt(once) == once
    assert same_ast(text, once)
    assert comments(once) == comments(text)
