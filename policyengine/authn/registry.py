"""Which builder compiles which kind of authn block."""

from __future__ import annotations

from policyengine.authn.api_key import build_api_key
from policyengine.authn.base import Builder
from policyengine.authn.introspection import build_introspect
from policyengine.authn.jwt_config import build_jwt
from policyengine.authn.mtls import build_mtls

BUILDERS: dict[str, Builder] = {
    "api_key": build_api_key,
    "jwt": build_jwt,
    "introspect": build_introspect,
    "mtls": build_mtls,
}
