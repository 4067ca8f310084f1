"""`authn api_key` end to end, and `policyengine keys add|hash` feeding it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml
from authn_support import NOW, write
from click.testing import CliRunner

from policyengine import Engine, PolicyError, Request
from policyengine.authn.api_key import key_digest, key_hash
from policyengine.cli import main
from policyengine.decision import Decision
from policyengine.request import Reason

ALICE_KEY = "test-key-alice"
ROUTES = """
role viewer
role user inherits viewer
route GET /orders { allow role user }
route GET /public { allow anyone }
"""


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keys_file(tmp_path: Path, *entries: dict[str, object]) -> None:
    write(tmp_path, "keys.yaml", yaml.safe_dump({"keys": list(entries)}))


def engine(tmp_path: Path, where: str = 'header "X-API-Key"', now: float = NOW) -> Engine:
    text = f'authn api_key {{\n    {where}\n    keys file "keys.yaml"\n}}\n{ROUTES}'
    return Engine.from_text(text, directory=str(tmp_path), clock=lambda: now)


@pytest.fixture
def alice(tmp_path: Path) -> None:
    keys_file(
        tmp_path,
        {"sha256": sha(ALICE_KEY), "subject": "alice", "roles": ["user"]},
        {
            "sha256": sha("old-key"),
            "subject": "bob",
            "roles": ["user"],
            "expires": "2027-01-15T00:00:00Z",
        },
        {
            "sha256": sha("dated-key"),
            "subject": "carol",
            "roles": ["viewer"],
            "expires": "2027-01-15",
        },
    )


def get(e: Engine, headers: dict[str, str], path: str = "/orders") -> Decision:
    return e.decide(Request("GET", path, headers))


def test_a_known_key_is_an_identity(tmp_path: Path, alice: None) -> None:
    decision = get(engine(tmp_path), {"x-api-key": ALICE_KEY})  # header names: any case
    assert (decision.allow, decision.subject, decision.roles) == (True, "alice", ("user",))
    assert decision.upstream_headers == {"X-Auth-Subject": "alice", "X-Auth-Roles": "user"}


def test_an_unknown_key_is_invalid_even_where_anyone_may_call(tmp_path: Path, alice: None) -> None:
    e = engine(tmp_path)
    for path in ("/orders", "/public"):
        decision = get(e, {"X-API-Key": "guessed"}, path)
        assert (decision.status, decision.reason, decision.message) == (
            401,
            Reason.AUTHN_INVALID,
            "unknown API key",
        )
        assert decision.response_headers["WWW-Authenticate"] == (
            'ApiKey realm="api_key", header="X-API-Key", error="invalid_key", '
            'error_description="unknown API key"'
        )


def test_no_key_asks_for_one(tmp_path: Path, alice: None) -> None:
    decision = get(engine(tmp_path), {})
    assert (decision.status, decision.reason) == (401, Reason.AUTHN_MISSING)
    assert decision.response_headers["WWW-Authenticate"] == (
        'ApiKey realm="api_key", header="X-API-Key"'
    )
    assert get(engine(tmp_path), {}, "/public").allow


@pytest.mark.parametrize(("key", "subject"), [("old-key", "bob"), ("dated-key", "carol")])
def test_keys_expire_at_their_time(tmp_path: Path, alice: None, key: str, subject: str) -> None:
    expires = 1_799_971_200  # 2027-01-15T00:00:00Z
    before = get(engine(tmp_path, now=expires - 1), {"X-API-Key": key})
    assert (before.status != 401, before.subject) == (True, subject)  # carol is only a viewer
    after = get(engine(tmp_path, now=expires), {"X-API-Key": key})
    assert (after.status, after.reason, after.message) == (
        401,
        Reason.AUTHN_EXPIRED,
        "API key expired",
    )


def test_two_key_headers_are_refused(tmp_path: Path, alice: None) -> None:
    decision = get(engine(tmp_path), {"X-API-Key": ALICE_KEY, "x-api-key": "other"})
    assert (decision.status, decision.reason) == (400, Reason.AUTHN_AMBIGUOUS)


def test_query_keys_work_but_warn(tmp_path: Path, alice: None) -> None:
    e = engine(tmp_path, 'query "api_key"')
    assert e.decide(Request("GET", f"/orders?api_key={ALICE_KEY}")).subject == "alice"
    assert e.decide(Request("GET", "/orders?api_key=nope")).reason is Reason.AUTHN_INVALID
    assert [w.code for w in e.policy.warnings] == ["compile/api-key-in-query"]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"sha256": ALICE_KEY, "subject": "a"}, "`sha256` must be 64 hex digits"),
        ({"sha256": sha("k"), "subject": "a", "roles": ["root"]}, "unknown role `root`"),
        (
            {"sha256": sha("k"), "subject": "a", "expires": "2027-01-15T00:00:00"},
            "`expires` must be a date",
        ),
        ({"sha256": sha("k"), "subject": "a", "key": "k"}, "each entry is a mapping"),
        ({"sha256": sha("k")}, "`subject` must be a non-empty string"),
    ],
)
def test_bad_keys_files_are_compile_errors(
    tmp_path: Path, entry: dict[str, object], fragment: str
) -> None:
    keys_file(tmp_path, entry)
    with pytest.raises(PolicyError) as caught:
        engine(tmp_path)
    assert fragment in caught.value.render()
    assert "inline.policy:3:" in caught.value.render()  # points at the `keys file` line


# -- the CLI helper -----------------------------------------------------------------------


def test_keys_add_prints_an_entry_that_works_and_the_key_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["keys", "add", "--subject", "svc-billing", "--role", "user", "--expires", "2030-01-01"],
    )
    assert result.exit_code == 0, result.output
    key = result.stderr.rsplit(": ", 1)[1].strip()
    assert key.startswith("pe_") and len(key) > 40
    assert key not in result.stdout  # the entry holds only the hash
    write(tmp_path, "keys.yaml", "keys:\n" + result.stdout)
    decision = get(engine(tmp_path), {"X-API-Key": key})
    assert (decision.allow, decision.subject) == (True, "svc-billing")
    expired = get(engine(tmp_path, now=1_893_456_000), {"X-API-Key": key})  # 2030-01-01
    assert expired.reason is Reason.AUTHN_EXPIRED
    again = CliRunner().invoke(main, ["keys", "add", "--subject", "svc-billing"])
    assert again.stderr.rsplit(": ", 1)[1].strip() != key


def test_keys_add_refuses_a_bad_expiry() -> None:
    result = CliRunner().invoke(main, ["keys", "add", "--subject", "s", "--expires", "soon"])
    assert result.exit_code == 2 and "--expires" in result.output


def test_keys_hash_reads_the_key_from_stdin() -> None:
    result = CliRunner().invoke(main, ["keys", "hash"], input=f"{ALICE_KEY}\n")
    assert (result.exit_code, result.stdout.strip()) == (0, sha(ALICE_KEY))
    empty = CliRunner().invoke(main, ["keys", "hash"], input="\n")
    assert empty.exit_code == 2


@pytest.mark.parametrize("key", ["", "k", "k-" + "x" * 62, "k" * 200, "clé-ü-鍵", "a,b"])
def test_a_key_digest_is_its_sha256(key: str) -> None:
    """CPython's own sha256 where the engine takes it: always hashlib's bytes."""
    assert key_digest(key) == hashlib.sha256(key.encode()).digest()
    assert key_hash(key) == hashlib.sha256(key.encode()).hexdigest()


def test_a_key_utf8_cannot_encode_has_no_digest() -> None:
    assert key_digest("\ud800") == b""
