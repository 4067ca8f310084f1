"""`authn introspect`: opaque bearer tokens checked with the IdP (RFC 7662).

The token is POSTed to `endpoint` with the client's credentials (HTTP Basic,
RFC 6749 §2.3.1). An active answer is checked like JWT claims (issuer, audience,
`exp`, `nbf`, required claims) and mapped to an Identity. Answers are cached under
the token's sha256: positive ones until `exp`, at most `cache` (default 1 minute,
which is also how long a revoked token may keep working); negative ones for
NEGATIVE_SECONDS. A timeout, an HTTP error or a malformed answer fails closed
(AuthnUnavailable: 503 `authn.unavailable`) and is not cached.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from policyengine import ast
from policyengine.authenticator import AuthnUnavailable
from policyengine.authn.base import AuthnBuildContext
from policyengine.authn.bearer import (
    BearerAuthenticator,
    bearer_of,
    looks_like_jwt,
)
from policyengine.authn.cache import ExpiringCache, token_key
from policyengine.authn.claims import (
    CLAIM_SETTINGS,
    ClaimMapping,
    ClaimRules,
    Rejection,
    read_claim_mapping,
    read_claim_rules,
)
from policyengine.authn.http import FetchError, fetch_json, url_problem
from policyengine.authn.settings import SettingsReader
from policyengine.context import RequestContext
from policyengine.request import Identity, Reason

log = logging.getLogger("policyengine.authn")

DEFAULT_TIMEOUT, MAX_TIMEOUT = 2.0, 30.0
DEFAULT_CACHE, MAX_CACHE = 60.0, 3600.0
NEGATIVE_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024
SETTINGS = CLAIM_SETTINGS | {"endpoint", "client_id", "client_secret", "timeout", "cache"}

Outcome = Identity | Rejection


class IntrospectAuthenticator(BearerAuthenticator):
    waits = True  # the IdP is called on a miss

    def __init__(
        self,
        name: str,
        endpoint: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        cache_seconds: float,
        rules: ClaimRules,
        mapping: ClaimMapping,
    ) -> None:
        super().__init__(name)
        self.endpoint = endpoint
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.rules = rules
        self.mapping = mapping
        self.cache: ExpiringCache[bytes, Outcome] = ExpiringCache()
        basic = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._authorization = "Basic " + base64.b64encode(basic.encode("utf-8")).decode("ascii")

    def prefers(self, ctx: RequestContext) -> bool:
        """Opaque tokens; JWT-shaped ones go to a `jwt` block of the route, if it has one."""
        bearer = bearer_of(ctx)
        return bearer is not None and not looks_like_jwt(bearer)

    def authenticate(self, ctx: RequestContext) -> Identity:
        token = self.token(ctx)
        key = token_key(token)
        cached = self.cache.entry(key, ctx.now)
        if cached is not None:
            outcome, until = cached
        else:
            outcome = self._introspect(token, ctx.now)
            until = self._cache_until(outcome, ctx.now)
            self.cache.put(key, outcome, until, ctx.now)
        if isinstance(outcome, Rejection):
            raise self.failure(outcome.reason, outcome.message)
        ctx.reuse_until = min(ctx.reuse_until, until)  # the IdP is asked again after it
        return outcome

    def cached(self, token: str, now: float) -> bool:
        return self.cache.get(token_key(token), now) is not None

    def _introspect(self, token: str, now: float) -> Outcome:
        form = urlencode({"token": token, "token_type_hint": "access_token"}).encode("ascii")
        headers = {
            "Authorization": self._authorization,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        try:
            answer = fetch_json(
                self.endpoint,
                timeout=self.timeout,
                data=form,
                headers=headers,
                max_bytes=MAX_ANSWER_BYTES,
            ).value
        except FetchError as err:
            log.warning("introspection at %s failed (%s)", self.endpoint, err)
            raise AuthnUnavailable("introspection failed") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            log.warning("introspection at %s answered without a boolean `active`", self.endpoint)
            raise AuthnUnavailable("introspection answer malformed")
        if not answer["active"]:
            return Rejection(Reason.AUTHN_INVALID, "token is not active")
        return self._outcome(answer, now)

    def _outcome(self, claims: Mapping[str, Any], now: float) -> Outcome:
        return self.rules.check(claims, now) or self.mapping.identity(claims, self.name)

    def _cache_until(self, outcome: Outcome, now: float) -> float:
        if isinstance(outcome, Rejection):
            return now + NEGATIVE_SECONDS
        expiry = self.rules.expiry(outcome.claims)
        bound = now + self.cache_seconds
        return bound if expiry is None else min(expiry, bound)


def build_introspect(
    block: ast.AuthnBlock, bc: AuthnBuildContext
) -> IntrospectAuthenticator | None:
    errors_before = len(bc.diags.errors)
    settings = SettingsReader(block, SETTINGS, bc.diags, mergeable=frozenset({"roles"}))
    settings.require("endpoint", "client_id", "client_secret")
    endpoint = settings.string("endpoint")
    problem = url_problem(endpoint) if endpoint is not None else None
    if problem is not None:
        bc.diags.error("compile/bad-setting", f"`endpoint` {problem}", settings.span("endpoint"))
    client_id = settings.string("client_id")
    secret = settings.env("client_secret", bc.environ)
    timeout = _bounded(settings, "timeout", DEFAULT_TIMEOUT, 0.001, MAX_TIMEOUT)
    cache = _bounded(settings, "cache", DEFAULT_CACHE, 0.0, MAX_CACHE)
    rules = read_claim_rules(settings, require_exp=False)
    mapping = read_claim_mapping(settings, bc)
    if len(bc.diags.errors) > errors_before or not (endpoint and client_id and secret):
        return None
    return IntrospectAuthenticator(
        block.label, endpoint, client_id, secret, timeout, cache, rules, mapping
    )


def _bounded(settings: SettingsReader, key: str, default: float, low: float, high: float) -> float:
    value = settings.duration(key)
    if value is None:
        return default
    if not low <= value <= high:
        settings.diags.error(
            "compile/bad-setting",
            f"`{key}` must be between {low:g}s and {high:g}s",
            settings.span(key),
        )
    return value
