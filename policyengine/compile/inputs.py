"""Which parts of a request the policy's decisions can read (a compile pass).

A decision reads the method, the target, the body, the rate-limit counters and
exactly the header fields and client address named here. The sidecar's decision
cache keys on them, so this list must be complete: the header fields of every
authn block, every `header.X` and `client_ip` in a condition, every limit key.
"""

from __future__ import annotations

from policyengine import ast
from policyengine.compile.contradictions import condition_of, walk
from policyengine.compile.state import CompileState
from policyengine.decision import DecisionInputs
from policyengine.hardening import FIELDS as OVERRIDE_FIELDS


def collect_inputs(state: CompileState) -> None:
    headers: set[str] = set(OVERRIDE_FIELDS)  # every decision reads them: refused if present
    # `Host` decides when the policy names hosts and for absolute-form targets; the sidecar
    # takes a trusted hop's `X-Forwarded-Host` for it (and the key then says who is trusted)
    headers.update(("host", "x-forwarded-host"))
    client_ip = False
    forwarded: set[str] = set()
    for authenticator in state.authenticators.values():
        headers.update(authenticator.headers)
        if authenticator.forwarded:
            forwarded.update(authenticator.headers)
    for flat in state.routes:
        for rule in flat.route.rules:
            condition = condition_of(rule)
            for expr in walk(condition) if condition is not None else ():
                if not isinstance(expr, ast.Ref):
                    continue
                if expr.root.value == "header" and expr.parts:
                    headers.add(expr.parts[0].key.lower())
                client_ip = client_ip or expr.root.value == "client_ip"
    for limit in state.counted():
        for key in limit.by:
            if key.kind is ast.LimitKeyKind.HEADER and key.arg is not None:
                headers.add(key.arg.lower())
            client_ip = client_ip or key.kind is ast.LimitKeyKind.CLIENT_IP
    if any(isinstance(r, ast.BodyRule) for flat in state.routes for r in flat.route.rules):
        headers.add("content-type")  # the body check reads it (such decisions are not reused)
    state.inputs = DecisionInputs(tuple(sorted(headers)), client_ip, tuple(sorted(forwarded)))
