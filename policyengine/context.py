"""The per-request view that rules, conditions and authn read: computed lazily, once."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar, cast
from urllib.parse import parse_qs

from policyengine.jsonbody import read_strict
from policyengine.request import (
    Identity,
    InputRefused,
    LowercaseHeaders,
    Reason,
    Request,
    join_field,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Final: compiled, a constant is read from a C static, not looked up in the module
_UNSET: Final[Any] = object()
_FOREVER: Final = float("inf")
T = TypeVar("T")
_LOWERCASE: Final = LowercaseHeaders  # a Python class (a dict): its type check, no lookup
MAX_UNCHECKED_BODY: Final = 1024 * 1024  # what `body.x` conditions read on routes without `body`


def _find_field(headers: Mapping[str, str], lower_name: str) -> str | None:
    """One field of a mapping whose names may be in any case, joined like lower_headers
    joins them. Comparing lengths first skips lowercasing almost every other name."""
    found: str | None = None
    size = len(lower_name)
    for name, value in headers.items():
        if len(name) == size and name.lower() == lower_name:
            found = value if found is None else join_field(lower_name, found, value)
    return found


class FieldReader:
    """The header fields a policy's decisions read (DecisionInputs.headers), found in one
    pass over a mapping in any case, where each lookup would scan every name again: a
    name is lowercased only when some field is as long, and kept under that field's own
    string (its hash computed once, at compile time). Repeats are joined as _find_field
    joins them."""

    __slots__ = ("by_length", "names")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = frozenset(names)
        longest = max((len(name) for name in names), default=0)
        self.by_length = tuple(
            tuple(sorted(name for name in self.names if len(name) == size))
            for size in range(longest + 1)
        )

    def read(self, headers: Mapping[str, str]) -> dict[str, str | None]:
        """Those of `names` that `headers` holds, by lowercase name, in the order met."""
        # compiled, a dict is walked without an iterator object (faces pass dicts)
        plain = cast(dict[str, str], headers) if type(headers) is dict else dict(headers)
        by_length = self.by_length
        top = len(by_length)
        found: dict[str, str | None] = {}
        for name, value in plain.items():
            size = len(name)
            if size >= top:
                continue
            candidates = by_length[size]
            if not candidates:  # the common case: no field is as long, nothing lowercased
                continue
            lower = name.lower()
            for field in candidates:
                if lower == field:
                    count = len(found)
                    previous = found.setdefault(field, value)  # one lookup, not two
                    if len(found) == count and previous is not None:  # a repeat: joined
                        found[field] = join_field(field, previous, value)
                    break
        return found


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Names differing only in case are one field: joined with ", " (RFC 9110 §5.3), never
    one silently dropped (two Authorization headers must not pick a winner)."""
    if type(headers) is _LOWERCASE:
        return headers
    lowered = {name.lower(): value for name, value in headers.items()}
    if len(lowered) == len(headers):  # no two names differ only in case: the common case
        return lowered
    lowered = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = join_field(key, lowered[key], value) if key in lowered else value
    return lowered


