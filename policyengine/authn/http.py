"""The two HTTP calls authn makes (fetch a JWK Set, POST an introspection), with urllib.

The stdlib is enough: both calls are rare (their results are cached), small, and
need no connection pool; a client library would add a dependency for nothing.
Redirects are not followed: a redirect would carry the client secret or the token
to a place the policy did not name. Proxies from the environment are honoured.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from policyengine.jsonbody import InvalidJson, parse_json

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)


class FetchError(Exception):
    """The remote end could not give a usable answer; the message names no secret."""


@dataclass(frozen=True, slots=True)
class JsonResponse:
    value: Any
    max_age: float | None  # from Cache-Control; 0 for no-cache/no-store


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def url_problem(url: str) -> str | None:
    """Why a URL may not be used for keys or introspection, or None.

    Plain http lets anyone on the path swap the keys or read the secret, so only
    loopback addresses (a local sidecar IdP, tests) may use it.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return None
    return "must be an https URL (plain http only for loopback addresses)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_json(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """GET (or POST `data`) and parse a JSON answer; FetchError for anything but 200 JSON."""
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Accept": "application/json", "User-Agent": "policyengine", **(headers or {})},
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
            body = response.read(max_bytes + 1)
            cache_control = response.headers.get("Cache-Control", "")
    except urllib.error.HTTPError as err:
        raise FetchError(f"HTTP {err.code}") from None
    except (urllib.error.URLError, OSError) as err:
        raise FetchError(
            type(err).__name__
            if isinstance(err, TimeoutError)
            else f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        ) from None
    if status != 200:
        raise FetchError(f"HTTP {status}")
    if len(body) > max_bytes:
        raise FetchError(f"answer larger than {max_bytes} bytes")
    try:
        value = parse_json(body)  # strict: an IdP's duplicate `active` is no answer
    except InvalidJson:
        raise FetchError("answer is not plain JSON") from None
    return JsonResponse(value, _max_age(cache_control))


def _max_age(cache_control: str) -> float | None:
    if _NO_CACHE.search(cache_control):
        return 0.0
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None
