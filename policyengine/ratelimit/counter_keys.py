"""Which counter a request draws on: each rule's key.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from policyengine.context import RequestContext
from policyengine.jsonbody import value_at
from policyengine.ratelimit.algorithm import Rule

ABSENT = "\x00"  # no value; distinct from every value a request can carry

ValueOf = Callable[[RequestContext, Any], str]


@dataclass(frozen=True, slots=True)
class RuleKey:
    """How one rule's key is derived, with every part that is not the request's made once.

    The material hashed is the rule's name and kind (`seed`: a hash state fed them once,
    copied per request), then each value, length first, so that no two lists of values
    give the same material. `surrogatepass` encodes every str, lone surrogates included."""

    rule: Rule
    seed: Any  # hashlib's BLAKE2b state after repr((name, kind)): copied, never updated
    values: tuple[tuple[ValueOf, Any], ...]

    def key(self, ctx: RequestContext) -> bytes:
        digest = _copy(self.seed)
        for value_of, arg in self.values:
            data = value_of(ctx, arg).encode("utf-8", "surrogatepass")
            _update(digest, len(data).to_bytes(8, "big") + data)
        return bytes(_digest(digest))


# BLAKE2b's methods, taken from the class once: compiled, a call on the state then looks
# up no method by name (three lookups a key)
_copy: Final[Any] = hashlib.blake2b.copy
_update: Final[Any] = hashlib.blake2b.update
_digest: Final[Any] = hashlib.blake2b.digest


def rule_key_of(rule: Rule) -> RuleKey:
    seed = hashlib.blake2b(repr((rule.name, rule.kind.value)).encode(), digest_size=16)
    return RuleKey(rule, seed, tuple([(_VALUES[kind], _arg(kind, arg)) for kind, arg in rule.keys]))


def _arg(kind: str, arg: str | None) -> Any:
    """What a value function reads: a claim's path as its names, the rest as written."""
    return tuple((arg or "").split(".")) if kind == "claims" else arg


def limit_key(rule: Rule, ctx: RequestContext) -> bytes:
    return rule_key_of(rule).key(ctx)


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
    label = ctx.route_label
    return ABSENT if label is None else label


def _header(ctx: RequestContext, name: str | None) -> str:
    value = ctx.header(name or "")
    return ABSENT if value is None else "h" + value


def _claim(ctx: RequestContext, path: Any) -> str:
    """`path`: the claim's names, split once when the key was made (rule_key_of)."""
    value = value_at(ctx.identity.claims, path) if ctx.identity is not None else None
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
