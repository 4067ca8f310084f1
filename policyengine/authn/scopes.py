"""OAuth2 scopes of a verified token: `scope` (a space-separated string, RFC 8693 §4.2,
RFC 9068 §2.2.3) or `scp` (an array of strings, as Okta and others issue them).

Read once per token, when its claims are mapped to an Identity (a cache miss), into a
frozenset that `allow scope` rules test with one subset check. Strict, like the rest of
a token: a claim of the wrong type, a malformed scope-token (RFC 6749 §3.3) or both
claims at once (which one would the application read?) make the token invalid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# scope-token = 1*( %x21 / %x23-5B / %x5D-7E ): printable ASCII but space, `"` and `\`
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def is_scope_token(text: str) -> bool:
    return SCOPE_TOKEN.fullmatch(text) is not None


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str] | str:
    """The token's scopes, or why its scope claims are not acceptable."""
    scope, scp = claims.get("scope"), claims.get("scp")
    if scope is not None and scp is not None:
        return "token has both `scope` and `scp`"
    if scope is not None:
        names = scope.split(" ") if isinstance(scope, str) else None
        if names is None or not all(map(is_scope_token, names)):
            return "token claim `scope` is not a space-separated list of scopes"
        return frozenset(names)
    if scp is not None:
        if not isinstance(scp, list) or not all(
            isinstance(n, str) and is_scope_token(n) for n in scp
        ):
            return "token claim `scp` is not an array of scopes"
        return frozenset(scp)
    return frozenset()
