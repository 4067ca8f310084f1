"""Hosts: which origin a request is for, in one canonical form, and whether a policy serves it.

A request names its host in `Host` (RFC 9110 §7.2) or, in absolute-form, in its target
(RFC 9112 §3.2.2). Both are read here and nowhere else, and compared in one canonical
form: lowercase (RFC 4343), one trailing dot removed (`api.example.test.` is the same
name, RFC 1034 §3.1), the default ports 80 and 443 removed (RFC 9110 §4.2.1, §4.2.2), an
IPv6 literal in its compressed form (RFC 5952). What a backend or resolver could read as
another host is refused (`BadHost`, 400 `request.bad_host`), never guessed at: userinfo,
percent-escapes, raw non-ASCII (the wire carries A-labels; a policy's U-labels are
encoded at compile time, IDNA 2008 with UTS #46 mapping, by the `idna` package),
numeric names that are no dotted-quad IPv4 (`127.1`, `0x7f.0.0.1` resolve to loopback),
two `Host` fields, or an absolute-form target whose authority differs from `Host`.

`X-Forwarded-Host` is never read here: the sidecar puts a trusted hop's value into
`Host` before deciding (server/adapters.py); a client's copy selects nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from policyengine.decision import LowercaseHeaders

__all__ = ["BadHost", "HostSet", "canonical_host", "policy_host", "request_host"]


class BadHost(ValueError):
    """The request names its host in a malformed or ambiguous way; `str(e)` says how."""

    code: ClassVar[str] = "request.bad_host"


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")  # what resolvers read as a number
_ABSOLUTE = re.compile(r"(?i:https?)://([^/?#]*)")
_DEFAULT_PORTS = frozenset({"80", "443"})
MAX_NAME = 253  # RFC 1035 §2.3.4, without the trailing dot


def canonical_host(authority: str) -> str:
    """`host[:port]` as sent -> its canonical form; raises BadHost."""
    if not authority:
        raise BadHost("empty host")
    if not authority.isascii():
        raise BadHost("raw non-ASCII host (send its A-label, `xn--...`)")
    if "@" in authority:
        raise BadHost("userinfo in host")
    if authority.startswith("["):
        literal, bracket, port = authority[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise BadHost("malformed IPv6 literal in host")
        try:
            name = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            raise BadHost("malformed IPv6 literal in host") from None
        return name + _port(port[1:], bool(port))
    name, colon, port = authority.rpartition(":")
    if not colon:
        name, port = authority, ""
    return _name(name.lower()) + _port(port, bool(colon))


def _port(port: str, given: bool) -> str:
    if not given:
        return ""
    if not port.isdigit() or len(port) > 5 or int(port) > 65535:
        raise BadHost("malformed port in host")
    port = port.lstrip("0") or "0"
    return "" if port in _DEFAULT_PORTS else ":" + port


def _name(name: str) -> str:
    if name.endswith("."):
        name = name[:-1]  # one trailing dot: the same name, fully qualified
    if len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise BadHost("malformed host name")
    last = name.rpartition(".")[2]
    if _NUMERIC_LABEL.fullmatch(last):
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise BadHost("numeric host that is no dotted-quad IPv4 address") from None
    return name


def _host_field(headers: Mapping[str, str]) -> str | None:
    if type(headers) is LowercaseHeaders:
        return headers.get("host")
    found = None
    for name, value in headers.items():
        if len(name) == 4 and name.lower() == "host":
            if found is not None:
                raise BadHost("more than one `Host` field")
            found = value
    return found


def request_host(target: str, headers: Mapping[str, str]) -> str | None:
    """The canonical host a request is for; None when it names none (origin-form, no
    `Host`). Raises BadHost (400): RFC 9112 §3.2 wants exactly one valid `Host`."""
    field = _host_field(headers)
    if field is not None:
        field = _canonical_field(field)
    if target.startswith("/"):
        return field
    match = _ABSOLUTE.match(target)
    if match is None:
        return field  # not absolute-form: paths.py refuses such a target
    named = canonical_host(match[1])
    if field is not None and field != named:
        raise BadHost(f"the target names host `{named}` and `Host` names `{field}`")
    return named


# `Host` as sent -> canonical, or the refusal's message: a gateway repeats a few hosts,
# and reading one costs more than the rest of a route match. Bounded: clients send any.
_KNOWN: dict[str, str | BadHost] = {}
MAX_KNOWN = 1024


def _canonical_field(field: str) -> str:
    known = _KNOWN.get(field)
    if known is None:
        try:
            known = _read_field(field)
        except BadHost as err:
            known = err
        if len(_KNOWN) >= MAX_KNOWN:
            _KNOWN.clear()
        _KNOWN[field] = known
    if isinstance(known, BadHost):
        raise BadHost(str(known))
    return known


def _read_field(field: str) -> str:
    field = field.strip(" \t")
    if "," in field:  # two fields joined (RFC 9110 §5.3), or a list: which one?
        raise BadHost("more than one `Host` field")
    return canonical_host(field)


@dataclass(frozen=True, slots=True)
class HostSet:
    """The hosts a policy, group or route serves: exact names, and `*.suffix` patterns
    (with their port, if any), each matching exactly one more label."""

    exact: frozenset[str]
    suffixes: frozenset[str]
    text: str  # as the policy lists them, for messages

    def admits(self, host: str) -> bool:
        if host in self.exact:
            return True
        if not self.suffixes or host.startswith("["):
            return False
        first, dot, rest = host.partition(".")
        return bool(dot) and bool(first) and rest in self.suffixes

    def covers(self, other: HostSet) -> bool:
        """Whether every host `other` admits, this set admits too."""
        return all(self.admits(h) for h in other.exact) and all(
            s in self.suffixes for s in other.suffixes
        )

    @classmethod
    def of(cls, patterns: Iterable[str]) -> HostSet:
        """From canonical patterns (`policy_host` results)."""
        listed = list(dict.fromkeys(patterns))
        exact = frozenset(p for p in listed if not p.startswith("*."))
        suffixes = frozenset(p[2:] for p in listed if p.startswith("*."))
        return cls(exact, suffixes, ", ".join(listed))


def policy_host(text: str) -> str:
    """A host pattern as a policy writes it -> canonical; raises BadHost (a compile error).
    `*.` first matches one label; U-labels are encoded (IDNA 2008, UTS #46)."""
    wildcard = text.startswith("*.")
    rest = text[2:] if wildcard else text
    if "*" in rest:
        raise BadHost("`*` may only be the whole first label (`*.example.test`)")
    if not rest.isascii():
        rest = _a_labels(rest)
    canonical = canonical_host(rest)
    if wildcard and (canonical.startswith("[") or _is_ipv4(canonical)):
        raise BadHost("a wildcard needs a name, not an address")
    return "*." + canonical if wildcard else canonical


def _a_labels(text: str) -> str:
    import idna  # a compile-time dependency only: requests carry A-labels

    name, colon, port = text.rpartition(":")
    if not colon or not port.isdigit():
        name, colon, port = text, "", ""
    try:
        encoded = idna.encode(name.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as err:
        raise BadHost(f"not a valid internationalized name ({err})") from None
    return encoded + colon + port


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host.partition(":")[0])
    except ValueError:
        return False
    return True
