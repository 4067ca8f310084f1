"""Bans (`ban NAME after N failures per D by KEYS for B`): counted, held, lifted.

The engine runs on a clock the test moves, so a ban lifts without sleeping; the same
sequence runs on the memory store, on a real Redis (`clock="engine"`), through
`decide`, `decide_async` and `policyengine test`/`check` (the CLI).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from policyengine import Engine, PolicyError, Request
from policyengine.cli import main
from policyengine.decision import Decision
from policyengine.ratelimit import Limiter, MemoryLimiter
from policyengine.ratelimit.redis import RedisLimiter

GOOD = "key-alice"
POLICY = """\
policy "bans"

authn api_key {
    header "X-API-Key"
    keys file "keys.yaml"
}

role user

ban guessing  after 3 failures per minute by client_ip for 10m
ban forbidden after 2 failures per minute by client_ip, header "X-Tenant" for 30s on 401, 403

route GET /api/orders/{id:int} {
    allow role user
    ban guessing
}

route GET /api/admin {
    allow role admin_only
    ban forbidden
}

route GET /api/open {
    allow anyone
}

role admin_only
"""


def write_policy(directory: Path, text: str = POLICY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(GOOD.encode()).hexdigest()
    (directory / "keys.yaml").write_text(
        f'keys:\n  - sha256: "{digest}"\n    subject: alice\n    roles: [user]\n'
    )
    (directory / "bans.policy").write_text(text)
    return directory


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


Decide = Callable[[Request], Decision]


def deciders(engine: Engine) -> dict[str, Decide]:
    return {
        "decide": engine.decide,
        "decide_async": lambda request: asyncio.run(engine.decide_async(request)),
    }


def get(path: str, key: str | None, ip: str, **headers: str) -> Request:
    if key is not None:
        headers["X-API-Key"] = key
    return Request(method="GET", path=path, headers=headers, client_ip=ip)


@pytest.fixture(params=["decide", "decide_async"])
def face(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_engine(tmp_path: Path, limiter: Limiter, clock: Clock) -> Engine:
    return Engine.load(write_policy(tmp_path / "policy"), limiter=limiter, clock=clock)


def run_brute_force(engine: Engine, decide: Decide, clock: Clock) -> None:
    """The whole story: N-1 failures, the N-th, the ban, others, the lift."""
    orders = "/api/orders/7"
    for _ in range(2):  # N - 1 failures do not ban
        assert decide(get(orders, "guess", "10.0.0.1")).reason == "authn.invalid"
    assert decide(get(orders, GOOD, "10.0.0.1")).status == 200
    third = decide(get(orders, "guess", "10.0.0.1"))  # the N-th within the minute
    assert (third.status, third.reason) == (401, "authn.invalid")
    banned = decide(get(orders, GOOD, "10.0.0.1"))  # the right key is refused now
    assert (banned.status, banned.reason) == (403, "abuse.banned")
    assert banned.response_headers["Retry-After"] == "600"
    assert banned.subject is None and "guessing" in banned.message
    assert banned.reuse_until == 0.0
    # before any credential is read: two credentials would otherwise be a 400
    both = decide(get(orders, GOOD, "10.0.0.1", Authorization="Bearer x.y.z"))
    assert both.reason == "abuse.banned"
    assert decide(get(orders, GOOD, "10.0.0.2")).status == 200  # another address
    assert decide(get("/api/open", None, "10.0.0.1")).status == 200  # a route without it
    clock.now += 599.2
    late = decide(get(orders, GOOD, "10.0.0.1"))
    assert (late.reason, late.response_headers["Retry-After"]) == ("abuse.banned", "1")
    clock.now += 0.8  # the ban ends by itself, 600 s after it started
    assert decide(get(orders, GOOD, "10.0.0.1")).status == 200


def test_brute_force_is_banned_and_lifted_memory(tmp_path: Path, face: str) -> None:
    clock = Clock()
    engine = make_engine(tmp_path, MemoryLimiter(), clock)
    run_brute_force(engine, deciders(engine)[face], clock)


def test_brute_force_is_banned_and_lifted_redis(tmp_path: Path, face: str, redis_url: str) -> None:
    clock = Clock()
    limiter = RedisLimiter(redis_url, clock="engine", prefix="pe:bans:")
    engine = make_engine(tmp_path, limiter, clock)
    run_brute_force(engine, deciders(engine)[face], clock)
    limiter.close()


def test_failures_leave_the_window(tmp_path: Path) -> None:
    """`per minute`: failures older than a minute no longer count towards a ban."""
    clock = Clock()
    engine = make_engine(tmp_path, MemoryLimiter(), clock)
    for _ in range(2):
        engine.decide(get("/api/orders/1", "guess", "10.0.0.3"))
    clock.now += 60
    engine.decide(get("/api/orders/1", "guess", "10.0.0.3"))
    assert engine.decide(get("/api/orders/1", GOOD, "10.0.0.3")).status == 200


def test_on_403_counts_denials_by_address_and_header(tmp_path: Path) -> None:
    clock = Clock()
    engine = make_engine(tmp_path, MemoryLimiter(), clock)
    admin = "/api/admin"
    assert engine.decide(get(admin, GOOD, "10.0.0.4", **{"X-Tenant": "a"})).status == 403
    assert engine.decide(get(admin, None, "10.0.0.4", **{"X-Tenant": "a"})).status == 401
    banned = engine.decide(get(admin, GOOD, "10.0.0.4", **{"X-Tenant": "a"}))
    assert (banned.reason, banned.response_headers["Retry-After"]) == ("abuse.banned", "30")
    # a ban's refusals are no failures: they neither count nor extend it
    clock.now += 29.5
    assert engine.decide(get(admin, GOOD, "10.0.0.4", **{"X-Tenant": "a"})).reason == (
        "abuse.banned"
    )
    other_tenant = engine.decide(get(admin, GOOD, "10.0.0.4", **{"X-Tenant": "b"}))
    assert other_tenant.reason == "authz.no_allow"
    clock.now += 0.5
    assert engine.decide(get(admin, GOOD, "10.0.0.4", **{"X-Tenant": "a"})).reason == (
        "authz.no_allow"
    )


def test_a_403_does_not_count_for_a_401_ban(tmp_path: Path) -> None:
    clock = Clock()
    engine = make_engine(tmp_path, MemoryLimiter(), clock)
    text = POLICY.replace("allow role admin_only\n    ban forbidden", "allow role admin_only\n"
                          "    ban guessing")  # fmt: skip
    engine = Engine.load(write_policy(tmp_path / "p2", text), limiter=MemoryLimiter(), clock=clock)
    for _ in range(5):
        assert engine.decide(get("/api/admin", GOOD, "10.0.0.5")).reason == "authz.no_allow"
    assert engine.decide(get("/api/orders/1", GOOD, "10.0.0.5")).status == 200


def test_a_store_that_cannot_answer_is_a_503(tmp_path: Path) -> None:
    limiter = RedisLimiter("redis://127.0.0.1:1/0", timeout_ms=50, recovery_ms=0)
    engine = make_engine(tmp_path, limiter, Clock())
    decision = engine.decide(get("/api/orders/1", GOOD, "10.0.0.6"))
    assert (decision.status, decision.reason) == (503, "ratelimit.unavailable")
    assert decision.response_headers["Retry-After"] == "1"
    assert engine.decide(get("/api/open", None, "10.0.0.6")).status == 200


def test_bans_and_limits_never_share_a_counter(tmp_path: Path) -> None:
    text = "limit guessing 100 per minute by client_ip\n" + POLICY.replace('policy "bans"', "")
    text = text.replace("allow anyone\n", "allow anyone\n    limit guessing\n")
    clock = Clock()
    engine = Engine.load(write_policy(tmp_path / "p", text), limiter=MemoryLimiter(), clock=clock)
    for _ in range(5):
        assert engine.decide(get("/api/open", None, "10.0.0.7")).status == 200
    assert engine.decide(get("/api/orders/1", GOOD, "10.0.0.7")).status == 200


# -- the language -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "code", "column"),
    [
        ("ban b after 3 failures per minute by subject for 1m", "compile/ban-key", 38),
        ("ban b after 3 failures per minute by claims.tenant for 1m", "compile/ban-key", 38),
        ("ban b after 0 failures per minute by client_ip for 1m", "syntax/ban-count", 13),
        ("ban b after 3 failures per minute by client_ip for 1m on 500", "syntax/ban-status", 58),
        ("ban b after 3 failures per minute by client_ip for 0s", "syntax/limit-period", 52),
    ],
)
def test_bad_bans_are_errors_with_their_place(line: str, code: str, column: int) -> None:
    text = f"{line}\nroute GET /a {{\n    allow anyone\n    ban b\n}}\n"
    with pytest.raises(PolicyError) as caught:
        Engine.from_text(text, name="b.policy")
    (diagnostic,) = [d for d in caught.value.diagnostics if d.code == code]
    assert diagnostic.span.location() == f"b.policy:1:{column}"


def test_an_unknown_ban_on_a_route_is_an_error() -> None:
    with pytest.raises(PolicyError) as caught:
        Engine.from_text("route GET /a {\n    allow anyone\n    ban nope\n}\n", name="b.policy")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "compile/unknown-ban"
    assert diagnostic.span.location() == "b.policy:3:9"


def test_an_unused_ban_is_linted() -> None:
    engine = Engine.from_text(
        "ban idle after 3 failures per minute by client_ip for 1m\n"
        "route GET /a {\n    allow anyone\n}\n",
        name="b.policy",
    )
    (warning,) = [w for w in engine.policy.warnings if w.code == "lint/unused-ban"]
    assert warning.span.location() == "b.policy:1:5"


def test_ban_keys_are_inputs_of_the_decision() -> None:
    engine = Engine.from_text(
        'ban b after 3 failures per minute by header "X-Tenant" for 1m\n'
        "route GET /a {\n    allow anyone\n    ban b\n}\n"
    )
    assert "x-tenant" in engine.policy.inputs.headers


# -- the command line ---------------------------------------------------------------------
CASES = """\
- name: a wrong key
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: guess}, client_ip: 10.9.0.1}
  expect: {status: 401, reason: authn.invalid}
