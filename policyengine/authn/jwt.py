"""`authn jwt`: bearer JWTs verified with pyjwt against keys chosen by key type and `kid`.

Per token: the header is read unverified only to pick keys (`alg` must be in the
block's allowlist, `kid` selects among JWKS keys; `jku`, `x5u`, `jwk`, `x5c` are
never looked at; any `crit` is refused, as we implement no extension). pyjwt then
checks the signature with `algorithms=[alg]` and a key whose type admits that alg.
Claims are checked against the request's `now` (claims.py). A verified token's
identity is cached under the token's sha256 until `exp` (at most CACHE_SECONDS),
so a repeated token costs a dictionary lookup instead of a signature check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import jwt as pyjwt
from jwt.exceptions import DecodeError, InvalidSignatureError, PyJWTError

from policyengine.authn.bearer import BearerAuthenticator, bearer_of, looks_like_jwt
from policyengine.authn.cache import ExpiringCache, token_key
from policyengine.authn.claims import ClaimMapping, ClaimRules, Rejection
from policyengine.authn.jwks import JwksUrl
from policyengine.authn.keys import VerificationKey
from policyengine.context import RequestContext
from policyengine.decision import Identity, Reason

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
_DECODER = pyjwt.PyJWT(options=_VERIFY_ONLY)  # type: ignore[arg-type]
_PEEK = pyjwt.PyJWT(options={"verify_signature": False})


class JwtAuthenticator(BearerAuthenticator):
    def __init__(
        self,
        name: str,
        algorithms: frozenset[str],
        static_keys: tuple[VerificationKey, ...],
        url_keys: JwksUrl | None,
        rules: ClaimRules,
        mapping: ClaimMapping,
    ) -> None:
        super().__init__(name)
        self.algorithms = algorithms
        self.static_keys = static_keys
        self.url_keys = url_keys
        self.rules = rules
        self.mapping = mapping
        self.cache: ExpiringCache[Identity] = ExpiringCache()

    def prefers(self, ctx: RequestContext) -> bool:
        """JWT-shaped, and not naming another issuer (several IdPs, one block each)."""
        bearer = bearer_of(ctx)
        if bearer is None or not looks_like_jwt(bearer):
            return False
        if bearer.token is None or self.rules.issuer is None:
            return True
        try:
            issuer = _PEEK.decode(bearer.token).get("iss")
        except PyJWTError:
            return True
        return issuer in (None, self.rules.issuer)

    def authenticate(self, ctx: RequestContext) -> Identity:
        token = self.token(ctx)
        key = token_key(token)
        cached = self.cache.get(key, ctx.now)
        if cached is not None:
            return cached
        claims = self._verified_claims(token, ctx.now)
        found = self.rules.check(claims, ctx.now) or self.mapping.identity(claims, self.name)
        if isinstance(found, Rejection):
            raise self.failure(found.reason, found.message)
        expiry = self.rules.expiry(claims)
        until = ctx.now + CACHE_SECONDS if expiry is None else min(expiry, ctx.now + CACHE_SECONDS)
        self.cache.put(key, found, until, ctx.now)
        return found

    async def authenticate_async(self, ctx: RequestContext) -> Identity:
        """Off the event loop only when a JWKS fetch may be needed (a cache miss)."""
        bearer = bearer_of(ctx)
        if (
            self.url_keys is None
            or bearer is None
            or bearer.token is None
            or self.cache.get(token_key(bearer.token), ctx.now) is not None
        ):
            return self.authenticate(ctx)
        return await asyncio.to_thread(self.authenticate, ctx)

    def _verified_claims(self, token: str, now: float) -> Mapping[str, Any]:
        try:
            header = pyjwt.get_unverified_header(token)
        except DecodeError:
            raise self.failure(Reason.AUTHN_INVALID, "token is malformed") from None
        except PyJWTError:  # pyjwt's own header checks: `crit`, `kid` type
            raise self.failure(Reason.AUTHN_INVALID, "token header is not accepted") from None
        alg, kid = self._checked_header(header)
        candidates = self._keys_for(alg, kid, now)
        named = kid is not None and any(k.kid == kid for k in candidates)
        if kid is not None and not named and self.url_keys is not None:
            if self.url_keys.refresh(now):  # maybe a rotated key; one fetch per interval
                candidates = self._keys_for(alg, kid, now)
                named = any(k.kid == kid for k in candidates)
        for candidate in candidates:
            try:
                decoded = _DECODER.decode_complete(token, key=candidate.key, algorithms=[alg])
            except InvalidSignatureError:
                continue
            except PyJWTError:
                raise self.failure(Reason.AUTHN_INVALID, "token is malformed") from None
            payload: Mapping[str, Any] = decoded["payload"]
            return payload
        if kid is not None and not named:
            raise self.failure(Reason.AUTHN_INVALID, "token key id is unknown")
        if not candidates:
            raise self.failure(Reason.AUTHN_INVALID, "no key accepts the token's algorithm")
        raise self.failure(Reason.AUTHN_INVALID, "token signature is invalid")

    def _checked_header(self, header: Mapping[str, Any]) -> tuple[str, str | None]:
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise self.failure(Reason.AUTHN_INVALID, "token algorithm is not accepted")
        if "crit" in header or "b64" in header:  # we implement no extension (RFC 7515 §4.1.11)
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
