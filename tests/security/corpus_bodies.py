"""JSON body attacks: a body the engine reads differently from the backend is refused.

`POST /api/orders` validates `Order` (closed, 1 KiB max); `POST /api/docs` an open
schema with the default 1 MiB max. Every case is sent by alice, who may call both, so
the only thing that can deny is the body.
"""

from __future__ import annotations

from security_support import Case

JSON = ("Content-Type", "application/json")
ALICE = ("X-API-Key", "key-alice")
GOOD = b'{"productId": "ABCD1234", "quantity": 2}'


def order(name: str, body: bytes, status: int, reason: str, why: str,
          content_type: str = "application/json") -> Case:  # fmt: skip
    headers = (ALICE, ("Content-Type", content_type))
    return Case(name, "POST", "/api/orders", status, reason, why, headers, body,
                subject="alice")  # fmt: skip


def doc(name: str, body: bytes, status: int, reason: str, why: str) -> Case:
    return Case(name, "POST", "/api/docs", status, reason, why, (ALICE, JSON), body,
                subject="alice")  # fmt: skip


INVALID = (400, "input.invalid")

BODY_CASES = [
    order("valid order", GOOD, 200, "allow", "the baseline"),
    # -- parser differentials --------------------------------------------------------------
    order(
        "duplicate key",
        b'{"productId": "ABCD1234", "quantity": 2, "quantity": 1000}',
        *INVALID,
        "first-wins and last-wins parsers disagree (RFC 8259 §4, RFC 7493 "
        "§2.3; CVE-2017-12635 in CouchDB)",
    ),
    order(
        "duplicate key, escaped spelling",
        b'{"productId": "ABCD1234", "quantity": 2, "quan\\u0074ity": 1000}',
        *INVALID,
        "the same key after unescaping",
    ),
    order(
        "NaN",
        b'{"productId": "ABCD1234", "quantity": NaN}',
        *INVALID,
        "not JSON (RFC 8259 §6), though Python and others accept it",
    ),
    order("Infinity", b'{"productId": "ABCD1234", "quantity": Infinity}', *INVALID, "not JSON"),
    order(
        "trailing comma",
        b'{"productId": "ABCD1234", "quantity": 2,}',
        *INVALID,
        "lenient parsers accept it",
    ),
    order(
        "comment",
        b'{"productId": "ABCD1234", /* x */ "quantity": 2}',
        *INVALID,
        "JSON has no comments",
    ),
    order(
        "byte order mark",
        b"\xef\xbb\xbf" + GOOD,
        *INVALID,
        "RFC 8259 §8.1: must not add one; some parsers skip it, some fail",
    ),
    order(
        "invalid UTF-8",
        b'{"productId": "ABCD\xff234", "quantity": 2}',
        *INVALID,
        "RFC 8259 §8.1: UTF-8 only",
    ),
    order(
        "lone surrogate",
        b'{"productId": "\\ud800BCD1234", "quantity": 2}',
        *INVALID,
        "RFC 7493 §2.1: no unpaired surrogates",
    ),
    order("two documents", GOOD + b" " + GOOD, *INVALID, "one value per body"),
    # -- numbers -------------------------------------------------------------------------------
    order(
        "huge exponent",
        b'{"productId": "ABCD1234", "quantity": 1e400}',
        *INVALID,
        "overflows a double: out of range (RFC 7493 §2.2)",
    ),
    order(
        "long integer",
        b'{"productId": "ABCD1234", "quantity": 1' + b"0" * 5000 + b"}",
        413,
        "input.too_large",
        "too large for this route before it is parsed",
    ),
    doc(
        "long integer under the limit",
        b'{"n": 1' + b"0" * 5000 + b"}",
        *INVALID,
        "a 5000-digit number: parsing cost (CVE-2020-10735) is bounded at 100 characters",
    ),
    order(
        "just over the bound, as a decimal",
        b'{"productId": "ABCD1234", "quantity": 100.0000000000000000001}',
        *INVALID,
        "a double reads 100.0 (within 1..100), a decimal reader more than 100: refused, as "
        "a number a double cannot hold as written (RFC 7493 §2.2)",
    ),
    order(
        "underflow to zero",
        b'{"productId": "ABCD1234", "quantity": 1e-400}',
        *INVALID,
        "0.0 to a double, not to a decimal reader",
    ),
    order(
        "the bound written long but exact",
        b'{"productId": "ABCD1234", "quantity": 100.000000000000000000}',
        200,
        "allow",
        "trailing zeros lose nothing: the number as written is 100",
    ),
    order(
        "fraction for an int",
        b'{"productId": "ABCD1234", "quantity": 2.5}',
        *INVALID,
        "an int field takes no fraction",
    ),
    # -- type confusion --------------------------------------------------------------------------
    order(
        "boolean for an int",
        b'{"productId": "ABCD1234", "quantity": true}',
        *INVALID,
        "Python's bool is an int; JSON's true is not a number",
    ),
    order(
        "string for an int", b'{"productId": "ABCD1234", "quantity": "2"}', *INVALID, "no coercion"
    ),
    order(
        "array for a string", b'{"productId": ["ABCD1234"], "quantity": 2}', *INVALID, "no coercion"
    ),
    order(
        "object for a string",
        b'{"productId": {"$ne": ""}, "quantity": 2}',
        *INVALID,
        "the NoSQL-injection shape",
    ),
    order(
        "null for a required field",
        b'{"productId": null, "quantity": 2}',
        *INVALID,
        "null is no string",
    ),
    order("top-level array", b"[" + GOOD + b"]", *INVALID, "the schema is an object"),
    order(
        "regex anchors",
        b'{"productId": "ABCD1234\\n", "quantity": 2}',
        *INVALID,
        "`$` matches only at the end: no trailing newline slips through",
    ),
    # -- mass assignment ---------------------------------------------------------------------------
    order(
        "unknown field",
        b'{"productId": "ABCD1234", "quantity": 2, "price": 0}',
        *INVALID,
        "schemas are closed by default",
    ),
    order(
        "__proto__",
        b'{"productId": "ABCD1234", "quantity": 2, "__proto__": {"admin": 1}}',
        *INVALID,
        "prototype pollution in JavaScript backends",
    ),
    # -- size and depth ----------------------------------------------------------------------------
    order(
        "oversized",
        b'{"productId": "ABCD1234", "quantity": 2, "x": "' + b"a" * 2048 + b'"}',
        413,
        "input.too_large",
        "`max 1KiB`, measured before parsing",
    ),
    doc(
        "deep nesting",
        b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        *INVALID,
        "deeper than 64 levels: recursive parsers and validators overflow their stacks",
    ),
    doc(
        "deep objects",
        b'{"a": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}",
        *INVALID,
        "objects count as levels too",
    ),
    doc(
        "many keys",
        b"{" + b",".join(b'"k%d": 1' % i for i in range(20000)) + b"}",
        200,
        "allow",
        "an open schema takes them: 20000 keys cost linear time, no hash flooding "
        "(Python's str hash is keyed per process)",
    ),
    # -- media types -------------------------------------------------------------------------------
    order(
        "text/plain",
        GOOD,
        415,
        "input.unsupported_media_type",
        "a CSRF-able simple request must not reach a JSON API",
        "text/plain",
    ),
    order(
        "form encoding",
        GOOD,
        415,
        "input.unsupported_media_type",
        "not JSON",
        "application/x-www-form-urlencoded",
    ),
    order(
        "UTF-16 charset",
        GOOD,
        415,
        "input.unsupported_media_type",
        "JSON is UTF-8",
        "application/json; charset=utf-16",
    ),
    order(
        "+json suffix",
        GOOD,
        200,
        "allow",
        "RFC 6838 structured syntax suffix",
        "application/vnd.api+json",
    ),
    # -- body conditions (no schema on /api/kinds) -------------------------------------------------
    Case(
        "body condition",
        "POST",
        "/api/kinds",
        200,
        "allow",
        "the baseline",
        (ALICE, JSON),
        b'{"kind": "public"}',
        subject="alice",
    ),
    Case(
        "body condition, duplicate key",
        "POST",
        "/api/kinds",
        400,
        "input.invalid",
        "a body the engine cannot read unambiguously is refused before any condition reads it",
        (ALICE, JSON),
        b'{"kind": "secret", "kind": "public"}',
    ),
]