- name: a second one
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: guess}, client_ip: 10.9.0.1}
  expect: {status: 401}
- name: the right key still passes after two failures
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: key-alice}, client_ip: 10.9.0.1}
  expect: {status: 200}
- name: the third failure
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: guess}, client_ip: 10.9.0.1}
  expect: {status: 401}
- name: banned, even with the right key
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: key-alice}, client_ip: 10.9.0.1}
  expect: {status: 403, reason: abuse.banned, response_headers: {Retry-After: "600"}}
- name: another address is fine
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: key-alice}, client_ip: 10.9.0.2}
  expect: {status: 200}
- name: ten minutes later the ban has lifted
  advance: 10m
  request: {method: GET, path: /api/orders/1, headers: {X-API-Key: key-alice}, client_ip: 10.9.0.1}
  expect: {status: 200}
"""


def test_policy_tests_ban_and_lift(tmp_path: Path) -> None:
    directory = write_policy(tmp_path / "policy")
    (directory / "bans_test.yaml").write_text(CASES)
    result = CliRunner().invoke(main, ["test", str(directory)])
    assert result.exit_code == 0, result.output
    assert "7 passed" in result.output


def test_check_names_the_place_of_a_bad_ban(tmp_path: Path) -> None:
    text = POLICY.replace("by client_ip for 10m", "by api_key for 10m")
    result = CliRunner().invoke(main, ["check", str(write_policy(tmp_path / "p", text))])
    assert result.exit_code == 1
    assert "bans.policy:10:46: error[compile/ban-key]" in result.output
