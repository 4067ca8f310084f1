"""The `check-hosts` pass: canonical patterns, once per place, inner hosts inside outer."""

from __future__ import annotations

import pytest

from policyengine.compile import compile_policy_set
from policyengine.errors import PolicyError
from policyengine.hosts import BadHost, HostSet, canonical_host, policy_host
from policyengine.loader import parse_text


def error_codes(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        compile_policy_set(parse_text(text, "t.policy", "."))
    return [d.code for d in info.value.diagnostics]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('host "a..b"\nroute GET /a { allow anyone }', "compile/bad-host"),
        ('host "*.*.b"\nroute GET /a { allow anyone }', "compile/bad-host"),
        ('host "a*.b"\nroute GET /a { allow anyone }', "compile/bad-host"),
        ('host "*.10.0.0.1"\nroute GET /a { allow anyone }', "compile/bad-host"),
        ('host "a.b:99999"\nroute GET /a { allow anyone }', "compile/bad-host"),
        ('host "u@a.b"\nroute GET /a { allow anyone }', "compile/bad-host"),
        ('host "a.b"\nhost "c.d"\nroute GET /a { allow anyone }', "compile/duplicate-host"),
        ('route GET /a { host "a.b"; host "c.d"; allow anyone }', "compile/duplicate-host"),
        ('group "/g" { host "a.b"\nhost "c.d"\nroute GET /a { allow anyone } }',
         "compile/duplicate-host"),
        ('host "a.example"\nroute GET /a { host "b.example"; allow anyone }',
         "compile/host-outside"),
        ('host "*.example"\ngroup "/g" { host "*.other"\nroute GET /a { allow anyone } }',
         "compile/host-outside"),
        ('host "a.example"\ngroup "/g" { host "*.example"\nroute GET /a { allow anyone } }',
         "compile/host-outside"),
        ('group "/g" { host "a.example"\nroute GET /a { host "b.example"; allow anyone } }',
         "compile/host-outside"),
    ],
)  # fmt: skip
def test_host_errors(text: str, code: str) -> None:
    assert code in error_codes(text)


def test_inner_hosts_may_narrow() -> None:
    policy = compile_policy_set(parse_text(
        'host "*.example.test"\n'
        'group "/g" { host "a.example.test", "b.example.test"\n'
        '  route GET /a { host "a.example.test"; allow anyone } }\n'
        'route GET /b { allow anyone }',
        "t.policy", ".",
    ))  # fmt: skip
    assert policy.names_hosts and policy.hosts is not None
    assert policy.hosts.admits("x.example.test") and not policy.hosts.admits("example.test")


def test_a_policy_without_hosts_reads_no_host() -> None:
    policy = compile_policy_set(parse_text("route GET /a { allow anyone }", "t.policy", "."))
    assert not policy.names_hosts and policy.hosts is None


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [
        ("API.Example.Test", "api.example.test"),
        ("api.example.test.", "api.example.test"),
        ("api.example.test:443", "api.example.test"),
        ("api.example.test:80", "api.example.test"),
        ("api.example.test:08080", "api.example.test:8080"),
        ("[0:0::1]:443", "[::1]"),
        ("[::1]:8443", "[::1]:8443"),
        ("10.0.0.1:80", "10.0.0.1"),
    ],
)
def test_canonical_hosts(sent: str, canonical: str) -> None:
    assert canonical_host(sent) == canonical


@pytest.mark.parametrize(
    "sent",
    ["", "a..b", "a.b..", ".a.b", "a b", "a%2eb", "u@a.b", "a.b:", "a.b:x", "a.b:65536",
     "127.1", "0x7f.0.0.1", "010.0.0.1", "[::1", "[zz::1]", "[::1]x", "bücher.test",
     "-a.b", "a-.b", "a" * 64 + ".b"],
)  # fmt: skip
def test_malformed_hosts(sent: str) -> None:
    with pytest.raises(BadHost):
        canonical_host(sent)


def test_policy_hosts_are_encoded_with_idna_2008() -> None:
    assert policy_host("bücher.example") == "xn--bcher-kva.example"
    assert policy_host("*.Bücher.Example:8443") == "*.xn--bcher-kva.example:8443"
    # IDNA 2008 keeps `ß` (IDNA 2003, Python's `idna` codec, maps it to `ss`)
    assert policy_host("straße.example") == "xn--strae-oqa.example"


def test_wildcards_match_exactly_one_label() -> None:
    hosts = HostSet.of([policy_host("*.example.test"), policy_host("*.example.test:8443")])
    assert hosts.admits("a.example.test") and hosts.admits("a.example.test:8443")
    assert not hosts.admits("a.b.example.test") and not hosts.admits("example.test")
    assert not hosts.admits("a.example.test:8080") and not hosts.admits("[::1]")
