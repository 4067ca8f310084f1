"""JWT verification keys: which algorithms each key may verify, decided by the key's type.

This is the defence against algorithm confusion: an HMAC secret only ever verifies
HS*, an RSA key only RS*/PS*, an EC key only the ES* of its curve, an Ed25519/Ed448
key only EdDSA. The token's `alg` picks among keys; it never decides how a key is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK
from jwt.exceptions import PyJWTError

HMAC = {"HS256": 32, "HS384": 48, "HS512": 64}  # minimum secret bytes (RFC 7518 §3.2)
RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
EDDSA = "EdDSA"
ALGORITHMS = frozenset({*HMAC, *RSA, *EC_CURVES.values(), EDDSA})
MIN_RSA_BITS = 2048
MAX_JWKS_KEYS = 100

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


class KeyFileError(Exception):
    """A key file that cannot be used; the message is for the policy author."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key and the algorithms (within the policy's allowlist) it may verify."""

    key: PublicKey | bytes
    algorithms: frozenset[str]
    kid: str | None = None


def algorithms_for(key: object) -> frozenset[str]:
    """Every algorithm a public key can verify, from its type alone."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSA if key.key_size >= MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = EC_CURVES.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({EDDSA})
    return frozenset()


def load_public_key(path: Path) -> PublicKey:
    """A PEM public key or X.509 certificate; private keys are refused (wrong file)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise KeyFileError(f"cannot read `{path.name}`: {err.strerror}") from None
    if b"PRIVATE KEY-----" in data:
        raise KeyFileError(f"`{path.name}` holds a private key; give the public key")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except ValueError:
        raise KeyFileError(f"`{path.name}` is not a PEM public key or certificate") from None
    if not algorithms_for(key):
        raise KeyFileError(
            f"`{path.name}` is not a usable key (RSA of {MIN_RSA_BITS} bits or more, "
            "EC P-256/P-384/P-521, Ed25519 or Ed448)"
        )
    assert isinstance(key, PublicKey)
    return key


def parse_jwks(data: Any, allowed: frozenset[str]) -> tuple[VerificationKey, ...]:
    """The usable signing keys of a JWK Set. Keys for encryption, symmetric (`oct`) keys,
    weak keys and keys of algorithms outside `allowed` are skipped, never an error: an
    IdP's set usually holds keys this policy does not use."""
    raw = data.get("keys") if isinstance(data, Mapping) else None
    if not isinstance(raw, list):
        raise KeyFileError("a JWK Set is a JSON object with a `keys` list")
    keys = (_jwk_key(item, allowed) for item in raw[:MAX_JWKS_KEYS])
    return tuple(key for key in keys if key is not None)


def _jwk_key(item: Any, allowed: frozenset[str]) -> VerificationKey | None:
    if not isinstance(item, dict) or item.get("kty") not in ("RSA", "EC", "OKP"):
        return None
    if item.get("use", "sig") != "sig":
        return None
    ops = item.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    kid = item.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    try:
        key = PyJWK(item).key
    except PyJWTError:
        return None
    algorithms = algorithms_for(key) & allowed
    declared = item.get("alg")
    if declared is not None:  # the key is meant for this one algorithm (RFC 7517 §4.4)
        algorithms &= {declared}
    if not algorithms:
        return None
    assert isinstance(key, PublicKey)
    return VerificationKey(key, algorithms, kid)
