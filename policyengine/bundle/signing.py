"""Keys and detached signatures over a manifest: Ed25519 (`EdDSA`) or ECDSA P-256 with
SHA-256 (`ES256`, the signature as JOSE writes it: r and s, 32 bytes each)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from policyengine.bundle.manifest import BundleError

PrivateKey: TypeAlias = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def load_private_key(path: Path) -> PrivateKey:
    try:
        key: Any = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as err:
        raise BundleError("bundle/key", f"cannot read the key `{path}`: {_why(err)}") from None
    except (ValueError, TypeError):
        raise BundleError("bundle/key", f"`{path}` is not an unencrypted PEM private key") from None
    checked: PrivateKey = _checked(key, path)
    return checked


def load_public_key(path: Path) -> PublicKey:
    try:
        key: Any = serialization.load_pem_public_key(path.read_bytes())
    except OSError as err:
        raise BundleError("bundle/key", f"cannot read the key `{path}`: {_why(err)}") from None
    except (ValueError, TypeError):
        raise BundleError("bundle/key", f"`{path}` is not a PEM public key") from None
    public: PublicKey = _checked(key, path)
    return public


def _checked(key: Any, path: Path) -> Any:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return key
    elliptic = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
    if elliptic and isinstance(key.curve, ec.SECP256R1):
        return key
    raise BundleError("bundle/key", f"`{path}` is neither an Ed25519 nor a P-256 (ES256) key")


def _why(err: OSError) -> str:
    return (err.strerror or str(err)).lower()


def algorithm(key: PrivateKey | PublicKey) -> str:
    return (
        "EdDSA"
        if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
        else "ES256"
    )


def sign(key: PrivateKey, message: bytes) -> bytes:
    """manifest.sig: `{"alg": ..., "signature": base64}`."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        signature = key.sign(message)
    else:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    document = {"alg": algorithm(key), "signature": base64.b64encode(signature).decode()}
    return json.dumps(document, sort_keys=True).encode() + b"\n"


def verified(key: PublicKey, message: bytes, signature_file: bytes) -> bool:
    """Whether `signature_file` is a valid signature of `message` by `key`."""
    try:
        document = json.loads(signature_file)
        alg, encoded = document["alg"], document["signature"]
        signature = base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, TypeError):
        return False
    if alg != algorithm(key):
        return False  # never a signature checked under another algorithm than the key's
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
