"""Request fields that make a backend serve another request than the one decided on.

Frameworks behind a gateway honour them: a method-override header or a `_method`
parameter turns an allowed GET or POST into a DELETE (Rails, Laravel, Symfony,
Express's method-override, ASP.NET's HttpMethodOverride); `X-Original-URL` and
`X-Rewrite-URL` make IIS, Symfony and Zend route by a path the gateway never matched
(the classic access-control bypass behind a path-based proxy). The engine decides on
the method and target it was given, so a request carrying any of them is refused
(400): what it was allowed to do would not be what it does.

A set that really needs one of these (a client behind a proxy that only speaks GET and
POST) says `permit method_override`: the engine then decides on the overridden method,
which is what the framework will run. The path checks have their own opt-outs
(`double_encoding`, `unicode_separators`), applied where paths are normalized.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, cast
from urllib.parse import unquote_plus

from policyengine.request import LowercaseHeaders, Reason

METHOD_OVERRIDE_FIELDS = ("x-http-method-override", "x-http-method", "x-method-override")
URL_OVERRIDE_FIELDS = ("x-original-url", "x-rewrite-url")
# the cache keys on them (DecisionInputs): a request with one is never answered from
# the decision of one without
FIELDS: Final = (*METHOD_OVERRIDE_FIELDS, *URL_OVERRIDE_FIELDS)
_FIELDS: Final = frozenset(FIELDS)
_METHOD_FIELDS: Final = frozenset(METHOD_OVERRIDE_FIELDS)
# most names are lowercased never: not one of the lengths, or not starting with `x`
_SHORTEST: Final = min(len(name) for name in FIELDS)
_LONGEST: Final = max(len(name) for name in FIELDS)
METHOD_PARAMETER = "_method"
_LOWERCASE: Final = LowercaseHeaders  # compiled, a C static: no lookup by name
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: what a method is


class Permission(Enum):
    """What `permit` may name: each relaxes one default refusal for the whole set."""

    METHOD_OVERRIDE = "method_override"  # decide on the overridden method instead
    DOUBLE_ENCODING = "double_encoding"  # `%252e`: kept literal, as `%2e` text
    UNICODE_SEPARATORS = "unicode_separators"  # NFKC lookalikes of `.` `/` `\`


@dataclass(frozen=True, slots=True)
class Hardening:
    """The set's opt-outs, compiled from its `permit` statements."""

    method_override: bool = False
    double_encoding: bool = False
    unicode_separators: bool = False

    @staticmethod
    def of(permissions: frozenset[Permission]) -> Hardening:
        return Hardening(
            method_override=Permission.METHOD_OVERRIDE in permissions,
            double_encoding=Permission.DOUBLE_ENCODING in permissions,
            unicode_separators=Permission.UNICODE_SEPARATORS in permissions,
        )


STRICT = Hardening()


def override_refusal(headers: Mapping[str, object], raw_query: str) -> tuple[Reason, str] | None:
    """The reason and message when the request carries an override, else None. On every
    request: compiled, and a name is lowercased only when it could be one of them."""
    present = _override_field(headers)
    if present is not None:
        if present in _METHOD_FIELDS:
            return Reason.METHOD_OVERRIDE, f"method override (`{present}`) is refused"
        return Reason.URL_OVERRIDE, f"URL override (`{present}`) is refused"
    if "method" in raw_query and _has_method_parameter(raw_query):  # `_method`, `%5Fmethod`
        return Reason.METHOD_OVERRIDE, "method override (`_method` parameter) is refused"
    return None


def overridden_method(
    headers: Mapping[str, str], raw_query: str
) -> tuple[str | None, tuple[Reason, str] | None]:
    """Under `permit method_override`: (the method the framework will run, None), or
    (None, None) without an override, or (None, refusal). URL overrides stay refused;
    an override that is not a method, or several that disagree, are refused: the engine
    cannot know which one the framework picks."""
    if _override_field(headers) is None and "method" not in raw_query:
        return None, None
    wanted: set[str] = set()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _METHOD_FIELDS:
            wanted.add(value.strip())
        elif lowered in _FIELDS:
            return None, (Reason.URL_OVERRIDE, f"URL override (`{lowered}`) is refused")
    for pair in raw_query.split("&") if "method" in raw_query else ():
        name, _, value = pair.partition("=")
        if unquote_plus(name) == METHOD_PARAMETER:
            wanted.add(unquote_plus(value).strip())
    if not wanted:
        return None, None
    methods = {method.upper() for method in wanted}  # frameworks upcase the override
    if len(methods) > 1:
        return None, (Reason.METHOD_OVERRIDE, "method overrides that disagree are refused")
    method = methods.pop()
    if not _TOKEN.fullmatch(method):
        return None, (Reason.METHOD_OVERRIDE, "a method override that is not a method")
    return method, None


def _override_field(headers: Mapping[str, object]) -> str | None:
    """The lowercased name of the first override field present, else None."""
    if type(headers) is _LOWERCASE:  # the sidecar's: five lookups
        for name in FIELDS:
            if name in headers:
                return name
        return None
    if type(headers) is dict:  # compiled, a dict is walked without an iterator object
        for name in cast(dict[str, object], headers):
            if _could_be_one(name):
                return name.lower()
        return None
    for name in headers:
        if _could_be_one(name):
            return name.lower()
    return None


def _could_be_one(name: str) -> bool:
    return _SHORTEST <= len(name) <= _LONGEST and name[0] in "xX" and name.lower() in _FIELDS


def _has_method_parameter(raw_query: str) -> bool:
    """`_method` as a parameter name, encoded or not (`%5Fmethod` decodes to it too)."""
    return any(
        unquote_plus(pair.partition("=")[0]) == METHOD_PARAMETER for pair in raw_query.split("&")
    )
