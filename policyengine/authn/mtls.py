"""`authn mtls`: the client certificate a gateway verified, as a service's identity.

The gateway terminates mTLS and forwards what it verified in a header; the header is
believed only from a `--trusted-proxy` peer (the server drops it from any other, see
`DecisionInputs.forwarded`), so a client cannot name itself. The subject is the
certificate's SAN URI (a SPIFFE ID), DNS name or CN; roles come from a map of
subjects, in the policy or a YAML file.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import yaml

from policyengine import ast
from policyengine.authn.base import Authenticator, AuthnBuildContext, AuthnFailure
from policyengine.authn.client_cert import CertFields, CertFormat, CertHeaderError, read
from policyengine.authn.settings import SettingsReader
from policyengine.context import RequestContext
from policyengine.decision import Identity, Reason
from policyengine.errors import one_of
from policyengine.source import Span
from policyengine.yamldata import load_yaml

SUBJECTS = ("uri", "dns", "cn")
DEFAULT_HEADER = {CertFormat.XFCC: "X-Forwarded-Client-Cert"}
PARSED_KEPT = 4096  # parsed header values per block: services call again and again


class MtlsAuthenticator(Authenticator):
    def __init__(
        self,
        name: str,
        header: str,
        form: CertFormat,
        subject: str,
        roles: dict[str, frozenset[str]],
    ) -> None:
        super().__init__(name)
        self.header = header.lower()
        self.form = form
        self.subject = subject
        self.roles = roles
        self._identity = functools.lru_cache(maxsize=PARSED_KEPT)(self._read)

    @property
    def headers(self) -> tuple[str, ...]:
        return (self.header,)

    @property
    def forwarded(self) -> bool:
        return True

    def presented(self, ctx: RequestContext) -> bool:
        return ctx.header(self.header) is not None

    def authenticate(self, ctx: RequestContext) -> Identity:
        value = ctx.header(self.header) or ""
        found = self._identity(value)
        if isinstance(found, str):
            raise AuthnFailure(Reason.AUTHN_INVALID, found)
        identity, not_after = found
        if not_after is not None:
            if ctx.now >= not_after:
                raise AuthnFailure(Reason.AUTHN_EXPIRED, "client certificate expired")
            ctx.reuse_until = min(ctx.reuse_until, not_after)
        return identity

    def _read(self, value: str) -> tuple[Identity, float | None] | str:
        """The identity of one header value, or why there is none (a message)."""
        try:
            fields = read(value, self.form)
            subject = _subject(fields, self.subject)
        except CertHeaderError as err:
            return str(err)
        claims = {"uri": list(fields.uris), "dns": list(fields.dns), "cn": fields.cn}
        roles = self.roles.get(subject, frozenset())
        credential = fields.sha256[:16] if fields.sha256 else None
        return Identity(subject, roles, claims, self.name, credential), fields.not_after


def _subject(fields: CertFields, kind: str) -> str:
    if kind == "uri":
        if len(fields.uris) != 1:  # SPIFFE: exactly one URI SAN
            many = "more than one URI SAN" if fields.uris else "no URI SAN"
            raise CertHeaderError(f"the client certificate has {many}")
        return fields.uris[0]
    if kind == "dns":
        if not fields.dns:
            raise CertHeaderError("the client certificate has no DNS SAN")
        return fields.dns[0]
    if not fields.cn:
        raise CertHeaderError("the client certificate has no CN")
    return fields.cn


def build_mtls(block: ast.AuthnBlock, bc: AuthnBuildContext) -> MtlsAuthenticator | None:
    settings = SettingsReader(
        block, {"header", "format", "subject", "roles"}, bc.diags, frozenset({"roles"})
    )
    form = _choice(settings, "format", [f.value for f in CertFormat], CertFormat.XFCC.value)
    subject = _choice(settings, "subject", list(SUBJECTS), "uri")
    header = settings.string("header")
    if header is None and form is not None:
        header = DEFAULT_HEADER.get(CertFormat(form))
        if header is None and not settings.has("header"):
            bc.diags.error(
                "compile/missing-setting",
                f"`authn mtls` with `format {form}` needs `header`",
                block.kind.span,
                "the header the gateway fills from the client certificate, like "
                '`header "X-Client-Cert"`',
            )
    roles = _roles(settings, bc)
    if form is None or subject is None or header is None or roles is None:
        return None
    return MtlsAuthenticator(block.label, header, CertFormat(form), subject, roles)


def _choice(settings: SettingsReader, key: str, choices: list[str], default: str) -> str | None:
    if not settings.has(key):
        return default
    words = settings.words(key, (ast.WordKind.NAME,), f"one of {one_of(set(choices))}")
    if words is None:
        return None
    if words[0].value not in choices:
        settings.diags.error(
            "compile/bad-setting",
            f"`{key}` is one of {one_of(set(choices))}",
            words[0].span,
        )
        return None
    return str(words[0].value)


def _roles(settings: SettingsReader, bc: AuthnBuildContext) -> dict[str, frozenset[str]] | None:
    """`roles file "services.yaml"` and/or `roles map { "spiffe://...": role }` (a
    subject listed twice gets both roles)."""
    found: dict[str, set[str]] = {}
    setting = settings.by_key.get("roles")
    if setting is None:
        return {}
    ok = True
    if setting.groups:
        group = setting.groups[0]
        shape = tuple(w.kind for w in group)
        if (
            len(setting.groups) != 1
            or shape != (ast.WordKind.NAME, ast.WordKind.STRING)
            or group[0].value != "file"
        ):
            settings.diags.error(
                "compile/bad-setting",
                '`roles` expects `roles file "services.yaml"` or `roles map { ... }`',
                setting.span,
            )
            return None
        ok = _roles_file(bc.resolve(str(group[1].value)), setting.span, bc, found)
    for entry in setting.mapping or ():
        role = entry.value.value
        if role not in bc.known_roles:
            bc.diags.error(
                "compile/unknown-role",
                f"unknown role `{role}`",
                entry.value.span,
                f"roles are {one_of(bc.known_roles)}",
            )
            ok = False
        found.setdefault(entry.key, set()).add(role)
    if not ok:
        return None
    return {subject: frozenset(sys.intern(r) for r in roles) for subject, roles in found.items()}


def _roles_file(path: Path, span: Span, bc: AuthnBuildContext, found: dict[str, set[str]]) -> bool:
    """`subjects:` mapping each subject to a list of roles."""

    def fail(message: str) -> bool:
        bc.diags.error("compile/roles-file", message, span)
        return False

    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as err:
        return fail(f"cannot read roles file `{path.name}`: {err.strerror}")
    except yaml.YAMLError as err:
        return fail(f"roles file `{path.name}` is not YAML: {err}")
    subjects = data.get("subjects") if isinstance(data, dict) else None
    if not isinstance(subjects, dict) or set(data) != {"subjects"}:
        return fail(f"`{path.name}` must hold only a `subjects:` mapping")
    ok = True
    for subject, roles in subjects.items():
        if not isinstance(subject, str) or not subject:
            ok = fail(f"{path.name}: every subject is a non-empty string")
            continue
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            ok = fail(f"{path.name}: `{subject}` must map to a list of role names")
            continue
        for role in roles:
            if role not in bc.known_roles:
                bc.diags.error(
                    "compile/unknown-role",
                    f"{path.name}: unknown role `{role}` for `{subject}`",
                    span,
                    f"roles are {one_of(bc.known_roles)}",
                )
                ok = False
        found.setdefault(subject, set()).update(roles)
    return ok
