"""Which builder compiles which kind of authn block.

Each builder imports its module when first called: a policy with only `api_key` blocks
never loads `jwt` or `cryptography`.
"""

from __future__ import annotations

from policyengine import ast
from policyengine.authenticator import Authenticator
from policyengine.authn.base import AuthnBuildContext, Builder


def _api_key(block: ast.AuthnBlock, bc: AuthnBuildContext) -> Authenticator | None:
    from policyengine.authn.api_key import build_api_key

    return build_api_key(block, bc)


def _jwt(block: ast.AuthnBlock, bc: AuthnBuildContext) -> Authenticator | None:
    from policyengine.authn.jwt_config import build_jwt

    return build_jwt(block, bc)


def _introspect(block: ast.AuthnBlock, bc: AuthnBuildContext) -> Authenticator | None:
    from policyengine.authn.introspection import build_introspect

    return build_introspect(block, bc)


def _mtls(block: ast.AuthnBlock, bc: AuthnBuildContext) -> Authenticator | None:
    from policyengine.authn.mtls import build_mtls

    return build_mtls(block, bc)


BUILDERS: dict[str, Builder] = {
    "api_key": _api_key,
    "jwt": _jwt,
    "introspect": _introspect,
    "mtls": _mtls,
}
