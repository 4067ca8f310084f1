"""Step 3 of a decision, its choice: which of a route's authn blocks the request's
credential is for. Compiled with the engine: it runs on every decision."""

from __future__ import annotations

from policyengine.authenticator import Authenticator, ambiguous
from policyengine.context import RequestContext
from policyengine.trace import Trace


def addressee(
    ctx: RequestContext, authenticators: tuple[Authenticator, ...], trace: Trace | None
) -> Authenticator | None:
    """The authn block the request's credential is for; None when none is presented.

    When several blocks see a credential (a `jwt` and an `introspect` block both see
    a bearer token), the first that prefers it wins, else the first that sees it.
    Credentials from different sources (an API key and a bearer token) are refused
    as ambiguous: which caller it is would depend on which a backend reads.
    """
    if ctx.identity is not None:
        if trace is not None:
            trace.add(f"authn: identity given ({ctx.identity.subject})")
        return None
    if len(authenticators) == 1:  # the common case, without building a list
        only = authenticators[0]
        if only.presented(ctx):
            return only
        if trace is not None:
            trace.add("authn: no credentials presented")
        return None
    presented = [a for a in authenticators if a.presented(ctx)]
    if not presented:
        if trace is not None:
            trace.add("authn: no credentials presented")
        return None
    if len(presented) == 1:
        return presented[0]
    if any(a.source != presented[0].source for a in presented):
        raise ambiguous("more than one credential: " + " and ".join(
            dict.fromkeys(a.name for a in presented)))  # fmt: skip
    return next((a for a in presented if a.prefers(ctx)), presented[0])
