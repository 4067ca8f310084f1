"""`authn api_key`: keys looked up by their sha256; the keys file never holds a key."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import yaml

from policyengine import ast
from policyengine.authenticator import Authenticator, AuthnFailure, ambiguous, with_params
from policyengine.authn.base import AuthnBuildContext
from policyengine.authn.settings import SettingsReader
from policyengine.context import RequestContext
from policyengine.errors import one_of
from policyengine.request import Identity, Reason
from policyengine.source import Span
from policyengine.yamldata import load_yaml

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _sha256_of_python() -> Callable[[bytes], Any]:
    """CPython's own sha256 (`_sha256`; `_sha2` from 3.12), what hashlib itself falls back
    to: for a key of a few dozen bytes it takes a quarter fewer instructions than OpenSSL's,
    whose per-call set-up (EVP) outweighs hashing one block. hashlib's when neither is there."""
    for name in ("_sha256", "_sha2"):
        try:
            return cast(Callable[[bytes], Any], importlib.import_module(name).sha256)
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_sha256: Final = _sha256_of_python()  # bound once, a C static compiled: no lookup per request
_UNKNOWN: Final = Reason.AUTHN_INVALID  # a C static compiled: no lookup per refusal
_ENTRY_KEYS = {"sha256", "subject", "roles", "expires", "claims"}


@dataclass(frozen=True, slots=True)
class KeyTable:
    """A keys file by sha256 digest. A key's identity is the dict's value itself, and
    expiries are a table apart that keys without one never reach: a request reads no
    entry object between the digest and the identity (at thousands of keys, each object
    read is a likely cache miss)."""

    identities: dict[bytes, Identity]
    expiries: dict[bytes, float]  # unix time, for the keys that expire


def key_hash(key: str) -> str:
    """The sha256 of a key in hex, as the keys file holds it."""
    return key_digest(key).hex()


def key_digest(key: str) -> bytes:
    """The sha256 of a key; b"" (which no entry has) for a string UTF-8 cannot encode.
    The keys are looked up by these raw bytes: no hex string is built per request."""
    try:
        digest: bytes = _sha256(key.encode()).digest()
    except UnicodeEncodeError:  # a lone surrogate, only possible through the Python API
        return b""
    return digest


class ApiKeyAuthenticator(Authenticator):
    """Looks the key's sha256 up in a dict: no per-key scan and no secret compared.

    The only comparison is the dict's equality check on a digest that matched by hash
    bucket (SipHash, keyed per process). An attacker cannot steer the sha256 of a guess
    towards a stored digest, so its timing says nothing about any key: no constant-time
    compare is needed, and none could make a scan over keys as cheap as this lookup.
    """

    def __init__(self, name: str, header: str | None, query: str | None, keys: KeyTable) -> None:
        super().__init__(name)
        self.header_name = header
        self.header = header.lower() if header else None
        self.query = query
        self.identities = keys.identities
        self.expiries = keys.expiries

    @property
    def headers(self) -> tuple[str, ...]:
        return (self.header,) if self.header is not None else ()  # else in the target

    @property
    def source(self) -> tuple[str, ...]:
        return self.headers or (f"?{self.query}",)

    def _presented_key(self, ctx: RequestContext) -> str | None:
        if self.header is not None:
            return ctx.header(self.header)
        assert self.query is not None
        return ctx.query_value(self.query)

    def presented(self, ctx: RequestContext) -> bool:
        return self._presented_key(ctx) is not None

    def authenticate(self, ctx: RequestContext) -> Identity:
        key = self._presented_key(ctx)
        if self.header is not None and key is not None and "," in key:  # sent twice, joined
            raise ambiguous("API key sent more than once")
        digest = key_digest(key) if key else b""
        identity = self.identities.get(digest)
        if identity is None:
            raise self._failure(_UNKNOWN, "unknown API key")
        if self.expiries:
            expires = self.expiries.get(digest)
            if expires is not None:
                if ctx.now >= expires:
                    raise self._failure(Reason.AUTHN_EXPIRED, "API key expired")
                ctx.reuse_until = min(ctx.reuse_until, expires)
        return identity

    def challenge(self) -> str:
        where = f'header="{self.header_name}"' if self.header_name else f'query="{self.query}"'
        return f'ApiKey realm="{self.name}", {where}'

    def _failure(self, reason: Reason, message: str) -> AuthnFailure:
        """Shaped like RFC 6750's Bearer errors, for clients that parse them."""
        challenge = with_params(self.challenge(), error="invalid_key", error_description=message)
        return AuthnFailure(reason, message, challenge)


