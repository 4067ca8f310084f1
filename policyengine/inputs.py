"""Step 6 of a decision: the query, then the body, against the route's schemas."""

from __future__ import annotations

from policyengine.context import RequestContext
from policyengine.decision import InputError, Reason
from policyengine.jsonbody import InvalidJson, parse_json
from policyengine.tree import CompiledRoute

Problem = tuple[int, Reason, str, tuple[InputError, ...]]


def check_input(route: CompiledRoute, ctx: RequestContext) -> Problem | None:
    if route.query is not None:
        errors = route.query.validate(ctx.query)
        if errors:
            return 400, Reason.INPUT_INVALID, "query parameters are invalid", errors
    if route.body is None:
        return None
    body = ctx.request.body
    if body is None or body in (b"", ""):
        return 400, Reason.INPUT_INVALID, "a JSON body is required", ()
    if isinstance(body, bytes | str):
        size = len(body.encode("utf-8")) if isinstance(body, str) else len(body)
        if size > route.body.max_bytes:
            return (413, Reason.INPUT_TOO_LARGE,
                    f"body is larger than {route.body.max_bytes} bytes", ())
        try:
            value = parse_json(body)
        except InvalidJson as err:
            return 400, Reason.INPUT_INVALID, str(err), (InputError("", str(err)),)
    else:
        value = body
    errors = route.body.validate(value)
    if errors:
        return 400, Reason.INPUT_INVALID, f"body does not match schema `{route.body.schema}`", errors
    return None
