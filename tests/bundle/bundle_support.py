"""Real keys and a small policy directory for the bundle tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

POLICY = """\
policy "fleet"

route GET /api/public {
    allow anyone
}
"""
CLOSED = POLICY.replace("allow anyone", "deny when true\n    allow anyone")


def write_keys(directory: Path, kind: str = "ed25519", name: str = "bundle") -> tuple[Path, Path]:
    private: Any = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1() if kind == "es256" else ec.SECP384R1())
    )
    key, pub = directory / f"{name}.key", directory / f"{name}.pub"
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, pub


def write_policy(directory: Path, text: str = POLICY) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fleet.policy").write_text(text)
    (directory / "schemas").mkdir(exist_ok=True)
    (directory / "schemas" / "note.txt").write_text("kept in the bundle\n")
    (directory / ".git").mkdir(exist_ok=True)
    (directory / ".git" / "HEAD").write_text("not bundled\n")
    return directory
