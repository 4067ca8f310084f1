"""What a JWT's JOSE parts must be before anything in them counts (RFC 8725, RFC 9068).

A token's header and claims set are read as strict JSON (jsonbody.parse_json: no byte
order mark, no duplicate member names, no NaN), so the engine and the application
behind it cannot read two different objects out of one token (RFC 8725 §3.2, RFC 7515
§4: a duplicate member name must be refused or the last one used, and parsers disagree
on which). Its `typ` must be in an allowlist (RFC 8725 §3.11: explicit typing keeps a
DPoP proof or an ID token from being replayed as an access token), and the token must
fit a size cap. All of it runs once per token, on a cache miss.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policyengine.authn.bearer import looks_like_jwt_text
from policyengine.jsonbody import InvalidJson, parse_json

DEFAULT_TYPES = ("JWT", "at+jwt")  # RFC 7519 §5.1 and RFC 9068 §2.1
DEFAULT_MAX_BYTES = 8 * 1024
PARTS = ("header", "claims set")
MALFORMED = "token is malformed"


class NotPlainJson(ValueError):
    """A token part that is not one strict JSON object (its "header" or "claims set"), or
    not even base64url; the message is safe to show the client."""

    def __init__(self, part: str, message: str | None = None) -> None:
        self.message = message or f"token {part} is not plain JSON"
        super().__init__(self.message)


def media_type(typ: str) -> str:
    """`typ` as the media type it names: lowercase, `application/` put in front of a value
    without a `/` (RFC 7515 §4.1.9), so `at+JWT` and `application/at+jwt` are one type."""
    lowered = typ.lower()
    return lowered if "/" in lowered else f"application/{lowered}"


@dataclass(frozen=True, slots=True)
class TokenRules:
    """An `authn jwt` block's rules for the token itself, before its claims are read."""

    types: frozenset[str]  # media types, as media_type() spells them
    require_typ: bool  # `missing_typ refuse`: a header without `typ` is refused
    max_bytes: int

    def typ_problem(self, header: Mapping[str, Any]) -> str | None:
        """Why the header's `typ` is not accepted; None when it is."""
        if "typ" not in header:
            return "token has no type (`typ`)" if self.require_typ else None
        typ = header["typ"]
        if not isinstance(typ, str) or media_type(typ) not in self.types:
            return "token type is not accepted"
        return None


def decode_part(token: str, index: int) -> dict[str, Any]:
    """The strict JSON object in a JWT-shaped token's header (0) or claims (1), unverified.
    Raises NotPlainJson."""
    part = PARTS[index]
    if not looks_like_jwt_text(token):
        raise NotPlainJson(part, MALFORMED)
    return plain_object(_unbase64(token.split(".", 2)[index], part), part)


def plain_object(data: bytes, part: str) -> dict[str, Any]:
    try:
        value = parse_json(data)
    except InvalidJson:
        raise NotPlainJson(part) from None
    if not isinstance(value, dict):
        raise NotPlainJson(part)
    return value


def _unbase64(segment: str, part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, binascii.Error):
        raise NotPlainJson(part, MALFORMED) from None
