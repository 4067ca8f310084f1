"""Claims of a verified token (JWT payload or introspection answer): checks and mapping.

Both token blocks validate `iss`, `aud`, `exp`, `nbf`, `iat` and required claims the
same way, against the request's `now`, and turn claims into an Identity the same way:
a subject claim, the OAuth2 scopes (scopes.py), a roles claim (an array, or with
`string` a space-separated string), and an optional map from IdP group names to policy
roles. A roles claim of another type than declared is refused, never coerced: an IdP
attribute that a user can set to the string "admin" must not become the role `admin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from policyengine.authn.base import AuthnBuildContext
from policyengine.authn.scopes import token_scopes
from policyengine.authn.settings import SettingsReader
from policyengine.errors import one_of
from policyengine.jsonbody import value_at_dotted
from policyengine.numbers import is_number
from policyengine.request import Identity, Reason

MAX_LEEWAY = 300.0
CLAIM_SETTINGS = {"issuer", "audience", "leeway", "required_claims", "subject", "roles"}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why verified claims are still not accepted; the message is shown to the client."""

    reason: Reason
    message: str


@dataclass(frozen=True, slots=True)
class ClaimRules:
    issuer: str | None
    audiences: frozenset[str] | None
    leeway: float
    required: tuple[str, ...]
    require_exp: bool

    def check(self, claims: Mapping[str, Any], now: float) -> Rejection | None:
        return (
            self._check_times(claims, now)
            or self._check_issuer(claims)
            or self._check_audience(claims)
            or self._check_required(claims)
        )

    def _check_times(self, claims: Mapping[str, Any], now: float) -> Rejection | None:
        for name in ("exp", "nbf", "iat"):
            if name in claims and not _is_numeric_date(claims[name]):
                return Rejection(Reason.AUTHN_INVALID, f"token claim `{name}` is not a number")
        if "exp" not in claims and self.require_exp:
            return Rejection(Reason.AUTHN_INVALID, "token has no expiry (`exp`)")
        if "exp" in claims and now >= claims["exp"] + self.leeway:
            return Rejection(Reason.AUTHN_EXPIRED, "token expired")
        if "nbf" in claims and claims["nbf"] > now + self.leeway:
            return Rejection(Reason.AUTHN_INVALID, "token not valid yet (`nbf`)")
        if "iat" in claims and claims["iat"] > now + self.leeway:
            return Rejection(Reason.AUTHN_INVALID, "token issued in the future (`iat`)")
        return None

    def _check_issuer(self, claims: Mapping[str, Any]) -> Rejection | None:
        if self.issuer is not None and claims.get("iss") != self.issuer:
            return Rejection(Reason.AUTHN_INVALID, "token issuer is not accepted")
        return None

    def _check_audience(self, claims: Mapping[str, Any]) -> Rejection | None:
        if self.audiences is None:
            return None
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in self.audiences for a in given):
            return Rejection(Reason.AUTHN_INVALID, "token audience is not accepted")
        return None

    def _check_required(self, claims: Mapping[str, Any]) -> Rejection | None:
        for name in self.required:
            if value_at_dotted(claims, name) is None:
                return Rejection(Reason.AUTHN_INVALID, f"token lacks claim `{name}`")
        return None

    def expiry(self, claims: Mapping[str, Any]) -> float | None:
        """When checked claims stop being acceptable (for caches); None: no `exp`."""
        exp = claims.get("exp")
        return float(exp) if _is_numeric_date(exp) else None


