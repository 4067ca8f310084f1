"""Path and method confusion: every spelling of a protected path is that path, or a 400.

The policy (security_support.POLICY) keeps `/api/admin/**` to admins and leaves
`/public` open, so the classic attack is a path that a filter reads as `/public` (or as
nothing it knows) while the backend reads `/api/admin/...`. Anonymous requests to the
admin area get 401; a decision of 200 on any of these spellings would be a bypass.
"""

from __future__ import annotations

from security_support import Case

ADMIN = ("GET", 401, "authn.missing")  # what an anonymous caller gets on /api/admin/...
BAD = (400, "request.bad_path")
UNMATCHED = (403, "route.unmatched")
# A raw control character cannot travel in an HTTP/1.1 header value (RFC 9110 §5.5):
# the sidecar's parser refuses the whole request before the engine sees it.
MALFORMED = {"http_status": 400, "http_reason": "request.malformed"}


def admin(name: str, target: str, why: str) -> Case:
    method, status, reason = ADMIN
    return Case(name, method, target, status, reason, why)


def bad(name: str, target: str, why: str, **extra: object) -> Case:
    return Case(name, "GET", target, *BAD, why, **extra)  # type: ignore[arg-type]


def unmatched(name: str, target: str, why: str, method: str = "GET") -> Case:
    return Case(name, method, target, *UNMATCHED, why)


def public(name: str, target: str, why: str, method: str = "GET") -> Case:
    return Case(name, method, target, 200, "allow", why)


