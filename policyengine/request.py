"""What goes into a decision: the Request every face builds, the Identity an authn block
establishes, and the vocabulary of refusals (Reason, InputRefused, InputError)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final


class Reason(StrEnum):
    """Stable dotted reason codes (LANGUAGE.md, "Decisions")."""

    ALLOW = "allow"
    BAD_PATH = "request.bad_path"
    BAD_REQUEST = "request.invalid"
    BAD_HOST = "request.bad_host"  # 400: no, two or a malformed `Host`; target and Host differ
    UNMATCHED = "route.unmatched"
    HOST_MISMATCH = "route.host_mismatch"  # 421: a host the policy does not serve
    AUTHN_MISSING = "authn.missing"
    AUTHN_INVALID = "authn.invalid"
    AUTHN_EXPIRED = "authn.expired"
    METHOD_OVERRIDE = "request.method_override"  # 400: X-HTTP-Method-Override, `_method`
    URL_OVERRIDE = "request.url_override"  # 400: X-Original-URL, X-Rewrite-URL
    AUTHN_AMBIGUOUS = "authn.ambiguous"  # 400: more than one credential, or one sent twice
    DENIED = "authz.denied"
    NO_ALLOW = "authz.no_allow"
    INSUFFICIENT_SCOPE = "authz.insufficient_scope"  # 403: a token without a needed scope
    RATE_LIMITED = "ratelimit.exceeded"
    RATE_LIMIT_UNAVAILABLE = "ratelimit.unavailable"  # 503: the shared store did not answer
    BANNED = "abuse.banned"  # 403: a `ban` holds, after repeated failures
    AUTHN_UNAVAILABLE = "authn.unavailable"  # 503: the identity provider did not answer
    INPUT_INVALID = "input.invalid"
    INPUT_TOO_LARGE = "input.too_large"
    INPUT_UNSUPPORTED = "input.unsupported_media_type"
    INTERNAL = "internal"


_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the caller is, as established by an authn block (or a test's `identity:`)."""

    subject: str
    roles: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=dict)
    authn: str | None = None  # name of the authn block that produced it
    credential_id: str | None = None  # a non-secret id of the credential (api key hash prefix)
    scopes: frozenset[str] = frozenset()  # OAuth2 scopes of a token (`scope` or `scp`)
    role_list: tuple[str, ...] = field(init=False, repr=False, compare=False)
    roles_header: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # computed once per identity, not once per decision (identities are cached)
        object.__setattr__(self, "role_list", tuple(sorted(self.roles)))
        object.__setattr__(self, "roles_header", ",".join(self.role_list))


class LowercaseHeaders(dict[str, str]):
    """Names already lowercased and repeated fields already joined, as the sidecar server
    builds them: a decision takes them as they are instead of redoing the work."""


def join_field(name: str, previous: str, value: str) -> str:
    """Combine a repeated field into one value (RFC 9110 §5.3; `cookie` with "; ", RFC 6265
    §5.4). Two `Authorization` lines joined this way read as two credentials: refused."""
    return f"{previous}{'; ' if name == 'cookie' else ', '}{value}"


def wire_headers(fields: Any) -> LowercaseHeaders:
    """Header fields as (name, value) pairs, repeats included, -> what the sidecar builds
    from the same fields on the wire. Bytes are read as Latin-1, as the sidecar reads them."""
    headers = LowercaseHeaders()
    try:
        pairs = list(fields)
    except TypeError:
        raise TypeError(_HEADERS_TYPE) from None
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(_HEADERS_TYPE)
        name = _field_text(pair[0]).lower()
        value = _field_text(pair[1])
        previous = headers.get(name)
        headers[name] = value if previous is None else join_field(name, previous, value)
    return headers


def _field_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, bytes):
        return part.decode("latin-1")
    raise TypeError(_HEADERS_TYPE)


_HEADERS_TYPE = "Request headers must be a mapping of str to str or (name, value) pairs"


def _checked_mapping(headers: Mapping[Any, Any]) -> Mapping[str, str]:
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(_HEADERS_TYPE)
    return headers


def request_headers(headers: Any) -> Mapping[str, str]:
    """Whatever `Request(headers=)` was given -> a mapping the decision can read, or a
    TypeError now (never a 500 when the decision reads it). The sidecar's own type and an
    empty default pass without a look."""
    kind = type(headers)
    if kind is LowercaseHeaders or headers is _NO_HEADERS:
        return headers  # type: ignore[no-any-return]
    if kind is dict or isinstance(headers, Mapping):
        return _checked_mapping(headers)
    if isinstance(headers, str | bytes):
        raise TypeError(_HEADERS_TYPE)
    return wire_headers(headers)


def without_forwarded(request: Request, forwarded: tuple[str, ...]) -> Request:
    """`request` as it is decided when it came from a peer that is no trusted proxy:
    without the fields only such a proxy may set (`DecisionInputs.forwarded`, the
    client certificate a gateway verified), so a client cannot name itself. The
    sidecar does this for every peer outside `--trusted-proxy`; an in-process caller
    holding a request straight from a client does the same."""
    if not forwarded:
        return request
    headers = request.headers
    if not any(name.lower() in forwarded for name in headers):
        return request
    kept = {name: value for name, value in headers.items() if name.lower() not in forwarded}
    if type(headers) is LowercaseHeaders:
        kept = LowercaseHeaders(kept)
    return Request(
        request.method, request.path, kept, request.body, request.client_ip, request.identity
    )


class Request:
    """A request to decide on.

    `path` is the raw request target (path and optional query). `headers` is a mapping
    (names matched case-insensitively; names differing only in case are one repeated
    field) or an iterable of (name, value) pairs as on the wire, repeats joined as the
    sidecar joins them (RFC 9110 §5.3); anything else raises TypeError here. `body` is
    raw bytes/str, or an already-parsed JSON value. `identity` bypasses authentication:
    it exists for policy tests and trusted in-process callers, and no server face ever
    sets it from request data.

    A plain class compiled by mypyc: built without running interpreted code, cheaper
    than a NamedTuple (whose __new__ is Python) even with the check of `headers`.
    """

    __slots__ = ("body", "client_ip", "headers", "identity", "method", "path")

    def __init__(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] = _NO_HEADERS,
        body: bytes | str | Any | None = None,
        client_ip: str | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.method: Final = method
        self.path: Final = path
        self.headers: Final[Mapping[str, str]] = request_headers(headers)
        self.body: Final = body
        self.client_ip: Final = client_ip
        self.identity: Final = identity

    def _fields(self) -> tuple[Any, ...]:
        return (self.method, self.path, self.headers, self.body, self.client_ip, self.identity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Request) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.method, self.path, self.client_ip))

    def __repr__(self) -> str:
        return (
            f"Request(method={self.method!r}, path={self.path!r}, headers={self.headers!r}, "
            f"body={self.body!r}, client_ip={self.client_ip!r}, identity={self.identity!r})"
        )


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