class RequestContext:
    """One request being decided. Everything derived from it is computed at most once."""

    __slots__ = (
        "_body",
        "_body_limit",
        "_client_ip",
        "_derived",
        "_headers",
        "_looked_up",
        "_query",
        "_read",
        "captures",
        "identity",
        "method",
        "now",
        "raw_query",
        "request",
        "reuse_until",
        "route_label",
        "rule",
        "segments",
    )

    def __init__(
        self,
        request: Request,
        segments: tuple[str, ...],
        raw_query: str,
        now: float,
        captures: Sequence[Any] = (),
        route_label: str | None = None,
        body_limit: int = MAX_UNCHECKED_BODY,
        fields: dict[str, str | None] | None = None,
        read: frozenset[str] = frozenset(),
    ) -> None:
        self.request = request
        self.method = request.method
        self.segments = segments
        self.raw_query = raw_query
        self.now = now
        self.captures = captures  # the route's parameter values, in order
        self.route_label = route_label  # the matched route, as limit keys `by route` name it
        self._body_limit = body_limit  # its `body` schema's bound on what conditions read
        self.rule: str | None = None  # the allow rule that admitted the request (file:line)
        self.identity: Identity | None = request.identity
        # until when an identical request would be decided the same way: authn blocks
        # lower it to their caches' horizon; reading the body makes it 0 (not in a key)
        self.reuse_until = _FOREVER
        self._derived: dict[Callable[[RequestContext], Any], Any] | None = None
        self._headers: dict[str, str] | None = None
        # fields of a mapping in any case, by lowercase name: FieldReader.read found
        # every one of `read` it holds; others are looked up when first asked for
        self._looked_up = fields
        self._read = read
        self._query: dict[str, list[str]] | None = None
        self._body: Any = _UNSET
        self._client_ip: Any = _UNSET

    def derived(self, compute: Callable[[RequestContext], T]) -> T:
        """`compute(self)`, once per request however many authenticators ask (the bearer
        token of `Authorization` is parsed once, not once per authn block and step)."""
        derived = self._derived
        if derived is None:
            derived = self._derived = {}
        if compute not in derived:
            derived[compute] = compute(self)
        value: T = derived[compute]
        return value

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    @property
    def headers(self) -> dict[str, str]:
        """Header names lowercased (HTTP names are case-insensitive)."""
        if self._headers is None:
            self._headers = lower_headers(self.request.headers)
        return self._headers

    def header(self, lower_name: str) -> str | None:
        """The field value without the optional whitespace around it (RFC 9110 §5.5), so
        every face reads `key  ` as `key`, whatever its HTTP parser strips."""
        headers = self._headers
        if headers is not None:
            value = headers.get(lower_name)
        elif type(self.request.headers) is _LOWERCASE:
            headers = self._headers = self.request.headers
            value = headers.get(lower_name)
        else:  # a mapping in any case: find the one field rather than fold every name
            looked_up = self._looked_up
            if looked_up is None:
                looked_up = self._looked_up = {}
            if lower_name in looked_up:
                value = looked_up[lower_name]
            elif lower_name in self._read:  # read in one pass already: not there
                value = None
            else:
                value = looked_up[lower_name] = _find_field(self.request.headers, lower_name)
        return value.strip(" \t") if value is not None else None

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.raw_query, keep_blank_values=True) if self.raw_query else {}
        return self._query

    def query_value(self, name: str) -> str | None:
        """The parameter's value. Ambiguous input is refused, never guessed: a parameter
        repeated with different values (backends disagree on which wins: HTTP parameter
        pollution) or holding control characters (`full%00` is `full` to C backends)."""
        values = self.query.get(name)
        if not values:
            return None
        value = values[0]
        if len(values) > 1 and any(v != value for v in values):
            raise InputRefused(
                400,
                Reason.INPUT_INVALID,
                f"query parameter `{name}` is repeated with different values",
            )
        if not value.isprintable():
            raise InputRefused(
                400, Reason.INPUT_INVALID, f"query parameter `{name}` holds control characters"
            )
        return value

    def json_body(self) -> Any:
        """The body as JSON for conditions; None when no body arrived.

        A body that is present but cannot be read strictly (too large, not strict JSON)
        is refused rather than read as null: a lenient backend would still act on it,
        and a `deny when body.x == ...` must not be bypassed that way.
        """
        if self._body is _UNSET:
            self.reuse_until = 0.0
            self._body = self._read_body()
        return self._body

    def _read_body(self) -> Any:
        body = self.request.body
        if not isinstance(body, bytes | str):
            return body  # None, or a body the caller already parsed
        return read_strict(body, self._body_limit) if body else None

    @property
    def client_ip(self) -> IPAddress | None:
        if self._client_ip is _UNSET:
            try:
                raw = self.request.client_ip
                self._client_ip = ipaddress.ip_address(raw) if raw else None
            except ValueError:
                self._client_ip = None
        ip: IPAddress | None = self._client_ip
        return ip
