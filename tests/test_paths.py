from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyengine import paths
from policyengine.paths import (
    BadPath,
    normalize_path,
    normalize_target,
    segments_to_path,
    split_target,
)

BAD = BadPath  # expectation marker in the tables below

# (input path, expected segments or BAD)
NORMALIZE_CASES: list[tuple[str, tuple[str, ...] | type[BadPath]]] = [
    # clean paths and the fast path
    ("/", ()),
    ("/api/orders/123", ("api", "orders", "123")),
    ("/api/v1.2/file.json", ("api", "v1.2", "file.json")),
    ("/a/b/", ("a", "b")),
    ("/a:b/@c/!$&'()*+,=", ("a:b", "@c", "!$&'()*+,=")),
    ("/Api/ORDERS", ("Api", "ORDERS")),
    ("/.well-known/x", (".well-known", "x")),
    ("/.../a..b/..c", ("...", "a..b", "..c")),
    # repeated slashes merged, empty segments dropped
    ("//a///b", ("a", "b")),
    ("//", ()),
    ("/a//", ("a",)),
    # dot segments (RFC 3986 §5.2.4), also when encoded
    ("/a/./b/../c", ("a", "c")),
    ("/a/.", ("a",)),
    ("/a/b/..", ("a",)),
    ("/.", ()),
    ("/a/./../b", ("b",)),
    ("//a/../b", ("b",)),
    ("/%2e%2e", BAD),
    ("/a/%2e%2e", ()),
    ("/a/%2E%2e/", ()),
    ("/a/.%2E/b", ("b",)),
    ("/a/%2e/b", ("a", "b")),
    ("/..", BAD),
    ("/a/../..", BAD),
    ("/a/b/../../..", BAD),
    ("/./..", BAD),
    # `..` that pops an empty segment: RFC resolver and slash-merging server disagree
    ("/a//../b", BAD),
    ("/a/b//..", BAD),
    ("/a/.//..", BAD),
    ("/a/..//b", ("b",)),
    # Tomcat path parameters on dot segments
    ("/a/..;/b", BAD),
    ("/a/.;x/b", BAD),
    ("/a/..;jsessionid=1", BAD),
    ("/a/%2e%2e;/b", BAD),
    ("/a/..%3b/b", BAD),
    ("/a/..%3B", BAD),
    ("/a;jsessionid=1/b", ("a;jsessionid=1", "b")),
    ("/a/;/b", ("a", ";", "b")),
    ("/a/...;x", ("a", "...;x")),
    ("/a/%3b", ("a", "%3B")),
    # percent-decoding: unreserved decoded, the rest kept with uppercase hex
    ("/%7euser", ("~user",)),
    ("/%41", ("A",)),
    ("/%61%2D%5f%2e%7E", ("a-_.~",)),
    ("/a%3fb", ("a%3Fb",)),
    ("/a%3Fb", ("a%3Fb",)),
    ("/%25", ("%25",)),
    # double encoding of `.`, `/`, `\\` (any depth, either case) is refused: a backend
    # that decodes twice sees a dot segment or a separator (CVE-2021-42013); of any
    # other byte, `%25` stays and what follows is data, its case kept
    ("/%252e%252e", BAD),
    ("/a/%252e%252e/b", BAD),
    ("/%252E", BAD),
    ("/a/%25252e", BAD),
    ("/a/%255C", BAD),
    ("/%2541", ("%2541",)),
    ("/%2561", ("%2561",)),
    # NFKC lookalikes of `.`, `/`, `\\` (fullwidth, one dot leader, `⒈`) are refused
    ("/a/%EF%BC%8E%EF%BC%8E", BAD),
    ("/a/x%EF%BC%8Fy", BAD),
    ("/a/%EF%BC%BC", BAD),
    ("/a/%E2%80%A4", BAD),
    ("/a/%E2%92%88", BAD),
    ("/a/caf%C3%A9", ("a", "café")),
    ("/%20", ("%20",)),
    ("/%40%3A", ("%40%3A",)),
    # raw non-pchar ASCII is encoded so that it equals its escaped form
    ("/a b", ("a%20b",)),
    ("/a?b#c", ("a%3Fb%23c",)),
    ('/"<>[]^`{|}', ("%22%3C%3E%5B%5D%5E%60%7B%7C%7D",)),
    # UTF-8
    ("/caf%C3%A9", ("café",)),
    ("/caf%c3%a9", ("café",)),
    ("/café", ("café",)),
    ("/%E2%82%AC%41", ("€A",)),
    ("/%F0%9F%98%80", ("\U0001f600",)),
    ("/caf%C3", BAD),
    ("/caf%C3%41", BAD),
    ("/%A9", BAD),
    ("/%C0%AE%C0%AE/", BAD),
    ("/%C0%AF", BAD),
    ("/%E0%80%AE", BAD),
    ("/%ED%A0%80", BAD),
    ("/%F4%90%80%80", BAD),
    ("/%FF", BAD),
    # encoded separators
    ("/a/%2F", BAD),
    ("/a%2fb", BAD),
    ("/a/%5c", BAD),
    ("/a%5Cb", BAD),
    ("/a%252F", BAD),
    # raw backslash, NUL, controls, surrogates
    ("/a\\b", BAD),
    ("/a%00", BAD),
    ("/a\x00", BAD),
    ("/a%0a", BAD),
    ("/a%0D%0A", BAD),
    ("/a\nb", BAD),
    ("/a\tb", BAD),
    ("/a%7F", BAD),
    ("/a\x7f", BAD),
    ("/a%C2%85", BAD),
    ("/a\x85", BAD),
    ("/a\ud800", BAD),
    ("/a\udfff", BAD),
    # malformed escapes
    ("/%", BAD),
    ("/a%", BAD),
    ("/%4", BAD),
    ("/%4/", BAD),
    ("/%zz", BAD),
    ("/%g1", BAD),
    ("/%\u0663\u0663", BAD),
    # not a path
    ("", BAD),
    ("a/b", BAD),
    ("*", BAD),
    ("%2F", BAD),
]


