"""Authentication: each authn block turns request credentials into an Identity or a failure.

`BUILDERS` maps a block kind (`api_key`, `jwt`, `introspect`, `mtls`) to the function that
compiles its settings into an Authenticator, once, at policy compile time.
"""

from policyengine.authn.base import (
    Authenticator,
    AuthnBuildContext,
    AuthnFailure,
    AuthnUnavailable,
    Builder,
)
from policyengine.authn.registry import BUILDERS

__all__ = [
    "BUILDERS",
    "Authenticator",
    "AuthnBuildContext",
    "AuthnFailure",
    "AuthnUnavailable",
    "Builder",
]
