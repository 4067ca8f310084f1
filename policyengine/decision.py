"""What comes out of a decision: the Decision every face returns, and what of a request
any decision of a policy reads (DecisionInputs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from policyengine.ratelimit.plan import Metered
from policyengine.request import InputError, Reason

_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """What of a request any decision of a policy can read, besides its method, target,
    body and the rate-limit counters: the header fields (lowercase names) that authn
    blocks, conditions and limit keys look at, and whether anything reads the client IP.
    Two requests that agree on all of these get the same decision while it is reusable."""

    headers: tuple[str, ...] = ()  # sorted, so that a cache key is built in one order
    client_ip: bool = False
    # the fields only a trusted proxy may set (client certificates it verified): a face
    # drops them from a request that came from any other peer (`without_forwarded`)
    forwarded: tuple[str, ...] = ()


class Decision(NamedTuple):
    """The one answer every face returns (LANGUAGE.md, "Decisions").

    A NamedTuple rather than a frozen dataclass: it is built on every request, and a
    tuple is immutable at a quarter of the construction cost.
    """

    allow: bool
    status: int
    reason: Reason
    message: str = ""
    route: str | None = None
    rule: str | None = None
    subject: str | None = None
    roles: tuple[str, ...] = ()
    upstream_headers: Mapping[str, str] = _NO_HEADERS
    response_headers: Mapping[str, str] = _NO_HEADERS
    errors: tuple[InputError, ...] = ()
    policy: str | None = None
    # Unix time until which a request identical in method, target, the headers of the
    # policy's `DecisionInputs` and (when read) client IP gets this same decision; 0.0:
    # decide each one afresh (a rate limit counted it, a body or a changing credential
    # store was read). A hint for caches such as the sidecar's, not part of the answer.
    reuse_until: float = 0.0
    # a limited route's decision: how a cache reuses it, taking from its limits again
    # (ratelimit/plan.py; Engine.take_again). Not part of the answer either.
    metered: Metered | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "status": self.status,
            "reason": self.reason.value,
            "message": self.message,
            "route": self.route,
            "rule": self.rule,
            "subject": self.subject,
            "roles": list(self.roles),
            "upstream_headers": dict(self.upstream_headers),
            "response_headers": dict(self.response_headers),
            "errors": [e.to_dict() for e in self.errors],
        }


def new_decision(
    *,
    allow: bool,
    status: int,
    reason: Reason,
    message: str = "",
    route: str | None = None,
    rule: str | None = None,
    subject: str | None = None,
    roles: tuple[str, ...] = (),
    upstream_headers: Mapping[str, str] = _NO_HEADERS,
    response_headers: Mapping[str, str] = _NO_HEADERS,
    errors: tuple[InputError, ...] = (),
    policy: str | None = None,
    reuse_until: float = 0.0,
    metered: Metered | None = None,
) -> Decision:
    """A Decision, by keyword, at the cost of positional arguments: compiled, the keywords
    of a call to this function are bound once by mypyc, where the NamedTuple's own
    constructor binds them on every call (about 0.3 µs for a decision's dozen). Built by
    tuple.__new__ (what the NamedTuple's __new__ calls): that __new__ is interpreted."""
    return _new_tuple(_DECISION, (allow, status, reason, message, route, rule, subject, roles,
                                 upstream_headers, response_headers, errors, policy,
                                 reuse_until, metered))  # fmt: skip


def with_response_headers(decision: Decision, headers: Mapping[str, str]) -> Decision:
    """The same decision with other response headers (a metered decision taken again).
    NamedTuple._replace is interpreted (about 1.5 µs); this is compiled."""
    d = decision
    return _new_tuple(_DECISION, (d.allow, d.status, d.reason, d.message, d.route, d.rule,
                                 d.subject, d.roles, d.upstream_headers, headers, d.errors,
                                 d.policy, d.reuse_until, d.metered))  # fmt: skip


_new_tuple: Final = tuple.__new__
_DECISION: Final = Decision  # a C static compiled: the class is not looked up by name
