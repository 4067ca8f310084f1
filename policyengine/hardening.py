"""Request fields that make a backend serve another request than the one decided on.

Frameworks behind a gateway honour them: a method-override header or a `_method`
parameter turns an allowed GET or POST into a DELETE (Rails, Laravel, Symfony,
Express's method-override, ASP.NET's HttpMethodOverride); `X-Original-URL` and
`X-Rewrite-URL` make IIS, Symfony and Zend route by a path the gateway never matched
(the classic access-control bypass behind a path-based proxy). The engine decides on
the method and target it was given, so a request carrying any of them is refused
(400): what it was allowed to do would not be what it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote_plus

from policyengine.decision import LowercaseHeaders, Reason

METHOD_OVERRIDE_FIELDS = ("x-http-method-override", "x-http-method", "x-method-override")
URL_OVERRIDE_FIELDS = ("x-original-url", "x-rewrite-url")
# the cache keys on them (DecisionInputs): a request with one is never answered from
# the decision of one without
FIELDS = (*METHOD_OVERRIDE_FIELDS, *URL_OVERRIDE_FIELDS)
_FIELDS = frozenset(FIELDS)
_METHOD_FIELDS = frozenset(METHOD_OVERRIDE_FIELDS)
_LENGTHS = frozenset(len(name) for name in FIELDS)  # most names are lowercased never
METHOD_PARAMETER = "_method"


def override_refusal(headers: Mapping[str, str], raw_query: str) -> tuple[Reason, str] | None:
    """The reason and message when the request carries an override, else None. On every
    request: compiled, and a name is lowercased only when it could be one of them."""
    present = None
    if type(headers) is LowercaseHeaders:  # the sidecar's: five lookups
        for name in FIELDS:
            if name in headers:
                present = name
                break
    else:
        for name in headers:
            if len(name) in _LENGTHS and name[0] in "xX" and name.lower() in _FIELDS:
                present = name.lower()
                break
    if present is not None:
        if present in _METHOD_FIELDS:
            return Reason.METHOD_OVERRIDE, f"method override (`{present}`) is refused"
        return Reason.URL_OVERRIDE, f"URL override (`{present}`) is refused"
    if "method" in raw_query and _has_method_parameter(raw_query):  # `_method`, `%5Fmethod`
        return Reason.METHOD_OVERRIDE, "method override (`_method` parameter) is refused"
    return None


def _has_method_parameter(raw_query: str) -> bool:
    """`_method` as a parameter name, encoded or not (`%5Fmethod` decodes to it too)."""
    return any(
        unquote_plus(pair.partition("=")[0]) == METHOD_PARAMETER for pair in raw_query.split("&")
    )
