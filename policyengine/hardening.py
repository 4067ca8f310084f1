"""Request fields that make a backend serve another request than the one decided on.

Frameworks behind a gateway honour them: a method-override header or a `_method`
parameter turns an allowed GET or POST into a DELETE (Rails, Laravel, Symfony,
Express's method-override, ASP.NET's HttpMethodOverride); `X-Original-URL` and
`X-Rewrite-URL` make IIS, Symfony and Zend route by a path the gateway never matched
(the classic access-control bypass behind a path-based proxy). The engine decides on
the method and target it was given, so a request carrying any of them is refused
(400): what it was allowed to do would not be what it does.

The opt-out, for an API whose clients cannot send PUT or DELETE: a policy names the one
field its backend honours (`allow method_override "X-HTTP-Method-Override"`, or
`"_method"`). A POST carrying that field is then decided on the method it names, as
the backend will serve it; the field on another method, a value that is no method, or
any other override field is still refused.
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
HONOURABLE = (*METHOD_OVERRIDE_FIELDS, METHOD_PARAMETER)  # what `allow method_override` names
# what an honoured override may name: RFC 9110 §9 methods and PATCH (RFC 5789); never
# CONNECT or TRACE, which no API tunnels through a POST
_OVERRIDABLE = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def decided_method(
    method: str, headers: Mapping[str, str], raw_query: str, honoured: str | None
) -> str | tuple[Reason, str]:
    """The method to decide on, or the reason and message of a refusal. `honoured`: the
    override field the policy allows (lowercase), or None."""
    refused = override_refusal(headers, raw_query, honoured)
    if refused is not None:
        return refused
    if honoured is None:
        return method
    if honoured == METHOD_PARAMETER:
        values = _parameter_values(raw_query)
        value = values[0] if len(values) == 1 else None
        if len(values) > 1:
            return Reason.METHOD_OVERRIDE, "`_method` parameter given twice"
    else:
        value = _field(headers, honoured)
    if value is None:
        return method
    if method != "POST":
        return Reason.METHOD_OVERRIDE, f"method override (`{honoured}`) on a {method}: POST only"
    if value not in _OVERRIDABLE:
        return Reason.METHOD_OVERRIDE, f"method override (`{honoured}`) names no method"
    return value


def _field(headers: Mapping[str, str], name: str) -> str | None:
    if type(headers) is LowercaseHeaders:
        return headers.get(name)
    found = [value for key, value in headers.items() if key.lower() == name]
    return ", ".join(found) if found else None  # two fields: no method, refused


def _parameter_values(raw_query: str) -> list[str]:
    return [
        unquote_plus(pair.partition("=")[2])
        for pair in raw_query.split("&")
        if unquote_plus(pair.partition("=")[0]) == METHOD_PARAMETER
    ]


def override_refusal(
    headers: Mapping[str, str], raw_query: str, honoured: str | None = None
) -> tuple[Reason, str] | None:
    """The reason and message when the request carries an override, else None. On every
    request: compiled, and a name is lowercased only when it could be one of them."""
    present = None
    if type(headers) is LowercaseHeaders:  # the sidecar's: five lookups
        for name in FIELDS:
            if name in headers and name != honoured:
                present = name
                break
    else:
        for name in headers:
            if len(name) in _LENGTHS and name[0] in "xX" and name.lower() in _FIELDS:
                lowered = name.lower()
                if lowered != honoured:
                    present = lowered
                    break
    if present is not None:
        if present in _METHOD_FIELDS:
            return Reason.METHOD_OVERRIDE, f"method override (`{present}`) is refused"
        return Reason.URL_OVERRIDE, f"URL override (`{present}`) is refused"
    if honoured != METHOD_PARAMETER and "method" in raw_query and _has_method_parameter(raw_query):
        # `_method`, `%5Fmethod`
        return Reason.METHOD_OVERRIDE, "method override (`_method` parameter) is refused"
    return None


def _has_method_parameter(raw_query: str) -> bool:
    """`_method` as a parameter name, encoded or not (`%5Fmethod` decodes to it too)."""
    return any(
        unquote_plus(pair.partition("=")[0]) == METHOD_PARAMETER for pair in raw_query.split("&")
    )
