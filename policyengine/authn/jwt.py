"""`authn jwt`: bearer JWTs verified with pyjwt against keys chosen by key type and `kid`.

Per token: the size cap, then the header, read unverified (as strict JSON, jose.py)
only to pick keys (`alg` must be in the block's allowlist, `typ` in its type allowlist,
`kid` selects among JWKS keys; `jku`, `x5u`, `jwk`, `x5c` are never looked at; any
`crit` is refused, as we implement no extension). pyjwt then checks the signature with
`algorithms=[alg]` and a key whose type admits that alg, and the claims set is read as
strict JSON too.
Claims are checked against the request's `now` (claims.py). A verified token's
identity is cached under the token as sent until `exp` (at most CACHE_SECONDS), so
a repeated token costs one dictionary lookup: no parse, no hash of its own, no
signature check (a token seen before was checked to be one token68 then).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt as pyjwt
from jwt.exceptions import DecodeError, InvalidSignatureError, PyJWTError

from policyengine.authn.bearer import (
    BearerAuthenticator,
    bearer_of,
    looks_like_jwt,
)
from policyengine.authn.cache import ExpiringCache
from policyengine.authn.claims import ClaimMapping, ClaimRules, Rejection
from policyengine.authn.jose import NotPlainJson, TokenRules, decode_part, plain_object
from policyengine.authn.jwks import JwksUrl
from policyengine.authn.jwt_keys import VerificationKey
from policyengine.context import RequestContext
from policyengine.request import Identity, Reason

CACHE_SECONDS = 300.0  # bounds how long a key removed from a JWKS keeps working via the cache

_VERIFY_ONLY: dict[str, Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    "enforce_minimum_key_length": True,
}
_CLAIMS_NOT_JSON = NotPlainJson("claims set").message


class _ClaimsNotPlainJson(DecodeError):
    pass


class _StrictDecoder(pyjwt.PyJWT):
    """pyjwt with the claims set read as strict JSON (its documented override point)."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            return plain_object(decoded["payload"], "claims set")
        except NotPlainJson:
            raise _ClaimsNotPlainJson() from None


_DECODER = _StrictDecoder(options=_VERIFY_ONLY)  # type: ignore[arg-type]


class JwtAuthenticator(BearerAuthenticator):
    def __init__(
        self,
        name: str,
        algorithms: frozenset[str],
        static_keys: tuple[VerificationKey, ...],
        url_keys: JwksUrl | None,
        rules: ClaimRules,
        mapping: ClaimMapping,
        token_rules: TokenRules,
    ) -> None:
        super().__init__(name)
        self.token_rules = token_rules
        self.algorithms = algorithms
        self.static_keys = static_keys
        self.url_keys = url_keys
        self.waits = url_keys is not None  # a JWKS fetch, on a miss
        self.rules = rules
        self.mapping = mapping
        self.cache: ExpiringCache[str, Identity] = ExpiringCache()

    def prefers(self, ctx: RequestContext) -> bool:
        """JWT-shaped, and not naming another issuer (several IdPs, one block each)."""
        bearer = bearer_of(ctx)
        if bearer is None or not looks_like_jwt(bearer):
            return False
        if bearer.token is None or self.rules.issuer is None:
            return True
        payload = unverified_part(bearer.token, 1)
        return payload is None or payload.get("iss") in (None, self.rules.issuer)

    def authenticate(self, ctx: RequestContext) -> Identity:
        bearer = bearer_of(ctx)
        if bearer is not None and bearer.token is not None:
            cached = self.cache.entry(bearer.token, ctx.now)
            if cached is not None:
                identity, until = cached
                if until < ctx.reuse_until:
                    ctx.reuse_until = until
                return identity
        token = self.token(ctx)
        claims = self._verified_claims(token, ctx.now)
        found = self.rules.check(claims, ctx.now) or self.mapping.identity(claims, self.name)
        if isinstance(found, Rejection):
            raise self.failure(found.reason, found.message)
        expiry = self.rules.expiry(claims)
        until = ctx.now + CACHE_SECONDS if expiry is None else min(expiry, ctx.now + CACHE_SECONDS)
        self.cache.put(token, found, until, ctx.now)
        ctx.reuse_until = min(ctx.reuse_until, until)
        return found

    def cached(self, token: str, now: float) -> bool:
        return self.cache.get(token, now) is not None

    def _verified_claims(self, token: str, now: float) -> Mapping[str, Any]:
        if len(token) > self.token_rules.max_bytes:
            raise self.failure(
                Reason.AUTHN_INVALID, f"token is larger than {self.token_rules.max_bytes} bytes"
            )
        try:
            header = decode_part(token, 0)
        except NotPlainJson as err:
            raise self.failure(Reason.AUTHN_INVALID, err.message) from None
        alg, kid = self._checked_header(header)
        candidates = self._keys_for(alg, kid, now)
        url_keys = self.url_keys
        unnamed = kid is not None and all(k.kid != kid for k in candidates)
        if unnamed and url_keys is not None and url_keys.refresh(now):
            candidates = self._keys_for(alg, kid, now)  # a rotated key; one fetch per interval
        if not candidates:
            raise self.failure(
                Reason.AUTHN_INVALID,
                "token key id is unknown" if kid else "no key accepts the token's algorithm",
            )
        for candidate in candidates:
            try:
                decoded = _DECODER.decode_complete(token, key=candidate.key, algorithms=[alg])
            except InvalidSignatureError:
                continue
            except _ClaimsNotPlainJson:
                raise self.failure(Reason.AUTHN_INVALID, _CLAIMS_NOT_JSON) from None
            except PyJWTError:
                raise self.failure(Reason.AUTHN_INVALID, "token is malformed") from None
            payload: Mapping[str, Any] = decoded["payload"]
            return payload
        raise self.failure(Reason.AUTHN_INVALID, "token signature is invalid")

    def _checked_header(self, header: Mapping[str, Any]) -> tuple[str, str | None]:
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise self.failure(Reason.AUTHN_INVALID, "token algorithm is not accepted")
        if "crit" in header or "b64" in header:  # we implement no extension (RFC 7515 §4.1.11)
            raise self.failure(Reason.AUTHN_INVALID, "token header is not accepted")
        typ_problem = self.token_rules.typ_problem(header)
        if typ_problem is not None:
            raise self.failure(Reason.AUTHN_INVALID, typ_problem)
        if kid is not None and not isinstance(kid, str):
            raise self.failure(Reason.AUTHN_INVALID, "token header is not accepted")
        return alg, kid

    def _keys_for(self, alg: str, kid: str | None, now: float) -> list[VerificationKey]:
        """Keys that admit `alg`; a `kid` selects among keys that have one (JWKS keys);
        keys without one (a PEM file, a secret) are always candidates."""
        keys = self.static_keys + (self.url_keys.keys(now) if self.url_keys else ())
        return [
            k
            for k in keys
            if alg in k.algorithms and (kid is None or k.kid is None or k.kid == kid)
        ]


def unverified_part(token: str, index: int) -> dict[str, Any] | None:
    """The header (0) or claims (1) of a JWT-shaped token, unverified: only to choose
    keys and blocks; None when the part is not one strict JSON object."""
    try:
        return decode_part(token, index)
    except NotPlainJson:
        return None
