"""Authentication: each authn block turns request credentials into an Identity or a failure.

`BUILDERS` maps a block kind (`api_key`, `jwt`, `introspect`, `mtls`) to the function that
compiles its settings into an Authenticator (policyengine/authenticator.py), once, at policy
compile time. A kind's module, and the libraries it needs, load when a policy names it.
"""

from policyengine.authn.base import AuthnBuildContext, Builder
from policyengine.authn.registry import BUILDERS

__all__ = ["BUILDERS", "AuthnBuildContext", "Builder"]