@pytest.mark.parametrize(("path", "expected"), NORMALIZE_CASES)
def test_normalize_path(path: str, expected: tuple[str, ...] | type[BadPath]) -> None:
    if expected is BAD:
        with pytest.raises(BadPath):
            normalize_path(path)
    else:
        assert normalize_path(path) == expected


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/a/%2F", "encoded slash in path"),
        ("/a/%5c", "encoded backslash in path"),
        ("/a\\b", "backslash in path"),
        ("/a%00", "nul byte in path"),
        ("/a\x00", "nul byte in path"),
        ("/a%0a", "control character in path"),
        ("/caf%C3", "invalid UTF-8 in path"),
        ("/%4", "malformed percent-escape in path"),
        ("/..", "`..` climbs above the root"),
        ("/a/..;/b", "dot segment with path parameters"),
        ("/a\ud800", "unpaired surrogate in path"),
    ],
)
def test_bad_path_reasons(path: str, reason: str) -> None:
    with pytest.raises(BadPath) as info:
        normalize_path(path)
    assert str(info.value) == reason
    assert info.value.code == "request.bad_path"
    assert isinstance(info.value, ValueError)


SPLIT_CASES: list[tuple[str, tuple[str, str] | type[BadPath]]] = [
    ("/a/b?x=1", ("/a/b", "x=1")),
    ("/a/b", ("/a/b", "")),
    ("/", ("/", "")),
    ("/a?", ("/a", "")),
    ("/a?x=1&y=?", ("/a", "x=1&y=?")),
    ("/a#frag", BAD),  # a client never sends a fragment (RFC 9112 §3.2)
    ("/a?x=1#frag?y", BAD),
    ("/a#f?x=1", BAD),
    ("/caf\u00e9", BAD),  # raw non-ASCII: percent-encode it (RFC 3986 §2.1)
    ("/a?q=caf\u00e9", ("/a", "q=caf\u00e9")),  # the query is the query's business
    ("//host/a", ("//host/a", "")),
    ("http://host:8080/a?x", ("/a", "x")),
    ("https://example.com/a/b?q=1#top", BAD),
    ("HTTP://Example.com:80/A", ("/A", "")),
    ("http://host", ("/", "")),
    ("http://host?x=1", ("/", "x=1")),
    ("http://host#f", BAD),
    ("http://[::1]:8080/a", ("/a", "")),
    ("http://host/%2e%2e", ("/%2e%2e", "")),
    ("", BAD),
    ("*", BAD),
    ("a/b", BAD),
    ("?x=1", BAD),
    ("#f", BAD),
    ("host:443", BAD),
    ("ftp://host/a", BAD),
    ("http:/a", BAD),
    ("http:///a", BAD),
    ("http://user@host/a", BAD),
    ("http://host\\@evil/a", BAD),
    ("http://ho st/a", BAD),
]


