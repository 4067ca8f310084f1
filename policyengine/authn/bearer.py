"""Bearer tokens (RFC 6750) from the Authorization header, and what both token blocks share.

The scheme is matched case-insensitively (RFC 9110 §11.1) and may be followed by
several spaces; the token must be one token68. Anything else after `Bearer` is a
presented but malformed credential: 401, never a silent anonymous request. The
server joins repeated Authorization headers with ", " (RFC 9110 §5.3), and a comma
is no token68 character, so two Authorization headers are always rejected.
"""

from __future__ import annotations

import asyncio
import re

from policyengine.authenticator import Authenticator, AuthnFailure, ambiguous, with_params
from policyengine.context import RequestContext
from policyengine.request import Identity, Reason

MAX_TOKEN_BYTES = 16 * 1024  # far above real IdP tokens; stops decoding work on junk early

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class Bearer:
    """What the Authorization header holds: a token, or the reason it is no token.

    The token is not yet checked to be one token68 (`checked_token`): a token a block
    has verified before is known without reading it again (jwt.py's cache). A plain
    class: compiled, it is built without running interpreted code."""

    __slots__ = ("problem", "token")

    def __init__(self, token: str | None, problem: str | None = None) -> None:
        self.token = token
        self.problem = problem


_TWICE = Bearer(None, "sent more than once")
_MALFORMED = Bearer(None, "malformed")
_TOO_LARGE = Bearer(None, "too large")


def bearer_of(ctx: RequestContext) -> Bearer | None:
    """None when the request carries no bearer credential at all."""
    return ctx.derived(_parse_bearer)


def _parse_bearer(ctx: RequestContext) -> Bearer | None:
    value = ctx.header("authorization")
    if value is None:
        return None
    if "," in value and _names_a_bearer(value):
        return _TWICE  # two Authorization lines, joined
    value = value.strip(" \t")
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "bearer":
        # `Bearer<TAB>token` is a bearer credential written wrongly, not another scheme
        return _MALFORMED if scheme.lower().startswith("bearer\t") else None
    token = rest.lstrip(" ")
    if len(token) > MAX_TOKEN_BYTES:
        return _TOO_LARGE
    return Bearer(token)


def checked_token(bearer: Bearer) -> Bearer:
    """The bearer, or `malformed` when its token is not one token68 (RFC 6750 §2.1)."""
    token = bearer.token
    if token is not None and _TOKEN68.fullmatch(token) is None:
        return _MALFORMED
    return bearer


def _names_a_bearer(joined: str) -> bool:
    """Whether a comma-joined Authorization value holds a Bearer credential: a token68
    has no comma, so the value is several field lines (RFC 9110 §5.3, §11.6.2)."""
    return any(part.strip(" \t").lower().startswith("bearer") for part in joined.split(","))


def looks_like_jwt(bearer: Bearer) -> bool:
    """A malformed bearer counts as JWT-shaped: the JWT block explains what is wrong."""
    token = checked_token(bearer).token
    return token is None or looks_like_jwt_text(token)


def looks_like_jwt_text(token: str) -> bool:
    """Three base64url parts (JWS compact form); an empty signature is still JWT-shaped,
    so `alg: none` tokens reach the JWT block and are rejected there."""
    return _JWT_SHAPE.fullmatch(token) is not None


class BearerAuthenticator(Authenticator):
    """The parts of `jwt` and `introspect` that deal with the header and the challenge."""

    headers = ("authorization",)

    def presented(self, ctx: RequestContext) -> bool:
        # the field's absence first: an API-key request of a route that also takes
        # tokens parses nothing
        return ctx.header("authorization") is not None and bearer_of(ctx) is not None

    def token(self, ctx: RequestContext) -> str:
        """The token, checked; raises AuthnFailure when there is none or it is malformed."""
        bearer = bearer_of(ctx)
        if bearer is _TWICE:
            raise ambiguous("Authorization sent more than once")
        if bearer is not None:
            bearer = checked_token(bearer)
        if bearer is None or bearer.token is None:
            problem = bearer.problem if bearer is not None else "missing"
            raise self.failure(Reason.AUTHN_INVALID, f"bearer token {problem}")
        return bearer.token

    def cached(self, token: str, now: float) -> bool:
        """Whether the answer for this token (as sent) is in the block's cache."""
        return False

    async def authenticate_async(self, ctx: RequestContext) -> Identity:
        """A cache hit, or a token refused before any I/O, answers on the event loop; only
        a miss of a block that `waits` calls its IdP, in a worker thread."""
        bearer = bearer_of(ctx)
        if (
            not self.waits
            or bearer is None
            or bearer.token is None
            or self.cached(bearer.token, ctx.now)
            or checked_token(bearer).token is None  # malformed: refused without a thread
        ):
            return self.authenticate(ctx)
        return await asyncio.to_thread(self.authenticate, ctx)

    def challenge(self) -> str:
        return f'Bearer realm="{self.name}"'

    def failure(self, reason: Reason, message: str) -> AuthnFailure:
        """An RFC 6750 §3 error; `message` is ours, never anything the client sent."""
        challenge = with_params(self.challenge(), error="invalid_token", error_description=message)
        return AuthnFailure(reason, message, challenge)
