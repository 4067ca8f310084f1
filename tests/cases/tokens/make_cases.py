"""Writes the token corpus files of this directory: real EdDSA tokens from a fresh key.

The corpus is YAML with tokens written out, so the tokens must exist before the tests
run; this script makes them (`python tests/cases/tokens/make_cases.py`). The private key
lives only while it runs; the public key goes into the case file beside the tokens.
Rerun it after changing a case; the output is reviewed like any other test change.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

HERE = Path(__file__).parent
# valid on the corpus clock (policyengine.testing.TEST_START, 2027) and on the wall clock
# that `policyengine eval` reads
IAT, EXP = 1_700_000_000, 2_100_000_000
KEY = ed25519.Ed25519PrivateKey.generate()
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode("ascii")
)
AUTHN = """authn jwt {
    issuer "https://idp.example.test"
    audience "orders-api"
    algorithms EdDSA
    public_key file "idp.pem"
    roles claim "roles"
}
"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "https://idp.example.test",
        "aud": "orders-api",
        "sub": "alice",
        "iat": IAT,
        "exp": EXP,
        "roles": ["user"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(header: dict[str, Any] | bytes | None = None, payload: Any = None) -> str:
    """EdDSA-signed; header and payload as given (bytes: exactly these bytes)."""
    head = header if isinstance(header, bytes) else json.dumps(header or {"alg": "EdDSA"})
    body = payload if isinstance(payload, bytes) else json.dumps(payload or claims())
    head_bytes = head if isinstance(head, bytes) else head.encode()
    body_bytes = body if isinstance(body, bytes) else body.encode()
    signing_input = f"{b64(head_bytes)}.{b64(body_bytes)}"
    return f"{signing_input}.{b64(KEY.sign(signing_input.encode()))}"


def case(name: str, tok: str, expect: dict[str, Any], path: str = "/orders") -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {tok}"}
    return {
        "name": name,
        "request": {"method": "GET", "path": path, "headers": headers},
        "expect": expect,
    }


def invalid(message: str) -> dict[str, Any]:
    return {
        "status": 401,
        "reason": "authn.invalid",
        "message": message,
        "response_headers": {
            "WWW-Authenticate": f'Bearer realm="jwt", error="invalid_token", '
            f'error_description="{message}"'
        },
    }


def strict_tokens() -> dict[str, Any]:
    ok = {"status": 200, "subject": "alice"}
    payload = json.dumps(claims()).encode()
    return {
        "description": "strict tokens (RFC 8725, RFC 9068): typ allowlist, size cap, "
        "plain JSON parts, typed roles claim; tokens made by make_cases.py",
        "files": {"idp.pem": PEM},
        "policy": AUTHN + "role user\nroute GET /orders { allow role user }\n",
        "cases": [
            case("no typ is accepted by default", token(), ok),
            case("typ JWT", token({"alg": "EdDSA", "typ": "JWT"}), ok),
            case("typ at+jwt in any case", token({"alg": "EdDSA", "typ": "AT+JWT"}), ok),
            case(
                "typ with the application/ prefix",
                token({"alg": "EdDSA", "typ": "application/at+jwt"}),
                ok,
            ),
            case(
                "a DPoP proof is no access token",
                token({"alg": "EdDSA", "typ": "dpop+jwt"}),
                invalid("token type is not accepted"),
            ),
            case(
                "an ID-token-like secevent type",
                token({"alg": "EdDSA", "typ": "secevent+jwt"}),
                invalid("token type is not accepted"),
            ),
            case(
                "a typ that is not a string",
                token({"alg": "EdDSA", "typ": ["JWT"]}),
                invalid("token type is not accepted"),
            ),
            case(
                "over 8 KiB",
                token(payload=claims(pad="x" * 9000)),
                invalid("token is larger than 8192 bytes"),
            ),
            case(
                "a byte order mark before the header",
                token(b'\xef\xbb\xbf{"alg":"EdDSA"}'),
                invalid("token header is not plain JSON"),
            ),
            case(
                "a duplicate alg in the header",
                token(b'{"alg":"EdDSA","alg":"none"}'),
                invalid("token header is not plain JSON"),
            ),
            case(
                "a duplicate sub in the claims",
                token(payload=payload[:-1] + b', "sub": "admin"}'),
                invalid("token claims set is not plain JSON"),
            ),
            case(
                "a byte order mark before the claims",
                token(payload=b"\xef\xbb\xbf" + payload),
                invalid("token claims set is not plain JSON"),
            ),
            case(
                "a roles string where an array is declared",
                token(payload=claims(roles="user")),
                invalid("token claim `roles` is not an array of strings"),
            ),
        ],
    }


SCOPE_ROUTES = """role user
role admin
route GET /orders { allow scope "orders:read" }
route POST /orders/{id} {
    allow role admin
    allow role user scope "orders:write" when path.id != "0"
}
"""


def scopes() -> dict[str, Any]:
    ok = {"status": 200, "subject": "alice"}

    def insufficient(scope: str) -> dict[str, Any]:
        challenge = f'Bearer realm="jwt", error="insufficient_scope", scope="{scope}"'
        return {"status": 403, "reason": "authz.insufficient_scope",
                "response_headers": {"WWW-Authenticate": challenge}}  # fmt: skip

    def write(path: str, tok: str, expect: dict[str, Any]) -> dict[str, Any]:
        made = case(path, tok, expect, path)
        made["request"]["method"] = "POST"
        return made

    return {
        "description": "OAuth2 scopes (RFC 6749 §3.3, RFC 6750 §3.1): `allow scope`, alone and "
        "with roles and conditions, from `scope` strings and `scp` arrays; "
        "tokens made by make_cases.py",
        "files": {"idp.pem": PEM},
        "policy": AUTHN + SCOPE_ROUTES,
        "cases": [
            {
                **case("scope string", token(payload=claims(scope="openid orders:read")), ok),
                "name": "a scope string grants its scopes",
            },
            {
                **case("scp", token(payload=claims(scp=["orders:read"])), ok),
                "name": "an scp array grants its scopes",
            },
            {
                **case("none", token(), insufficient("orders:read")),
                "name": "no scope: 403 with the scope needed",
            },
            {
                **case(
                    "near",
                    token(payload=claims(scope="orders:READ orders")),
                    insufficient("orders:read"),
                ),
                "name": "scopes match exactly",
            },
            {
                **case(
                    "both",
                    token(payload=claims(scope="orders:read", scp=["orders:read"])),
                    invalid("token has both `scope` and `scp`"),
                ),
                "name": "scope and scp at once are ambiguous",
            },
            {
                **case(
                    "typed",
                    token(payload=claims(scope=["orders:read"])),
                    invalid("token claim `scope` is not a space-separated list of scopes"),
                ),
                "name": "a scope array where a string belongs",
            },
            {
                **write("/orders/7", token(payload=claims(scope="orders:write")), ok),
                "name": "role, scope and condition hold",
            },
            {
                **write(
                    "/orders/7",
                    token(payload=claims(scope="orders:read")),
                    insufficient("orders:write"),
                ),
                "name": "role without the scope",
            },
            {
                **write(
                    "/orders/7",
                    token(payload=claims(roles=[], scope="orders:write")),
                    {"status": 403, "reason": "authz.no_allow"},
                ),
                "name": "scope without the role",
            },
            {
                **write(
                    "/orders/0",
                    token(payload=claims(scope="orders:write")),
                    {"status": 403, "reason": "authz.no_allow"},
                ),
                "name": "role and scope but the condition fails",
            },
            {
                **write("/orders/0", token(payload=claims(roles=["admin"])), ok),
                "name": "another allow needs no scope",
            },
        ],
    }


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def main() -> None:
    for name, data in {"strict.yaml": strict_tokens(), "scopes.yaml": scopes()}.items():
        text = yaml.dump(data, Dumper=_NoAliases, sort_keys=False, width=10_000, allow_unicode=True)
        (HERE / name).write_text("# written by make_cases.py: edit that, then rerun it\n" + text)


if __name__ == "__main__":
    main()
