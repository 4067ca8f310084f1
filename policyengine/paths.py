"""Request path normalization: the one place in the product where it happens.

A request path becomes a tuple of decoded, non-empty segments that the route
trie matches exactly and case-sensitively (LANGUAGE.md "Paths"). Whatever a
backend could read differently from us is rejected with `BadPath`, never
guessed at: a gateway that matches loosely can be bypassed.

Canonical form of a segment, so that normalizing twice changes nothing:
unreserved ASCII, sub-delims, `:` and `@` raw; every other ASCII character as
`%XX` with uppercase hex; non-ASCII characters raw (decoded from UTF-8).
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import ClassVar, Final

__all__ = ["BadPath", "normalize_path", "normalize_target", "segments_to_path", "split_target"]


class BadPath(ValueError):
    """The request target is malformed or ambiguous; `str(e)` is a short reason."""

    code: ClassVar[str] = "request.bad_path"  # the decision reason (LANGUAGE.md "Decisions")


# RFC 3986 §2.3 unreserved, §2.2 sub-delims, plus ':' and '@' make up pchar (§3.3).
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")

# The common clean path: pchar and '/' only (no '%'), with no empty segment (`//`)
# and no segment starting with a dot. That excludes every dot segment and `.;`/`..;`
# (`/.well-known` merely takes the slow path). Its characters are checked by deleting
# the allowed ones from its bytes (bytes.translate, one table lookup a byte): a third of
# what matching the character class `/[pchar/]*` costs, its match object included.
_CLEAN_BYTES: Final = (string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/").encode()

# Raw characters that are never allowed: backslash (read as '/' by some
# servers), C0/C1 controls including NUL, and surrogates (not encodable).
_FORBIDDEN = re.compile(r"[\\\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_MALFORMED = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
# Printable ASCII that is not pchar, arriving raw: encoded so that `/a b` and
# `/a%20b` are one path (RFC 3986 §2.1 says they must be encoded anyway).
_NEEDS_ESCAPE = re.compile(r"[ \"#<>?\[\]^`{|}]")
# Tomcat strips `;params` before resolving dots, so `..;x` is `..` to it while a
# filter in front sees a name (`/public/..;/admin`: CVE-2020-1957 in Shiro);
# `%3B` may be decoded before that strip, so it counts too.
_DOT_WITH_PARAMS = re.compile(r"\.\.?(?:;|%3B)")

# `%252e` is `%2e` to us and `.` to a backend that decodes twice: a dot segment, slash
# or backslash we never saw (CVE-2021-41773's class). Any depth: `%25252e` too.
_DOUBLE_ENCODED = re.compile(r"%25(?:25)*(?:2[eEfF]|5[cC])")
_FOLD_TARGETS = "./\\"  # what NFKC must not make appear

_ABSOLUTE = re.compile(r"(?i:https?)://([^/?#]*)(.*)", re.DOTALL)
# RFC 9110 §4.2.4: userinfo in an http(s) URI is treated as an error.
_AUTHORITY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:\[\]%]+")

# After decoding, unreserved ASCII stays decoded (RFC 3986 §6.2.2.2) and other
# ASCII is escaped again with uppercase hex (§6.2.2.1): `%3f` -> `%3F`, and
# `%252e` -> `%252e` (the escape is `%25`; `2e` is data), never a dot segment.
_KEEP_ENCODED = {b: f"%{b:02X}" for b in range(128) if chr(b) not in _UNRESERVED}
_DECODED_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]")
_DECODED_REASONS = {
    "/": "encoded slash in path",
    "\\": "encoded backslash in path",
    "\x00": "nul byte in path",
}
# One escape of an allowed ASCII byte (uppercase hex): decoded by lookup.
_SINGLE_ESCAPES = {
    f"%{b:02X}": chr(b).translate(_KEEP_ENCODED)
    for b in range(128)
    if not _DECODED_FORBIDDEN.match(chr(b))
}


def split_target(target: str) -> tuple[str, str]:
    """Split a request target into (path, raw_query).

    Accepts origin-form (`/a/b?x=1`) and http(s) absolute-form
    (`http://host:8080/a?x`, RFC 9112 §3.2.2), whose scheme and authority are
    dropped. Anything else (``, `*`, `a/b`, authority-form) raises BadPath, and so
    does a `#` (a client never sends a fragment, RFC 9112 §3.2: a gateway that
    forwards the whole target would send a backend more than we decided on) and a raw
    non-ASCII character in the path (RFC 3986 §2.1: it must be percent-encoded; raw,
    each server reads its bytes its own way).
    """
    if "#" in target:
        raise BadPath("`#` in request target")
    if not target.startswith("/"):
        target = _strip_origin(target)
    path, _, query = target.partition("?")
    if not path.isascii():
        raise BadPath("raw non-ASCII character in path (percent-encode it)")
    return path, query


def _strip_origin(target: str) -> str:
    match = _ABSOLUTE.fullmatch(target)
    if match is None or not _AUTHORITY.fullmatch(match[1]):
        raise BadPath("request target must be a path or an http(s) URL")
    rest = match[2]
    # An empty path in absolute-form means `/` (RFC 9112 §3.2.2).
    return rest if rest.startswith("/") else "/" + rest


# No API nests this deep; the bound keeps matching (which recurses per segment) finite.
MAX_SEGMENTS: Final = 128


def normalize_path(
    path: str, double_encoding: bool = False, unicode_separators: bool = False
) -> tuple[str, ...]:
    """Return the normalized, decoded, non-empty segments of a path (no query).

    Raises BadPath for anything malformed or ambiguous. The two flags are a set's
    `permit double_encoding` / `permit unicode_separators` (hardening.Hardening): the
    one check each names is skipped, every other one stays.
    """
    segments = _split_clean(path)
    if segments is None:
        segments = _normalize_slow(path, double_encoding, unicode_separators)
        if len(segments) > MAX_SEGMENTS:
            raise BadPath(f"more than {MAX_SEGMENTS} path segments")
    return segments


def normalize_target(
    target: str, double_encoding: bool = False, unicode_separators: bool = False
) -> tuple[tuple[str, ...], str]:
    """`split_target`, then `normalize_path` of its path: (segments, raw_query).

    The engine's entry: a clean origin-form target is split once, not twice.
    """
    path, _, query = target.partition("?")
    segments = _split_clean(path)
    if segments is None:
        path, query = split_target(target)
        return normalize_path(path, double_encoding, unicode_separators), query
    if "#" in query:  # a clean path has none, so a fragment starts in the query
        raise BadPath("`#` in request target")
    return segments, query


def _split_clean(path: str) -> tuple[str, ...] | None:
    """The segments of a clean path, which is already in normal form; None for any other
    path (which the slow path then reads, and may well accept)."""
    if (
        not path.startswith("/")
        or not path.isascii()  # a flag of the string: no scan
        or path.encode("ascii").translate(None, _CLEAN_BYTES)  # a byte no pchar, nor `/`
        or "//" in path
        or "/." in path
    ):
        return None
    segments = path[1:].split("/")
    if not segments[-1]:  # a trailing slash, or the root: no `//`, so no other is empty
        segments.pop()
    if len(segments) > MAX_SEGMENTS:
        raise BadPath(f"more than {MAX_SEGMENTS} path segments")
    return tuple(segments)


def segments_to_path(segments: tuple[str, ...]) -> str:
    """Join segments back into a path; `normalize_path` of it gives them back."""
    return "/" + "/".join(segments)


def _normalize_slow(
    path: str, double_encoding: bool = False, unicode_separators: bool = False
) -> tuple[str, ...]:
    if not path.startswith("/"):
        raise BadPath("path must start with `/`")
    bad = _FORBIDDEN.search(path)
    if bad is not None:
        raise BadPath(_raw_reason(bad.group()))
    if _MALFORMED.search(path):
        raise BadPath("malformed percent-escape in path")
    if not double_encoding and "%25" in path and _DOUBLE_ENCODED.search(path):
        raise BadPath("double-encoded `.`, `/` or `\\` in path")
    # Decoding may span segments: an encoded '/' is rejected, so runs never
    # cross a real one. Dots are resolved after decoding, as a backend would
    # (`.%2e` is `..`: CVE-2021-41773 in Apache httpd).
    if "%" in path:
        path = _ESCAPES.sub(_decode_run, path)
    if not unicode_separators and not path.isascii() and _folds_to_separator(path):
        raise BadPath("a character that is `.`, `/` or `\\` after NFKC in path")
    path = _NEEDS_ESCAPE.sub(_escape_char, path)
    return _resolve_dots(path[1:].split("/"))


def _folds_to_separator(text: str) -> bool:
    """Whether NFKC makes a `.`, `/` or `\\` appear (fullwidth U+FF0E, U+FF0F, U+FF3C,
    the one dot leader U+2024, U+2488 `1.`...): a backend that normalizes Unicode (IDNA,
    some frameworks' NFKC) would see a dot segment or a separator we never saw."""
    folded = unicodedata.normalize("NFKC", text)
    return any(folded.count(c) != text.count(c) for c in _FOLD_TARGETS)


def _raw_reason(char: str) -> str:
    if char == "\\":
        return "backslash in path"
    if char == "\x00":
        return "nul byte in path"
    if 0xD800 <= ord(char) <= 0xDFFF:  # mypyc: no surrogates in literals
        return "unpaired surrogate in path"
    return "control character in path"


def _escape_char(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def _decode_run(match: re.Match[str]) -> str:
    run = match.group()
    text = _SINGLE_ESCAPES.get(run.upper())
    if text is not None:  # the common case: one escape of an allowed ASCII byte
        return text
    try:
        # Decoding the whole run as UTF-8 equals decoding its ASCII bytes and its
        # multi-byte sequences apart: UTF-8 never puts ASCII inside a sequence.
        # Strict UTF-8 rejects overlongs (`%C0%AE` for '.'), encoded surrogates
        # and truncated sequences: all classic traversal-filter bypasses.
        text = bytes.fromhex(run.replace("%", "")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath("invalid UTF-8 in path") from None
    bad = _DECODED_FORBIDDEN.search(text)
    if bad is not None:
        raise BadPath(_DECODED_REASONS.get(bad.group(), "control character in path"))
    return text.translate(_KEEP_ENCODED)


def _resolve_dots(segments: list[str]) -> tuple[str, ...]:
    """Remove dot segments (RFC 3986 §5.2.4), then drop empty segments.

    Empty segments are kept on the stack until the end, so that a `..` that
    would remove one is caught: `/a//../b` is `/a/b` to an RFC resolver but
    `/b` to a server that merges slashes first, so it is rejected.
    """
    stack: list[str] = []
    for segment in segments:
        if segment == "..":
            if not stack:
                raise BadPath("`..` climbs above the root")
            if not stack[-1]:
                raise BadPath("`..` after an empty segment is ambiguous")
            stack.pop()
        elif segment != ".":
            if segment.startswith(".") and _DOT_WITH_PARAMS.match(segment):
                raise BadPath("dot segment with path parameters")
            stack.append(segment)
    return tuple(filter(None, stack))