PATH_CASES = [
    admin("baseline", "/api/admin/users", "the protected path itself"),
    public("baseline public", "/public", "the open path itself"),
    # -- dot segments (RFC 3986 §5.2.4): resolved before matching, never matched raw ------
    admin(
        "dot-dot out of public",
        "/public/../api/admin/users",
        "a prefix filter on `/public` would pass this; the backend resolves the dots",
    ),
    admin("single dots", "/api/./admin/./users", "RFC 3986 §5.2.4 removes `.` segments"),
    admin("dot-dot inside admin", "/api/admin/../admin/users", "resolves back into admin"),
    admin("trailing dot", "/api/admin/users/.", "`.` at the end is the directory itself"),
    bad(
        "dot-dot above the root",
        "/../api/admin/users",
        "no resolution is right: servers differ (clamp at root or 400)",
    ),
    bad(
        "dot-dot after an empty segment",
        "/public//../api/admin/users",
        "RFC resolution gives /public/api/..., slash-merging servers give /api/admin/...",
    ),
    # -- percent-encoded dots (CVE-2021-41773, Apache httpd 2.4.49) -------------------------
    admin(
        "encoded dot-dot",
        "/public/%2e%2e/api/admin/users",
        "dots are resolved after decoding, as the backend does (CVE-2021-41773)",
    ),
    admin(
        "upper-case encoded dot-dot",
        "/public/%2E%2E/api/admin/users",
        "hex case does not matter (RFC 3986 §2.1)",
    ),
    admin(
        "half-encoded dot-dot", "/public/.%2e/api/admin/users", "the exact CVE-2021-41773 spelling"
    ),
    bad(
        "double-encoded dot-dot",
        "/public/%252e%252e/api/admin/users",
        "`%252e` is `.` to a backend that decodes twice (CVE-2021-42013): refused",
    ),
    bad("triple-encoded dot-dot", "/public/%25252e%25252e/api/admin", "any depth"),
    # -- encoded separators -------------------------------------------------------------------
    bad(
        "encoded slash",
        "/api%2fadmin/users",
        "`%2F` is data to some servers and a separator to others (CVE-2016-2160 class)",
    ),
    bad("upper-case encoded slash", "/api%2Fadmin%2Fusers", "the same, either hex case"),
    bad(
        "raw backslash",
        "/public\\..\\api\\admin\\users",
        "Windows and IIS backends read `\\` as `/`",
    ),
    bad("encoded backslash", "/public/%5c../api/admin/users", "`%5C` is a backslash"),
    bad(
        "double-encoded slash",
        "/public/%252f..%252fapi/admin",
        "a separator to a backend that decodes twice: refused",
    ),
    bad("double-encoded backslash", "/public/%255c..%255capi/admin", "the same for `\\`"),
    unmatched("double-encoded other byte", "/api/admin%2541/users", "`%2541` stays data"),
    # -- path parameters (Tomcat `;`: CVE-2020-1957 in Shiro, CVE-2020-11989) ----------------
    bad(
        "dot-dot with a parameter",
        "/public/..;/api/admin/users",
        "Tomcat strips `;` before resolving dots: the backend reads /api/admin/users",
    ),
    bad("dot with a parameter", "/api/admin/.;x/users", "`.;x` is `.` to Tomcat"),
    bad(
        "encoded semicolon on dot-dot",
        "/public/..%3b/api/admin/users",
        "`%3B` may be decoded before the strip",
    ),
    unmatched(
        "parameter on a static segment",
        "/api/admin;jsessionid=1/users",
        "no route names `admin;...`: default deny, whatever the backend strips",
    ),
    # -- NUL and control characters -----------------------------------------------------------
    bad("encoded NUL", "/api/admin/users%00.json", "C backends stop at NUL (CVE-2013-4547)"),
    bad("raw NUL", "/public\x00/../api/admin", "a NUL byte in the target", **MALFORMED),
    bad("raw tab", "/api/admin\t/users", "control characters are never path data"),
    bad("encoded newline", "/public%0a/../api", "an encoded CR or LF in a path is an attack"),
    # -- overlong and invalid UTF-8 (CVE-2000-0884 IIS, CVE-2008-2938 Tomcat) ----------------
    bad(
        "overlong two-byte dots",
        "/public/%c0%ae%c0%ae/api/admin/users",
        "`%C0%AE` is an overlong `.`; strict UTF-8 rejects it (RFC 3629 §3)",
    ),
    bad(
        "overlong three-byte dot",
        "/public/%e0%80%ae%e0%80%ae/api/admin/users",
        "the three-byte overlong form",
    ),
    bad("overlong slash", "/public%c0%af..%c0%afapi/admin", "`%C0%AF` is an overlong `/`"),
    bad("truncated UTF-8", "/public/%e2%82", "an incomplete sequence"),
    bad("encoded surrogate", "/public/%ed%a0%80", "UTF-8 never encodes surrogates"),
    bad("malformed escape", "/public/%zz", "`%` must be followed by two hex digits"),
    # -- slashes ---------------------------------------------------------------------------------
    admin("double slash inside", "/api//admin/users", "merged, as nginx `merge_slashes` does"),
    admin(
        "leading double slash",
        "//api/admin/users",
        "`//api` is a network-path reference to a URL parser; merged here",
    ),
    admin("trailing slash", "/api/admin/users/", "not significant (docs/language.md)"),
    public("trailing slash on public", "/public/", "the same resource"),
    # -- absolute-form targets and fragments (RFC 9112 §3.2.2) -------------------------------
    Case(
        "absolute-form",
        *ADMIN[:1],
        "http://evil.example/api/admin/users",
        *ADMIN[1:],
        "the authority, which agrees with the gateway's host, takes no part in matching",
        headers=(("X-Forwarded-Host", "evil.example"),),
    ),
    Case(
        "absolute-form public",
        "GET",
        "https://evil.example/public",
        200,
        "allow",
        "only the path decides",
        headers=(("X-Forwarded-Host", "evil.example"),),
    ),
    bad(
        "userinfo in absolute-form",
        "http://public@evil.example/api/admin",
        "RFC 9110 §4.2.4: userinfo in an http(s) URI is an error",
    ),
    bad("asterisk-form", "*", "only OPTIONS * uses it; never a resource"),
    bad("relative path", "api/admin/users", "a target must start with `/`"),
    admin(
        "scheme-relative lookalike",
        "//evil.example/../api/admin/users",
        "a path, never an authority: the dots resolve within it",
    ),
    bad(
        "raw fragment",
        "/public#/../api/admin/users",
        "a client never sends `#` (RFC 9112 §3.2); nginx would forward the whole target",
    ),
    unmatched("encoded fragment", "/api/admin%23/users", "`%23` is data: no route matches"),
    public(
        "query is not path",
        "/public?/../api/admin/users",
        "`?` ends the path: the dots are query data",
    ),
    admin("query cannot open admin", "/api/admin/users?x=/public", "the query never matches"),
    # -- case and lookalikes (routes match case-sensitively) --------------------------------
    unmatched(
        "upper case",
        "/API/ADMIN/users",
        "case-insensitive backends exist: default deny covers the spelling",
    ),
    unmatched("upper-case public", "/Public", "not the public route"),
    public(
        "encoded unreserved letters",
        "/%70ub%6cic",
        "RFC 3986 §6.2.2.2: `%70` is `p`, the same path",
    ),
    unmatched("dotless i", "/publ%C4%B1c", "U+0131 is not `i`: no Unicode folding"),
    bad(
        "fullwidth solidus",
        "/public%EF%BC%8F..%EF%BC%8Fapi/admin",
        "U+FF0F is `/` after NFKC, as a normalizing backend reads it: refused",
    ),
    bad("fullwidth full stops", "/public/%EF%BC%8E%EF%BC%8E/api/admin", "U+FF0E is `.`"),
    bad("one dot leader", "/public/%E2%80%A4%E2%80%A4/api/admin", "U+2024 is `.` after NFKC"),
    bad("raw non-ASCII", "/publ\u00e9c", "raw, each server reads the bytes its own way"),
    unmatched("encoded space", "/public%20", "`public ` is another segment"),
    # -- typed segments ----------------------------------------------------------------------------
    unmatched(
        "fullwidth digit id",
        "/api/items/%EF%BC%91",
        "U+FF11 passes str.isdigit() but is no ASCII digit",
    ),
    unmatched("exponent id", "/api/items/1e3", "not an integer segment"),
    unmatched("huge id", "/api/items/99999999999999999999", "beyond 18 digits"),
    Case(
        "negative zero id",
        "GET",
        "/api/items/-0",
        401,
        "authn.missing",
        "a valid int segment: the route still needs a user",
    ),
]

