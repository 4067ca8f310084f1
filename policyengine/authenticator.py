"""An authn block at request time: the Authenticator the decision tree holds and the
engine calls, and the two ways it fails. Builders (authn/) make them at compile time and
the compiler injects them into the tree, so nothing on the request path imports authn/."""

from __future__ import annotations

from abc import ABC, abstractmethod

from policyengine.context import RequestContext
from policyengine.request import Identity, Reason


class AuthnFailure(Exception):
    """Credentials were presented but do not establish an identity (401, or 400 when
    the request is ambiguous about whose it is)."""

    def __init__(
        self, reason: Reason, message: str, challenge: str | None = None, status: int = 401
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.challenge = challenge  # the WWW-Authenticate value to send back
        self.status = status


def ambiguous(message: str) -> AuthnFailure:
    """Two credentials, or one field sent twice: which caller this is depends on which
    one a server behind the gateway reads, so no one is authenticated (400)."""
    return AuthnFailure(Reason.AUTHN_AMBIGUOUS, message, None, 400)


class AuthnUnavailable(Exception):
    """The credential cannot be checked now (IdP down, timeout): the engine fails closed
    with 503 `authn.unavailable` and `Retry-After`.

    Not an AuthnFailure on purpose: the token may be fine, so the answer is not a 401
    that would make clients throw their tokens away. `retry_after`: seconds until the
    block will try its IdP again (its fetch back-off), at least one.
    """

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Authenticator(ABC):
    """One compiled authn block."""

    # whether authenticate_async may wait on I/O (an IdP): the engine's async path awaits
    # it then, else calls authenticate (a coroutine costs more than an API key lookup)
    waits = False

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    @abstractmethod
    def headers(self) -> tuple[str, ...]:
        """Every header field (lowercase name) presented() and authenticate() read: two
        requests that agree on them get the same identity, so caches of decisions key on
        them. A field read here but missing from this list would make such a cache answer
        one caller with another's decision."""

    @property
    def source(self) -> tuple[str, ...]:
        """Where the credential is read: blocks with one source share one credential
        (`jwt` and `introspect`: the bearer token); different sources, two credentials."""
        return self.headers

    @property
    def forwarded(self) -> bool:
        """Whether the credential is a header a gateway sets after verifying something
        itself (a client certificate): believed only from a trusted proxy, dropped from
        any other peer before the decision (`DecisionInputs.forwarded`)."""
        return False

    @abstractmethod
    def presented(self, ctx: RequestContext) -> bool:
        """Whether the request carries a credential of this block's kind."""

    def prefers(self, ctx: RequestContext) -> bool:
        """Whether a presented credential is addressed to this block rather than to another
        block that also sees it (a JWT-shaped bearer goes to `jwt`, an opaque one to
        `introspect`). Asked only when several blocks of a route see a credential."""
        return True

    @abstractmethod
    def authenticate(self, ctx: RequestContext) -> Identity:
        """The identity behind the presented credential; raises AuthnFailure."""

    async def authenticate_async(self, ctx: RequestContext) -> Identity:
        """The same, for servers: blocks that may do network I/O override it (and set
        `waits`)."""
        return self.authenticate(ctx)

    def challenge(self) -> str | None:
        """The WWW-Authenticate value for a request with no credential."""
        return None


def with_params(challenge: str, **params: str) -> str:
    """A WWW-Authenticate challenge with auth-params added (RFC 9110 §11.6.1): after the
    scheme alone with a space (`Bearer error=...`), after its own params with a comma.
    The values are ours (codes, scopes, our messages), never anything a client sent."""
    separator = ", " if " " in challenge else " "
    return challenge + separator + ", ".join(f'{name}="{value}"' for name, value in params.items())
