"""What goes into a decision and what comes out: Request, Identity, Decision, reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple


class Reason(StrEnum):
    """Stable dotted reason codes (LANGUAGE.md, "Decisions")."""

    ALLOW = "allow"
    BAD_PATH = "request.bad_path"
    BAD_REQUEST = "request.invalid"
    UNMATCHED = "route.unmatched"
    AUTHN_MISSING = "authn.missing"
    AUTHN_INVALID = "authn.invalid"
    AUTHN_EXPIRED = "authn.expired"
    DENIED = "authz.denied"
    NO_ALLOW = "authz.no_allow"
    RATE_LIMITED = "ratelimit.exceeded"
    RATE_LIMIT_UNAVAILABLE = "ratelimit.unavailable"  # 503: the shared store did not answer
    INPUT_INVALID = "input.invalid"
    INPUT_TOO_LARGE = "input.too_large"
    INPUT_UNSUPPORTED = "input.unsupported_media_type"
    INTERNAL = "internal"


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the caller is, as established by an authn block (or a test's `identity:`)."""

    subject: str
    roles: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)
    authn: str | None = None  # name of the authn block that produced it
    credential_id: str | None = None  # a non-secret id of the credential (api key hash prefix)
    role_list: tuple[str, ...] = field(init=False, repr=False, compare=False)
    roles_header: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # computed once per identity, not once per decision (identities are cached)
        object.__setattr__(self, "role_list", tuple(sorted(self.roles)))
        object.__setattr__(self, "roles_header", ",".join(self.role_list))


class Request(NamedTuple):
    """A request to decide on.

    `path` is the raw request target (path and optional query). `headers` is any
    mapping; names are matched case-insensitively. `body` is raw bytes/str, or an
    already-parsed JSON value. `identity` bypasses authentication: it exists for
    policy tests and trusted in-process callers, and no server face ever sets it
    from request data.

    A NamedTuple, like Decision: the server builds one per request, and a frozen
    dataclass costs three times as much to build.
    """

    method: str
    path: str
    headers: Mapping[str, str] = _NO_HEADERS
    body: bytes | str | Any | None = None
    client_ip: str | None = None
    identity: Identity | None = None


class InputRefused(Exception):
    """Input that cannot be read without guessing (a body that is not strict JSON, an
    ambiguous query parameter): the request is refused with this status, wherever the
    decision was when it found out."""

    def __init__(self, status: int, reason: Reason, message: str,
                 errors: tuple[InputError, ...] = ()) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.errors = errors


@dataclass(frozen=True, slots=True)
class InputError:
    """One input violation: a JSON pointer into the body or query, and a message."""

    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """What of a request any decision of a policy can read, besides its method, target,
    body and the rate-limit counters: the header fields (lowercase names) that authn
    blocks, conditions and limit keys look at, and whether anything reads the client IP.
    Two requests that agree on all of these get the same decision while it is reusable."""

    headers: tuple[str, ...] = ()  # sorted, so that a cache key is built in one order
    client_ip: bool = False


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
