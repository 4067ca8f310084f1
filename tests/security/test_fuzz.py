"""Bounded fuzzing in the test suite (hypothesis); fuzz/ has the long-running atheris twins.

1. Policy text: any input compiles or raises PolicyError, never another exception, and
   never hangs (a watchdog, not a stopwatch).
2. Requests: any method, target, headers, body and client address get a Decision, and
   never reason `internal`: Engine.decide turns any exception into a 500 deny, so an
   `internal` on fuzzed input is a crash the fail-safe hid.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_support import HS_SECRET, SECRET_ENV, Credentials
from test_bounds import finishes

from policyengine import Engine, PolicyError, Request
from policyengine.compile import CompiledPolicy, compile_policy_set
from policyengine.loader import parse_text
from policyengine.request import Identity, Reason

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def compile_or_refuse(text: str) -> CompiledPolicy | PolicyError:
    try:
        return compile_policy_set(parse_text(text, "fuzz.policy", "."))
    except PolicyError as err:
        return err


# -- 1. policy text ------------------------------------------------------------------------------

WORDS = [
    "policy", "route", "group", "role", "inherits", "schema", "limit", "per", "by", "burst",
    "authn", "api_key", "jwt", "header", "keys", "file", "allow", "deny", "anyone",
    "authenticated", "when", "require", "body", "max", "query", "and", "or", "not", "in",
    "matches", "startswith", "endswith", "true", "false", "null", "subject", "roles",
    "claims.tenant", "path.id", "query.q", 'header["X-A"]', "body.a.b", "client_ip", "method",
    "GET", "POST", "ANY", "HEAD", "/a", "/a/{id}", "/a/{id:int}", "/a/*", "/a/**", "/", "{",
    "}", "(", ")", "[", "]", ",", ";", ":", "?", "...", "..", "==", "!=", "<", ">=", "|",
    '"x"', '"^a+$"', '"(?=a)"', "1", "-1", "1.5", "10s", "1KiB", "minute", "10.0.0.0/8",
    "::1/128", "string", "int", "number", "bool", "len", "matching", "format", "email",
    "user", "admin", "S", "l", "\n", "\n", "#c\n", "\\\n",
]  # fmt: skip
SEPARATORS = st.sampled_from([" ", "", "\n", "\t"])


@st.composite
def token_soup(draw: st.DrawFn) -> str:
    """Policy-shaped noise: real keywords and symbols in random order reach the compiler's
    later passes far more often than random characters do."""
    words = draw(st.lists(st.sampled_from(WORDS), max_size=60))
    return "".join(w + draw(SEPARATORS) for w in words)


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    """A real example policy with a slice cut out and noise put in."""
    files = sorted(POLICIES.rglob("*.policy"))
    text = draw(st.sampled_from(files)).read_text()
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 200)))
    return text[:start] + draw(st.one_of(token_soup(), st.text(max_size=20))) + text[end:]


@FUZZ
@given(st.one_of(st.text(max_size=300), token_soup()))
def test_any_text_compiles_or_is_refused(text: str) -> None:
    assert isinstance(finishes(lambda: compile_or_refuse(text)), CompiledPolicy | PolicyError)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(mutated_example())
def test_mutated_policies_compile_or_are_refused(text: str) -> None:
    # `file "..."` paths resolve against "." here: missing files are PolicyErrors too
    assert isinstance(finishes(lambda: compile_or_refuse(text)), CompiledPolicy | PolicyError)


def _nested(depth: int) -> str:
    return "route GET /x { allow when " + "(" * depth + "true" + ")" * depth + " }"


PATHOLOGICAL = {
    "100 KB of one string": 'route GET /x { allow when subject == "' + "a" * 100_000 + '" }',
    "100 KB unterminated string": 'route GET /x { allow when subject == "' + "a" * 100_000,
    "100 KB of `and`": "route GET /x { allow when " + " and ".join(["true"] * 14_000) + " }",
    "100 KB of comments": "# " + "x" * 100_000 + "\nroute GET /x { allow anyone }",
    "100 KB of braces": "{" * 100_000,
    "100 KB of separators": ";" * 100_000,
    "a long dotted reference": "route GET /x { allow when claims" + ".a" * 30_000 + " == 1 }",
    "3000 routes": "\n".join(f"route GET /r{i}/{{x}} {{ allow anyone }}" for i in range(3000)),
    "5000 errors": "\n".join(f"route GET /r{i} {{ allow role ghost{i} }}" for i in range(5000)),
    "a NUL in a schema file path": 'schema S file "s\x00.json"',
    "a regex 100 KB long": 'route GET /x { allow when subject matches "' + "a|" * 50_000 + 'a" }',
}
FAILING = {
    # Findings (the report names them): these raise RecursionError or lark's VisitError.
    "nesting 100 KB deep": _nested(50_000),
    "nesting 300 deep": _nested(300),
    "`not` 900 deep": "route GET /x { allow when " + "not " * 900 + "true }",
    "groups 900 deep": 'group "/a" { ' * 900 + "route GET /x { allow anyone }" + " }" * 900,
    "a list 900 deep": "route GET /x { allow when subject in " + "[" * 900 + "]" * 900 + "}",
    "a route 1000 segments long": "route GET " + "/a" * 1000 + " { allow anyone }",
    "a 5000-digit number": "route GET /x/{n:int} { allow when path.n == 1" + "0" * 5000 + " }",
    "a 5000-digit limit": "limit l " + "9" * 5000 + " per 1s",
    "a NUL in a file path": 'authn api_key { header "K"; keys file "a\x00b" }',
}  # fmt: skip


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_policies_are_decided_in_bounded_time(text: str) -> None:
    assert isinstance(finishes(lambda: compile_or_refuse(text)), CompiledPolicy | PolicyError)


@pytest.mark.parametrize("text", FAILING.values(), ids=FAILING.keys())
def test_pathological_policies_that_crash_the_compiler(text: str) -> None:
    assert isinstance(finishes(lambda: compile_or_refuse(text)), CompiledPolicy | PolicyError)


# -- 2. requests -------------------------------------------------------------------------------

PATH_ALPHABET = st.sampled_from(
    [*list("/%.;\\?#@:+~-_aAzZ09"), "%2e", "%2f", "%25", "%00", "%c0%ae", "%ff", "..", "//"]
)
JWT_SHAPED = r"[A-Za-z0-9_-]{0,20}(\.[A-Za-z0-9_-]{0,20}){2}"
HEADER_NAMES = st.sampled_from([
    "Authorization", "X-API-Key", "x-api-key", "Content-Type", "X-Forwarded-For",
    "X-Auth-Subject", "X-HTTP-Method-Override", "Cookie", "X-Name",
])  # fmt: skip


@st.composite
def header_values(draw: st.DrawFn, credentials: Credentials) -> str:
    return draw(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(["key-alice", "key-ops", "application/json", "application/x+json"]),
            st.builds(lambda t: f"Bearer {t}", st.text(max_size=60)),
            st.just(f"Bearer {credentials.token()}"),
            st.just(f"Bearer {credentials.token('HS256', exp=1e300)}"),
            st.builds("Bearer {}".format, st.from_regex(JWT_SHAPED, fullmatch=True)),
        )
    )  # fmt: skip


def _containers(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)


@st.composite
def requests(draw: st.DrawFn, credentials: Credentials) -> Request:
    method = draw(
        st.one_of(st.sampled_from(["GET", "HEAD", "POST", "DELETE", "get"]), st.text(max_size=8))
    )
    route = draw(
        st.sampled_from(
            [
                "/public",
                "/api/items/7",
                "/api/admin/x",
                "/api/orders",
                "/api/docs",
                "/api/kinds",
                "/tenants/acme/data",
                "/limited",
            ]
        )
    )
    noise = "".join(draw(st.lists(PATH_ALPHABET, max_size=12)))
    target = draw(st.sampled_from([route, route + noise, noise, route + "?" + noise]))
    headers = draw(st.dictionaries(HEADER_NAMES, header_values(credentials), max_size=4))
    body = draw(st.one_of(
        st.none(), st.binary(max_size=200), st.text(max_size=100),
        st.sampled_from([b'{"productId": "ABCD1234", "quantity": 2}', b'{"kind": "public"}',
                         b"[" * 200 + b"]" * 200, b'{"a": 1e999}', b'{"a": "\\ud800"}']),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     _containers, max_leaves=10),
    ))  # fmt: skip
    client_ip = draw(st.one_of(st.none(), st.ip_addresses().map(str), st.text(max_size=10)))
    return Request(method, target, headers, body, client_ip)


def test_any_request_gets_a_decision_and_no_internal_error(
    corpus: tuple[Path, Credentials], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, HS_SECRET)
    engine = Engine.load(corpus[0])

    @FUZZ
    @given(requests(corpus[1]))
    def decide(request: Request) -> None:
        decision = engine.decide(request)
        assert decision.reason is not Reason.INTERNAL, request
        assert decision.allow == (decision.status == 200)

    decide()


def test_raw_text_anywhere_in_a_request_gets_a_decision(
    corpus: tuple[Path, Credentials], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unstructured: every field arbitrary text (surrogates included)."""
    monkeypatch.setenv(SECRET_ENV, HS_SECRET)
    engine = Engine.load(corpus[0])

    @FUZZ
    @given(st.text(max_size=10), st.text(max_size=80),
           st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5),
           st.one_of(st.none(), st.binary(max_size=100)))  # fmt: skip
    def decide(method: str, target: str, headers: dict[str, str], body: bytes | None) -> None:
        decision = engine.decide(Request(method, target, headers, body))
        assert decision.reason is not Reason.INTERNAL, (method, target, headers, body)

    decide()