def build_api_key(block: ast.AuthnBlock, bc: AuthnBuildContext) -> ApiKeyAuthenticator | None:
    settings = SettingsReader(block, {"header", "query", "keys"}, bc.diags)
    header, query = settings.string("header"), settings.string("query")
    if (header is None) == (query is None):
        bc.diags.error(
            "compile/missing-setting",
            "`authn api_key` needs exactly one of `header` or `query`",
            block.kind.span,
        )
    if query is not None:
        bc.diags.warning(
            "compile/api-key-in-query",
            "API keys in the query string end up in access logs and browser history",
            settings.span("query"),
            'prefer `header "X-API-Key"`',
        )
    settings.require("keys")
    source = settings.sourced("keys", ("file",))
    if source is None:
        return None
    keys = load_keys_file(bc.resolve(source[1]), block.label, settings.span("keys"), bc)
    if keys is None or (header is None) == (query is None):
        return None
    return ApiKeyAuthenticator(block.label, header, query, keys)


def load_keys_file(path: Path, block: str, span: Span, bc: AuthnBuildContext) -> KeyTable | None:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as err:
        bc.diags.error(
            "compile/keys-file", f"cannot read keys file `{path.name}`: {err.strerror}", span
        )
        return None
    except yaml.YAMLError as err:
        bc.diags.error("compile/keys-file", f"keys file `{path.name}` is not YAML: {err}", span)
        return None
    raw = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        bc.diags.error("compile/keys-file", f"`{path.name}` must hold a `keys:` list", span)
        return None
    keys = KeyTable({}, {})
    for index, item in enumerate(raw):
        entry = _key_entry(item, f"{path.name}: keys[{index}]", block, span, bc)
        if entry is not None:
            digest, identity, expires = entry
            if digest in keys.identities:
                bc.diags.error(
                    "compile/keys-file", f"{path.name}: keys[{index}] repeats a hash", span
                )
            keys.identities[digest] = identity
            if expires is not None:
                keys.expiries[digest] = expires
    return keys


def _key_entry(
    item: Any, where: str, block: str, span: Span, bc: AuthnBuildContext
) -> tuple[bytes, Identity, float | None] | None:
    def fail(message: str) -> None:
        bc.diags.error("compile/keys-file", f"{where}: {message}", span)

    if not isinstance(item, dict) or set(item) - _ENTRY_KEYS:
        fail(f"each entry is a mapping of {one_of(_ENTRY_KEYS)}")
        return None
    digest, subject, roles = item.get("sha256"), item.get("subject"), item.get("roles", [])
    if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest.lower()):
        fail("`sha256` must be 64 hex digits (the sha256 of the key, never the key)")
        return None
    if not isinstance(subject, str) or not subject:
        fail("`subject` must be a non-empty string")
        return None
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        fail("`roles` must be a list of role names")
        return None
    for role in roles:
        if role not in bc.known_roles:
            bc.diags.error(
                "compile/unknown-role",
                f"{where}: unknown role `{role}`",
                span,
                f"roles are {one_of(bc.known_roles)}",
            )
    expires = expiry(item.get("expires"))
    if expires is False:
        fail("`expires` must be a date or an ISO 8601 date-time with a time zone")
        return None
    claims = item.get("claims", {})
    if not isinstance(claims, dict):
        fail("`claims` must be a mapping")
        return None
    identity = Identity(subject, _policy_roles(roles), claims, block, digest[:16])
    return bytes.fromhex(digest), identity, expires


def _policy_roles(roles: list[str]) -> frozenset[str]:
    """Role names as the one object the policy's rules hold too (the compiler interns
    them): a rule's role-set probe then matches by identity, reading neither string."""
    return frozenset(sys.intern(role) for role in roles)


def expiry(value: Any) -> float | bool | None:
    """Unix time of `expires`, None when absent, False when malformed.

    A date means the start of that day in UTC; a date-time needs a time zone, since
    a key that expires at a different hour on each server is a bug.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = (dt.date if len(value) == 10 else dt.datetime).fromisoformat(value)
        except ValueError:
            return False
    if isinstance(value, dt.datetime):
        return value.timestamp() if value.tzinfo else False
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC).timestamp()
    return False