@pytest.mark.parametrize(("target", "expected"), SPLIT_CASES)
def test_split_target(target: str, expected: tuple[str, str] | type[BadPath]) -> None:
    if expected is BAD:
        with pytest.raises(BadPath):
            split_target(target)
    else:
        assert split_target(target) == expected


def test_segments_to_path() -> None:
    assert segments_to_path(()) == "/"
    assert segments_to_path(("a", "b")) == "/a/b"


def test_target_then_path() -> None:
    path, query = split_target("http://h:1//api/./orders/%31%32%33/?x=%2F")
    assert normalize_path(path) == ("api", "orders", "123")
    assert query == "x=%2F"


# Property tests. Plain text rarely starts with '/' or contains escapes, so
# the strategies also build paths out of the pieces that matter.
PIECES = [
    *"/.;%\\ ?#é",
    "\x00",
    "\x1f",
    "\x85",
    "\ud800",
    "a",
    "B",
    "..",
    "%2e",
    "%2E",
    "%2f",
    "%5C",
    "%00",
    "%25",
    "%3b",
    "%41",
    "%7e",
    "%C3",
    "%A9",
    "%C0",
    "%AE",
    "%E2%82%AC",
    "%F0%9F%98%80",
    "%zz",
    "%4",
]
paths_text = st.one_of(
    st.text(),
    st.text().map(lambda s: "/" + s),
    st.lists(st.sampled_from(PIECES), max_size=12).map(lambda xs: "/" + "".join(xs)),
)

# A canonical segment: pchar ASCII raw, other ASCII as uppercase %XX, non-ASCII raw.
CANONICAL = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-F]{2}|[^\x00-\x9f])+")


@given(paths_text)
def test_normalize_is_idempotent_and_clean(path: str) -> None:
    try:
        segments = normalize_path(path)
    except BadPath:
        return
    assert normalize_path(segments_to_path(segments)) == segments
    for segment in segments:
        assert segment not in ("", ".", "..")
        assert not {"/", "\\", "\x00"} & set(segment)
        assert CANONICAL.fullmatch(segment), segment
        assert not re.match(r"\.\.?(?:;|%3B)", segment)


@given(paths_text)
def test_split_target_raises_only_bad_path(target: str) -> None:
    try:
        path, _query = split_target(target)
    except BadPath:
        return
    assert path.startswith("/")
    assert "#" not in path and "?" not in path


def _outcome(
    normalize: Callable[[str], tuple[str, ...]], path: str
) -> tuple[str, ...] | type[BadPath]:
    try:
        return normalize(path)
    except BadPath:
        return BadPath


