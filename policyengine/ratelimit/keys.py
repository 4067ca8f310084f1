"""Which counter a request draws on: the rules of a route and each rule's key.

A key is a 16-byte BLAKE2b digest of the limit's name and kind and the request's values
for the limit's `by` keys, so every limit has its own key space, a key has a fixed size
whatever a client sends, and no credential or header value is ever stored (in memory or
in Redis) in the clear. A value the request does not have (no such header, no claim, no
client IP) is a value of its own: such requests share one counter rather than going
unlimited.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from policyengine.context import RequestContext
from policyengine.ratelimit.algorithm import Rule, rule_of
from policyengine.tree import LimitSpec

ABSENT = "\x00"  # no value; distinct from every value a request can carry
_RULES: dict[int, tuple[tuple[LimitSpec, ...], tuple[Rule, ...]]] = {}


def rules_of(limits: tuple[LimitSpec, ...]) -> tuple[Rule, ...]:
    """The route's limits as rules, each name once (a limit named twice counts once)."""
    cached = _RULES.get(id(limits))
    if cached is not None and cached[0] is limits:
        return cached[1]
    unique: dict[str, Rule] = {}
    for spec in limits:
        unique.setdefault(spec.name, rule_of(spec))
    rules = tuple(unique.values())
    if len(_RULES) >= 4096:  # routes of policies that reloads have since replaced
        _RULES.clear()
    _RULES[id(limits)] = (limits, rules)  # holding `limits` keeps its id from being reused
    return rules


def limit_key(rule: Rule, ctx: RequestContext) -> bytes:
    values = tuple([_VALUES[kind](ctx, arg) for kind, arg in rule.keys])
    # repr of a tuple of strings is unambiguous, and escapes what UTF-8 cannot encode
    material = repr((rule.name, rule.kind.value, values)).encode()
    return hashlib.blake2b(material, digest_size=16).digest()


def _subject(ctx: RequestContext, _: str | None) -> str:
    """The subject, or for an anonymous caller its client IP (tagged: never a subject)."""
    if ctx.identity is not None:
        return "s" + ctx.identity.subject
    return "a" + _client_ip(ctx, None)


def _client_ip(ctx: RequestContext, _: str | None) -> str:
    ip = ctx.client_ip
    return ABSENT if ip is None else ip.compressed


def _api_key(ctx: RequestContext, _: str | None) -> str:
    identity = ctx.identity
    if identity is None or identity.credential_id is None:
        return ABSENT
    return "k" + identity.credential_id


def _route(ctx: RequestContext, _: str | None) -> str:
    return ABSENT if ctx.route is None else ctx.route.label


def _header(ctx: RequestContext, name: str | None) -> str:
    value = ctx.header(name or "")
    return ABSENT if value is None else "h" + value


def _claim(ctx: RequestContext, path: str | None) -> str:
    value: Any = ctx.identity.claims if ctx.identity is not None else None
    for step in (path or "").split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    if value is None:
        return ABSENT
    return "c" + json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


_VALUES: dict[str, Callable[[RequestContext, str | None], str]] = {
    "subject": _subject,
    "client_ip": _client_ip,
    "api_key": _api_key,
    "route": _route,
    "header": _header,
    "claims": _claim,
}
