"""Compiling an `authn jwt` block: the algorithm allowlist, key sources, claim settings.

Every listed algorithm must have a key that can verify it, and every key must serve
a listed algorithm, so a policy never carries a key or an algorithm by mistake.
"""

from __future__ import annotations

import json
import re

from policyengine import ast
from policyengine.authn.base import AuthnBuildContext
from policyengine.authn.bearer import MAX_TOKEN_BYTES
from policyengine.authn.claims import CLAIM_SETTINGS, read_claim_mapping, read_claim_rules
from policyengine.authn.http import url_problem
from policyengine.authn.jose import DEFAULT_MAX_BYTES, DEFAULT_TYPES, TokenRules, media_type
from policyengine.authn.jwks import JwksUrl
from policyengine.authn.jwt import JwtAuthenticator
from policyengine.authn.jwt_keys import (
    ALGORITHMS,
    HMAC,
    KeyFileError,
    VerificationKey,
    algorithms_for,
    load_public_key,
    parse_jwks,
)
from policyengine.authn.settings import SettingsReader
from policyengine.errors import one_of

SETTINGS = CLAIM_SETTINGS | {
    "algorithms",
    "public_key",
    "jwks",
    "secret",
    "typ",
    "missing_typ",
    "max_token_size",
}
MIN_TOKEN_BYTES = 256
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+(/[A-Za-z0-9!#$&^_.+-]+)?")  # RFC 6838 §4.2


def build_jwt(block: ast.AuthnBlock, bc: AuthnBuildContext) -> JwtAuthenticator | None:
    errors_before = len(bc.diags.errors)
    settings = SettingsReader(block, SETTINGS, bc.diags, mergeable=frozenset({"roles"}))
    settings.require("issuer", "audience", "algorithms")
    algorithms = _algorithms(settings)
    static_keys = _secret_keys(settings, bc, algorithms) + _pem_keys(settings, bc, algorithms)
    url_keys = None
    jwks = settings.sourced("jwks", ("file", "url"))
    if jwks is not None and jwks[0] == "file":
        static_keys += _jwks_file_keys(settings, bc, jwks[1], algorithms)
    elif jwks is not None:
        url_keys = _jwks_url(settings, jwks[1], algorithms)
    if url_keys is None:
        _check_every_algorithm_has_a_key(settings, algorithms, static_keys)
    rules = read_claim_rules(settings, require_exp=True)
    mapping = read_claim_mapping(settings, bc)
    token_rules = _token_rules(settings)
    if len(bc.diags.errors) > errors_before:
        return None
    return JwtAuthenticator(
        block.label, algorithms, static_keys, url_keys, rules, mapping, token_rules
    )


def _token_rules(settings: SettingsReader) -> TokenRules:
    """`typ "JWT", "at+jwt"`, `missing_typ accept|refuse`, `max_token_size 8KiB`."""
    types = settings.strings("typ")
    for typ in types or ():
        if not _MEDIA_TYPE.fullmatch(typ):
            settings.diags.error(
                "compile/bad-setting",
                f"`{typ}` is not a media type",
                settings.span("typ"),
                'a `typ` is a media type such as `"at+jwt"` (RFC 7515 §4.1.9)',
            )
    missing = settings.names("missing_typ")
    if missing is not None and missing not in (["accept"], ["refuse"]):
        settings.diags.error(
            "compile/bad-setting",
            "`missing_typ` is `accept` or `refuse`",
            settings.span("missing_typ"),
        )
    size = settings.size("max_token_size")
    if size is not None and not MIN_TOKEN_BYTES <= size <= MAX_TOKEN_BYTES:
        settings.diags.error(
            "compile/bad-setting",
            f"`max_token_size` must be between {MIN_TOKEN_BYTES}B and {MAX_TOKEN_BYTES // 1024}KiB",
            settings.span("max_token_size"),
        )
    return TokenRules(
        types=frozenset(media_type(t) for t in (types if types is not None else DEFAULT_TYPES)),
        require_typ=missing == ["refuse"],
        max_bytes=size if size is not None else DEFAULT_MAX_BYTES,
    )


def _algorithms(settings: SettingsReader) -> frozenset[str]:
    names = settings.names("algorithms") or []
    for name in names:
        if name.lower() == "none":
            settings.diags.error(
                "compile/jwt-alg-none",
                "algorithm `none` is never accepted",
                settings.span("algorithms"),
                "an unsigned token proves nothing about who sent it",
            )
        elif name not in ALGORITHMS:
            settings.diags.error(
                "compile/bad-setting",
                f"unknown JWT algorithm `{name}`",
                settings.span("algorithms"),
                f"algorithms are {one_of(ALGORITHMS)}",
            )
    return frozenset(n for n in names if n in ALGORITHMS)


def _secret_keys(
    settings: SettingsReader, bc: AuthnBuildContext, algorithms: frozenset[str]
) -> tuple[VerificationKey, ...]:
    hmac = algorithms & HMAC.keys()
    if hmac and not settings.has("secret"):
        settings.diags.error(
            "compile/jwt-no-key",
            f'{_listed(hmac)} needs `secret env "..."`',
            settings.span("algorithms"),
        )
    secret = settings.env("secret", bc.environ)
    if secret is None:
        return ()
    if not hmac:
        settings.diags.error(
            "compile/jwt-unused-key",
            "`secret` is set but `algorithms` lists no HS256, HS384 or HS512",
            settings.span("secret"),
        )
        return ()
    size = len(secret.encode("utf-8"))
    for alg in sorted(hmac):
        if size < HMAC[alg]:
            settings.diags.error(
                "compile/jwt-weak-secret",
                f"the secret is {size} bytes; {alg} needs at least {HMAC[alg]}",
                settings.span("secret"),
                "RFC 7518 §3.2: as long as the hash",
            )
    return (VerificationKey(secret.encode("utf-8"), frozenset(hmac)),)


def _pem_keys(
    settings: SettingsReader, bc: AuthnBuildContext, algorithms: frozenset[str]
) -> tuple[VerificationKey, ...]:
    source = settings.sourced("public_key", ("file",))
    if source is None:
        return ()
    try:
        key = load_public_key(bc.resolve(source[1]))
    except KeyFileError as err:
        settings.diags.error("compile/jwt-key-file", str(err), settings.span("public_key"))
        return ()
    usable = algorithms_for(key) & algorithms
    if not usable:
        settings.diags.error(
            "compile/jwt-unused-key",
            f"`{source[1]}` verifies none of the listed algorithms",
            settings.span("public_key"),
            f"this key verifies {one_of(algorithms_for(key))}",
        )
    return (VerificationKey(key, usable),)


def _jwks_file_keys(
    settings: SettingsReader, bc: AuthnBuildContext, name: str, algorithms: frozenset[str]
) -> tuple[VerificationKey, ...]:
    try:
        data = json.loads(bc.resolve(name).read_text(encoding="utf-8"))
        keys = parse_jwks(data, algorithms)
    except OSError as err:
        problem = f"cannot read `{name}`: {err.strerror}"
    except ValueError:
        problem = f"`{name}` is not JSON"
    except KeyFileError as err:
        problem = f"`{name}`: {err}"
    else:
        if keys:
            return keys
        problem = f"no key in `{name}` verifies any of the listed algorithms"
    settings.diags.error("compile/jwt-key-file", problem, settings.span("jwks"))
    return ()


def _jwks_url(settings: SettingsReader, url: str, algorithms: frozenset[str]) -> JwksUrl | None:
    problem = url_problem(url)
    if problem is not None:
        settings.diags.error("compile/bad-setting", f"`jwks url` {problem}", settings.span("jwks"))
        return None
    return JwksUrl(url, algorithms)


def _check_every_algorithm_has_a_key(
    settings: SettingsReader, algorithms: frozenset[str], keys: tuple[VerificationKey, ...]
) -> None:
    covered = frozenset().union(*(k.algorithms for k in keys))
    missing = algorithms - covered - HMAC.keys()  # HS* without a secret is reported already
    if missing:
        settings.diags.error(
            "compile/jwt-no-key",
            f"no key verifies {_listed(missing)}",
            settings.span("algorithms"),
            'add `public_key file "..."` or `jwks file|url "..."`',
        )


def _listed(algorithms: frozenset[str] | set[str]) -> str:
    return ", ".join(f"`{a}`" for a in sorted(algorithms))
