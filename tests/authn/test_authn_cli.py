"""Authn through `policyengine eval` (real clock, real tokens) and `policyengine check`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from authn_support import AUDIENCE, ISSUER, SigningKey, claims, sign, write
from click.testing import CliRunner, Result

from policyengine.cli import main


@pytest.fixture
def policy_dir(tmp_path: Path, rsa1: SigningKey, p256: SigningKey) -> Path:
    write(tmp_path, "idp.pem", rsa1.pem())
    write(tmp_path, "jwks.json", json.dumps({"keys": [p256.jwk()]}))
    write(
        tmp_path,
        "keys.yaml",
        yaml.safe_dump({"keys": [{"sha256": "0" * 64, "subject": "svc", "roles": ["admin"]}]}),
    )
    write(
        tmp_path,
        "api.policy",
        f"""
policy "orders"

authn jwt staff {{
    issuer     "{ISSUER}"
    audience   "{AUDIENCE}"
    algorithms RS256, ES256
    public_key file "idp.pem"
    jwks       file "jwks.json"
    roles      claim "realm_access.roles"
    roles      map {{ "orders-admins": admin, "orders-users": user }}
}}

authn api_key services {{
    header "X-API-Key"
    keys file "keys.yaml"
}}

role user
role admin inherits user

route GET /orders {{
    require authn staff
    allow role user
}}
""",
    )
    return tmp_path


def evaluate(directory: Path, *headers: str) -> Result:
    args = ["eval", str(directory), "GET", "/orders", "--format", "json"]
    for header in headers:
        args += ["-H", header]
    return CliRunner().invoke(main, args)


def live_token(key: SigningKey, alg: str, **overrides: object) -> str:
    now = int(time.time())  # eval runs on the real clock
    fields: dict[str, object] = {
        "iat": now,
        "exp": now + 600,
        "roles": None,
        "realm_access": {"roles": ["orders-admins"]},
        **overrides,
    }
    payload = claims(**fields)
    return sign(key, alg, payload)


def test_eval_allows_a_valid_jwt_and_maps_its_roles(
    policy_dir: Path, rsa1: SigningKey, p256: SigningKey
) -> None:
    for key, alg in ((rsa1, "RS256"), (p256, "ES256")):
        result = evaluate(policy_dir, f"Authorization: Bearer {live_token(key, alg)}")
        assert result.exit_code == 0, result.output
        decision = json.loads(result.stdout)
        assert (decision["subject"], decision["roles"]) == ("alice", ["admin"])
        assert decision["upstream_headers"]["X-Auth-Roles"] == "admin"


def test_eval_denies_bad_tokens_without_echoing_them(policy_dir: Path, rsa1: SigningKey) -> None:
    expired = live_token(rsa1, "RS256", exp=int(time.time()) - 5)
    result = evaluate(policy_dir, f"Authorization: Bearer {expired}")
    decision = json.loads(result.stdout)
    assert (result.exit_code, decision["status"], decision["reason"]) == (1, 401, "authn.expired")
    assert expired not in result.output
    assert decision["response_headers"]["WWW-Authenticate"].startswith('Bearer realm="staff"')


def test_eval_joins_repeated_authorization_headers_and_refuses_them(
    policy_dir: Path, rsa1: SigningKey
) -> None:
    token = live_token(rsa1, "RS256")
    result = evaluate(
        policy_dir, f"Authorization: Bearer {token}", f"Authorization: Bearer {token}"
    )
    assert json.loads(result.stdout)["reason"] == "authn.ambiguous"


def test_require_authn_limits_the_blocks_a_route_accepts(policy_dir: Path) -> None:
    # an API key is a credential of another block: this route does not look at it
    result = evaluate(policy_dir, "X-API-Key: anything")
    decision = json.loads(result.stdout)
    assert (decision["reason"], decision["response_headers"]["WWW-Authenticate"]) == (
        "authn.missing",
        'Bearer realm="staff"',
    )


def test_check_reports_authn_errors_with_their_place(policy_dir: Path) -> None:
    text = (policy_dir / "api.policy").read_text().replace("RS256, ES256", "RS256, ES256, none")
    (policy_dir / "api.policy").write_text(text)
    result = CliRunner().invoke(main, ["check", str(policy_dir)])
    assert result.exit_code == 1
    assert "api.policy:7:" in result.stderr
    assert "error[compile/jwt-alg-none]: algorithm `none` is never accepted" in result.stderr


def test_the_readme_examples_compile(
    tmp_path: Path, rsa1: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Authentication", 1)[1].split("\n## ", 1)[0]
    blocks = [b for b in section.split("```")[1::2] if b.lstrip().startswith("authn ")]
    assert len(blocks) == 4  # api_key, jwt, introspect, mtls
    monkeypatch.setenv("ORDERS_JWT_SECRET", "o" * 32)
    monkeypatch.setenv("INTROSPECT_SECRET", "i" * 16)
    write(tmp_path, "legacy.pem", rsa1.pem())
    write(tmp_path, "keys.yaml", section.split("```yaml", 1)[1].split("```", 1)[0])
    services = 'subjects:\n  "spiffe://cluster.local/ns/shop/sa/cart": [service]\n'
    write(tmp_path, "services.yaml", services)
    roles = "role user\nrole admin inherits user\nrole service\nroute GET /x { allow role user }\n"
    for block in blocks:
        write(tmp_path, "readme.policy", block + roles)
        result = CliRunner().invoke(main, ["check", str(tmp_path)])
        assert result.exit_code == 0, block + result.output