@given(st.text(alphabet="/.;:@!=~-_aZ9%", max_size=16).map(lambda s: "/" + s))
def test_fast_path_agrees_with_slow_path(path: str) -> None:
    assert _outcome(normalize_path, path) == _outcome(paths._normalize_slow, path)


# The fast path's definition: pchar and `/` only, from a `/`, no `//`, no segment that
# starts with a dot. _split_clean checks the characters another way (bytes.translate).
_CLEAN = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")


@given(
    st.one_of(
        st.text(max_size=12).map(lambda s: "/" + s),
        st.text(alphabet="/.%aZ9 \x00\x7f\x80é\\~", max_size=12),
    )
)
def test_the_fast_path_takes_exactly_the_clean_paths(path: str) -> None:
    clean = bool(_CLEAN.fullmatch(path)) and "//" not in path and "/." not in path
    try:
        taken = paths._split_clean(path) is not None
    except BadPath:  # only too many segments
        taken = True
    assert taken == clean, path
    if clean:
        assert paths._split_clean(path) == paths._normalize_slow(path)


def _target_outcome(target: str) -> tuple[tuple[str, ...], str] | type[BadPath]:
    try:
        path, query = split_target(target)
        return normalize_path(path), query
    except BadPath:
        return BadPath


targets_text = st.one_of(
    paths_text,
    st.lists(st.sampled_from([*PIECES, "?", "#", "x=1", "http://h"]), max_size=12).map("".join),
)


def _normalized(target: str) -> tuple[tuple[str, ...], str] | type[BadPath]:
    try:
        return normalize_target(target)
    except BadPath:
        return BadPath


@given(targets_text)
def test_normalize_target_is_split_then_normalize(target: str) -> None:
    assert _normalized(target) == _target_outcome(target)


@pytest.mark.parametrize(
    "target",
    ["/", "/a/", "/a/b?x=1#f", "/a?x#y?z", "/a#f?x", "/.well-known/x", "/a/..;/b", "/a//b?"],
)
def test_normalize_target_examples(target: str) -> None:
    assert _normalized(target) == _target_outcome(target)


segment_text = st.text(min_size=1).filter(lambda s: s not in (".", ".."))


@given(st.lists(segment_text, max_size=5))
def test_fully_encoded_segments_decode_back(segments: list[str]) -> None:
    # An encoded segment stays one segment, and the canonical form loses nothing:
    # unquoting it gives the original text back (or the path is rejected).
    def encode(text: str) -> str:
        return "".join(f"%{b:02X}" for b in text.encode("utf-8", "surrogatepass"))

    try:
        result = normalize_path("/" + "/".join(map(encode, segments)))
    except BadPath:
        return
    assert [unquote(s, errors="strict") for s in result] == segments


@given(st.text(alphabet="/.%25eEfF2C5c\uff0e\uff0f\u2024a", max_size=24).map(lambda s: "/" + s))
def test_permits_only_widen_what_is_accepted(path: str) -> None:
    """`permit double_encoding` / `unicode_separators` accept more paths, and a path the
    strict default accepts means the same segments either way."""
    strict = _outcome(normalize_path, path)
    lenient = _outcome(lambda p: normalize_path(p, True, True), path)
    if strict is not BadPath:
        assert lenient == strict


def test_each_permit_skips_only_its_own_check() -> None:
    with pytest.raises(BadPath, match="NFKC"):
        normalize_path("/a/\uff0e\uff0e", double_encoding=True)
    with pytest.raises(BadPath, match="double-encoded"):
        normalize_path("/a/%252e%252e", unicode_separators=True)
    assert normalize_path("/a/%252e%252e", double_encoding=True) == ("a", "%252e%252e")
    assert normalize_path("/a/\uff0e\uff0e", unicode_separators=True) == ("a", "\uff0e\uff0e")
    with pytest.raises(BadPath, match="encoded"):  # what no permit relaxes
        normalize_path("/a%2Fb", double_encoding=True, unicode_separators=True)
