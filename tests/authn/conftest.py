from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

# --import-mode=importlib leaves sys.path alone; the shared helpers sit next to this file.
sys.path.insert(0, str(Path(__file__).parent))

from authn_support import (
    IdP,
    SigningKey,
    ec_key,
    ed25519_key,
    rsa_key,
    running_idp,
)

# Key generation is the slow part (RSA); every test module shares one set.


@pytest.fixture(scope="session")
def rsa1() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture(scope="session")
def rsa2() -> SigningKey:
    return rsa_key("rsa-2")


@pytest.fixture(scope="session")
def p256() -> SigningKey:
    return ec_key(ec.SECP256R1(), "p256-1")


@pytest.fixture(scope="session")
def p384() -> SigningKey:
    return ec_key(ec.SECP384R1(), "p384-1")


@pytest.fixture(scope="session")
def ed() -> SigningKey:
    return ed25519_key("ed-1")


@pytest.fixture
def idp() -> Iterator[IdP]:
    with running_idp() as server:
        yield server