# Lone surrogates cannot arrive over HTTP (header bytes are Latin-1, JSON refuses them),
# but an in-process caller or a signed claim can carry them: found by fuzz/fuzz_request.py.
SURROGATE = "\udada"
SURROGATE_POLICY = """
route GET /m { allow when header["X-Name"] matches "^a" or query.q matches "^a" }
route GET /c { allow when claims.name matches "^a" }
"""


@pytest.mark.parametrize(
    "request_",
    [
        Request("GET", "/m", {"X-Name": "a" + SURROGATE}),
        Request("GET", f"/m?q=a{SURROGATE}"),
        Request("GET", f"/m/{SURROGATE}"),
        Request("GET" + SURROGATE, "/m"),
        Request("GET", "/m", {"X-Name" + SURROGATE: "x"}),
        Request("GET", "/m", client_ip="10.0.0.1" + SURROGATE),
        Request("GET", "/c", identity=Identity("u", claims={"name": "a" + SURROGATE})),
    ],
    ids=["matched header", "matched query", "path", "method", "header name", "client ip",
         "matched claim"],
)  # fmt: skip
def test_lone_surrogates_are_decided(request_: Request) -> None:
    decision = Engine.from_text(SURROGATE_POLICY).decide(request_)
    assert decision.reason is not Reason.INTERNAL
