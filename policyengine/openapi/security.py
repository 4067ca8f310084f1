"""`securitySchemes` as authn blocks, and an operation's security as allow rules.

apiKey (header or query) is `authn api_key` with an empty keys file; http bearer,
oauth2 and openIdConnect are `authn jwt` with placeholders (`.invalid` names nothing,
RFC 6761) for the author to fill in. A scheme with no authn kind (http basic, cookies,
mutualTLS) grants nothing: an operation that only it secures allows no one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from policyengine.openapi.operations import Operation
from policyengine.openapi.query import policy_string
from policyengine.openapi.spec import Spec

KEYS_FILE = "keys.yaml"
_SCOPE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
_DISCOVERY = "/.well-known/openid-configuration"


@dataclass(frozen=True, slots=True)
class AuthnPlan:
    scheme: str  # its name in the spec
    block: str  # its authn block's name
    kind: str  # api_key or jwt
    lines: tuple[str, ...]  # the block, comments before it included
    query_param: str | None = None  # an API key sent in the query: a field of query schemas


@dataclass(frozen=True, slots=True)
class Access:
    rules: tuple[str, ...]  # `allow ...` lines
    require: tuple[str, ...]  # authn block names for `require authn`, () for all blocks
    notes: tuple[str, ...]


def plan_authn(spec: Spec, names: dict[str, str]) -> dict[str, AuthnPlan]:
    """One plan per scheme the engine can verify; `names` maps scheme to block names."""
    schemes = (spec.doc.get("components") or {}).get("securitySchemes") or {}
    plans: dict[str, AuthnPlan] = {}
    for scheme, raw in schemes.items():
        lines = _block(str(scheme), names[scheme], spec.resolve(raw))
        if lines is not None:
            resolved = spec.resolve(raw)
            in_query = lines[-1] == "api_key" and resolved.get("in") == "query"
            plans[scheme] = AuthnPlan(
                str(scheme),
                names[scheme],
                lines[-1],
                lines[:-1],
                str(resolved["name"]) if in_query else None,
            )
    return plans


def _block(scheme: str, name: str, raw: dict[str, Any]) -> tuple[str, ...] | None:
    kind = raw.get("type")
    if kind == "apiKey" and raw.get("in") in ("header", "query"):
        where = "header" if raw["in"] == "header" else "query"
        return (
            f"# {scheme}: API key in the {where} `{raw['name']}`",
            f"# TODO: add keys with `policyengine keys add --subject NAME >> {KEYS_FILE}`",
            f"authn api_key {name} {{",
            f"    {where} {policy_string(str(raw['name']))}",
            f'    keys file "{KEYS_FILE}"',
            "}",
            "api_key",
        )
    if kind == "http" and str(raw.get("scheme", "")).lower() == "bearer":
        return _jwt(scheme, name, "HTTP bearer token", None)
    if kind == "oauth2":
        flows = ", ".join(sorted(raw.get("flows") or {}))
        return _jwt(scheme, name, f"OAuth2 ({flows})", None)
    if kind == "openIdConnect":
        url = str(raw.get("openIdConnectUrl", ""))
        issuer = url[: -len(_DISCOVERY)] if url.endswith(_DISCOVERY) else None
        return _jwt(scheme, name, f"OpenID Connect ({url})", issuer)
    return None


def _jwt(scheme: str, name: str, what: str, issuer: str | None) -> tuple[str, ...]:
    placeholder = f"https://{name.replace('_', '-').lower()}.issuer.example.invalid"
    return (
        f"# {scheme}: {what}, verified here as JWTs",
        "# TODO: the IdP's issuer, this API's audience, its algorithms and its keys; opaque",
        "# tokens need `authn introspect` instead (README, Authentication)",
        f"authn jwt {name} {{",
        f"    issuer {policy_string(issuer or placeholder)}",
        '    audience "TODO-audience"',
        "    algorithms RS256",
        f'    jwks url "{issuer or placeholder}/.well-known/jwks.json"',
        "}",
        "jwt",
    )


def plan_access(op: Operation, plans: dict[str, AuthnPlan], all_blocks: int) -> Access:
    """The allow rules for an operation's security requirements (any one suffices)."""
    if op.anonymous:
        note = () if not op.security else ("the spec makes authentication optional here",)
        return Access(("allow anyone",), (), note)
    notes: list[str] = []
    alternatives: list[tuple[str, tuple[str, ...]]] = []
    for requirement in op.security:
        if len(requirement) > 1:
            names = " and ".join(f"`{s}`" for s, _ in requirement)
            notes.append(f"the spec wants {names} together; one credential per request here")
            continue
        scheme, scopes = requirement[0]
        plan = plans.get(scheme)
        if plan is None:
            notes.append(f"scheme `{scheme}` has no authn kind here; it grants nothing")
            continue
        if scopes and plan.kind != "jwt":
            notes.append(f"`{scheme}` lists roles {', '.join(scopes)}: declare and allow them")
            scopes = ()
        bad = [s for s in scopes if not _SCOPE.match(s)]
        if bad:
            notes.append(f"scopes {', '.join(bad)} are no OAuth2 scope-tokens; left out")
        alternatives.append((plan.block, tuple(s for s in scopes if _SCOPE.match(s))))
    blocks = tuple(dict.fromkeys(block for block, _ in alternatives))
    rules = tuple(
        dict.fromkeys(_rule(block, scopes, len(blocks) > 1) for block, scopes in alternatives)
    )
    if not rules:
        notes.append("no requirement can be met: this route allows no one")
    require = blocks if blocks and len(blocks) < all_blocks else ()
    return Access(rules, require, tuple(notes))


def _rule(block: str, scopes: tuple[str, ...], several: bool) -> str:
    head = "allow " + (
        f"scope {', '.join(policy_string(s) for s in scopes)}" if scopes else "authenticated"
    )
    # with several blocks on a route, each requirement holds for its own block only
    return f'{head} when authn == "{block}"' if several else head
