"""Regular expressions written in policies: checked at compile time, matched in linear time.

`matches "..."` runs on what a client sends (headers, query values, body fields,
claims). Python's `re` backtracks: `^(a+)+$` takes seconds on 30 characters, and even
`\\s+$` is quadratic (1.5 s on a 20 KB header here). A structural check for "nested
quantifiers" cannot catch the quadratic cases, so conditions use the engine that
schema patterns (`matching`) already use: jsonschema-rs's ECMA-262 patterns on Rust's
`regex` crate, a finite automaton whose time is linear in the input whatever the
pattern. One dialect for the whole language, as fast as `re` on short strings
(bench/regex.py), and no new dependency.

What that engine does not do, and Python's `re` would: look-around, backreferences,
`\\A`/`\\Z`; `\\d` and `\\w` are ASCII (ECMA-262), and `$` matches only at the very end
(`re` also matches before a final newline, so `^admin$` would accept `admin\\n`).
"""

from __future__ import annotations

import re

import jsonschema_rs

__all__ = ["LinearRegex", "RegexError", "compile_regex"]

_OPTIONS = jsonschema_rs.RegexOptions()
UNSUPPORTED_HELP = (
    "patterns are ECMA-262 regular expressions without look-around or backreferences, "
    "matched in linear time so that no request can make matching slow"
)


class RegexError(ValueError):
    """A pattern that cannot be used; `str(e)` is the diagnostic message."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.help = help


class LinearRegex:
    """A compiled pattern; `search` is true when it matches anywhere in the text."""

    __slots__ = ("_validator", "pattern")

    def __init__(self, pattern: str, validator: jsonschema_rs.Validator) -> None:
        self.pattern = pattern
        self._validator = validator

    def search(self, text: str) -> bool:
        # a `pattern` schema validates exactly the strings the pattern is found in
        try:
            return self._validator.is_valid(text)
        except UnicodeEncodeError:  # a lone surrogate (Python API, token claims): not UTF-8
            return self._validator.is_valid(_replace_surrogates(text))


def _replace_surrogates(text: str) -> str:
    """Lone surrogates become U+FFFD, as any decoder shows undecodable input."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def compile_regex(pattern: str) -> LinearRegex:
    """Compile once; raises RegexError saying what is wrong with the pattern."""
    try:
        validator = jsonschema_rs.validator_for({"pattern": pattern}, pattern_options=_OPTIONS)
    except (jsonschema_rs.ValidationError, ValueError):
        raise _why_rejected(pattern) from None
    return LinearRegex(pattern, validator)


def _why_rejected(pattern: str) -> RegexError:
    """Python's parser names a syntax error precisely; anything it accepts that the
    linear engine refuses is a feature that needs backtracking (or a huge automaton)."""
    try:
        re.compile(pattern)
    except re.error as err:
        return RegexError(f"invalid regular expression: {err.msg}")
    return RegexError(
        "this regular expression uses a feature that is not supported", UNSUPPORTED_HELP
    )