@dataclass(frozen=True, slots=True)
class ClaimMapping:
    subject: str
    roles: str | None
    role_map: Mapping[str, str] | None
    known_roles: frozenset[str]
    roles_in_string: bool = False  # `roles claim "..." string`: space-separated names

    def identity(self, claims: Mapping[str, Any], block: str) -> Identity | Rejection:
        subject = value_at_dotted(claims, self.subject)
        if not isinstance(subject, str) or not subject:
            return Rejection(Reason.AUTHN_INVALID, f"token has no subject claim `{self.subject}`")
        names = self._role_names(claims)
        if names is None:
            kind = "a string" if self.roles_in_string else "an array of strings"
            return Rejection(Reason.AUTHN_INVALID, f"token claim `{self.roles}` is not {kind}")
        scopes = token_scopes(claims)
        if isinstance(scopes, str):
            return Rejection(Reason.AUTHN_INVALID, scopes)
        return Identity(subject, self._policy_roles(names), claims, block, scopes=scopes)

    def _role_names(self, claims: Mapping[str, Any]) -> list[str] | None:
        if self.roles is None:
            return []
        value = value_at_dotted(claims, self.roles)
        if value is None:
            return []
        if self.roles_in_string:
            return value.split(" ") if isinstance(value, str) else None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None

    def _policy_roles(self, names: list[str]) -> frozenset[str]:
        """Mapped names when a map is given (only those count); else the declared ones."""
        if self.role_map is not None:
            return frozenset(self.role_map[n] for n in names if n in self.role_map)
        return frozenset(n for n in names if n in self.known_roles)


# Beyond any real NumericDate and still exact as a float: `exp + leeway` cannot overflow.
_MAX_TIME = 2**53


def _is_numeric_date(value: Any) -> TypeGuard[int | float]:
    """A usable NumericDate: a finite number of sane size (NaN, infinities, 400-digit
    integers are refused: a token that never expires is not a token we accept)."""
    return is_number(value) and -_MAX_TIME < value < _MAX_TIME  # false for NaN, infinities


# -- reading the settings -------------------------------------------------------------------


def read_claim_rules(settings: SettingsReader, *, require_exp: bool) -> ClaimRules:
    audiences = settings.strings("audience")
    leeway = settings.duration("leeway") or 0.0
    if leeway > MAX_LEEWAY:
        settings.diags.error(
            "compile/bad-setting",
            "`leeway` is at most 5m",
            settings.span("leeway"),
            "a long leeway keeps expired tokens working",
        )
    return ClaimRules(
        issuer=settings.string("issuer"),
        audiences=frozenset(audiences) if audiences is not None else None,
        leeway=leeway,
        required=tuple(settings.strings("required_claims") or ()),
        require_exp=require_exp,
    )


def read_claim_mapping(settings: SettingsReader, bc: AuthnBuildContext) -> ClaimMapping:
    subject = settings.claim_path("subject") if settings.has("subject") else "sub"
    typed = settings.typed_claim_path("roles", ("array", "string"))
    roles = typed[0] if typed is not None else None
    entries = settings.mapping("roles")
    role_map: dict[str, str] | None = None
    if entries is not None:
        if not settings.by_key["roles"].groups:
            settings.diags.error(
                "compile/missing-setting",
                '`roles map` needs `roles claim "..."` to read names from',
                settings.span("roles"),
            )
        role_map = {}
        for entry in entries:
            if entry.key in role_map:
                settings.diags.error(
                    "compile/duplicate-setting", f"`{entry.key}` is mapped twice", entry.span
                )
            if entry.value.value not in bc.known_roles:
                settings.diags.error(
                    "compile/unknown-role",
                    f"unknown role `{entry.value.value}`",
                    entry.value.span,
                    f"roles are {one_of(bc.known_roles)}",
                )
            role_map[entry.key] = entry.value.value
    if typed is not None and typed == ("scope", None):
        settings.diags.error(
            "compile/bad-setting",
            "`scope` is a space-separated string, not an array",
            settings.span("roles"),
            'write `roles claim "scope" string` (RFC 9068 §2.2.3), or use `allow scope`',
        )
    in_string = typed is not None and typed[1] == "string"
    return ClaimMapping(subject or "sub", roles, role_map, bc.known_roles, in_string)