METHOD_CASES = [
    unmatched(
        "lower-case method", "/public", "methods are case-sensitive (RFC 9110 §9.1)", method="get"
    ),
    Case(
        "lower-case method on admin",
        "delete",
        "/api/admin/users",
        401,
        "authn.missing",
        "ANY matches every method token, in any case: still needs an admin",
    ),
    public(
        "HEAD on a GET route",
        "/public",
        "HEAD is GET without a body (RFC 9110 §9.3.2)",
        method="HEAD",
    ),
    Case(
        "HEAD on a protected GET route",
        "HEAD",
        "/api/items/7",
        401,
        "authn.missing",
        "HEAD is decided like GET, never more loosely",
    ),
    unmatched("POST to a GET route", "/public", "the route admits GET only", method="POST"),
    unmatched("TRACE", "/public", "no route names it", method="TRACE"),
    Case(
        "unknown method on an ANY route",
        "PROPFIND",
        "/api/admin/x",
        401,
        "authn.missing",
        "ANY covers methods the language does not name",
    ),
    Case("method with a NUL", "GET\x00", "/public", *UNMATCHED, "not the token GET", **MALFORMED),  # type: ignore[arg-type]
    # Method and URL overrides are refused (400): frameworks behind the gateway honour
    # them, and the request they serve would not be the one decided on.
    Case(
        "override cannot upgrade",
        "DELETE",
        "/api/items/7",
        400,
        "request.method_override",
        "refused whatever it says: a DELETE with X-HTTP-Method-Override: GET",
        headers=(("X-API-Key", "key-alice"), ("X-HTTP-Method-Override", "GET")),
    ),
    Case(
        "override cannot downgrade",
        "GET",
        "/api/items/7",
        400,
        "request.method_override",
        "a permitted GET that a framework would serve as DELETE",
        headers=(("X-API-Key", "key-alice"), ("X-HTTP-Method-Override", "DELETE")),
    ),
    Case(
        "method override headers in any case",
        "POST",
        "/api/items/7",
        400,
        "request.method_override",
        "X-HTTP-Method and X-Method-Override, names in any case",
        headers=(("x-http-method", "GET"), ("X-METHOD-OVERRIDE", "GET")),
    ),
    Case(
        "_method parameter",
        "POST",
        "/api/items/7?_method=DELETE",
        400,
        "request.method_override",
        "Rails, Laravel and Symfony read `_method` from the query",
        headers=(("X-API-Key", "key-alice"),),
    ),
    Case(
        "encoded _method parameter",
        "GET",
        "/api/items/7?x=1&%5Fmethod=DELETE",
        400,
        "request.method_override",
        "`%5F` is `_` to every query parser",
        headers=(("X-API-Key", "key-alice"),),
    ),
    public("a parameter that only ends in _method", "/public?http_method=x", "not `_method`"),
    Case(
        "X-Original-URL",
        "GET",
        "/public",
        400,
        "request.url_override",
        "IIS and Symfony route by it: the gateway matched /public, the backend /api/admin",
        headers=(("X-Original-URL", "/api/admin/users"),),
    ),
    Case(
        "X-Rewrite-URL",
        "GET",
        "/public",
        400,
        "request.url_override",
        "Zend and Symfony route by it",
        headers=(("x-rewrite-url", "/api/admin/users"),),
    ),
]
