"""Step 6 of a decision: the query, then the body, against the route's schemas.

The body check, in order: present (else `on_missing_body`), a JSON media type (415),
within `max` (413, measured before any parsing), strict JSON (400), the schema (400).
"""

from __future__ import annotations

import re
from enum import StrEnum

from policyengine.context import RequestContext
from policyengine.jsonbody import read_strict
from policyengine.request import InputError, InputRefused, Reason
from policyengine.schema import MAX_ERRORS
from policyengine.tree import CompiledRoute, InputSpec

_SUFFIXED = r"[a-z0-9][a-z0-9!#$&^_.-]*\+json"  # RFC 6838 structured syntax suffix
_USUAL_JSON = frozenset({"application/json", "application/json; charset=utf-8"})
Problem = tuple[int, Reason, str, tuple[InputError, ...]]


class MissingBody(StrEnum):
    """What a route with `body` does when no body reached the engine (`Request.body` is
    None), as behind a gateway that cannot forward one."""

    DENY = "deny"  # 400 input.invalid: nothing unchecked gets through
    SKIP = "skip"  # allow without checking the body; the rest of the decision still applies


def check_input(
    route: CompiledRoute, ctx: RequestContext, on_missing_body: MissingBody = MissingBody.DENY
) -> Problem | None:
    if route.query is not None:
        errors = route.query.validate(ctx.query)
        if errors:
            return 400, Reason.INPUT_INVALID, "query parameters are invalid", errors
    if route.body is None:
        return None
    if ctx.request.body is None:
        if on_missing_body == MissingBody.SKIP:
            return None
        return _invalid("no request body reached the policy engine", "a JSON body is required")
    return _check_body(route.body, ctx)


def _check_body(spec: InputSpec, ctx: RequestContext) -> Problem | None:
    body = ctx.request.body
    raw_body = isinstance(body, bytes | str)
    media_problem = _media_type_problem(ctx.header("content-type"), required=raw_body)
    if media_problem is not None:
        return 415, Reason.INPUT_UNSUPPORTED, media_problem, ()
    try:
        value = read_strict(body, spec.max_bytes)
    except InputRefused as refused:
        return refused.status, refused.reason, refused.message, refused.errors
    errors = spec.validate(value)
    if not errors:
        return None
    shown = f" (at most {MAX_ERRORS} violations are listed)" if len(errors) >= MAX_ERRORS else ""
    return (
        400,
        Reason.INPUT_INVALID,
        f"the body does not match schema `{spec.schema}`{shown}",
        errors,
    )


def _media_type_problem(content_type: str | None, *, required: bool) -> str | None:
    """None when the Content-Type is JSON: `application/json` or `application/*+json`,
    parameters allowed, charset (if any) UTF-8. A body handed over already parsed may
    come without one."""
    if content_type is None:
        return "Content-Type must be application/json" if required else None
    if content_type in _USUAL_JSON:
        return None
    media_type, *params = (part.strip().lower() for part in content_type.split(";"))
    kind, _, subtype = media_type.partition("/")
    if kind != "application" or not (subtype == "json" or re.fullmatch(_SUFFIXED, subtype)):
        return f"Content-Type must be application/json, not `{content_type[:64]}`"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return "a JSON body must be UTF-8"
    return None


def _invalid(message: str, detail: str) -> Problem:
    return 400, Reason.INPUT_INVALID, message, (InputError("", detail),)
