"""One parsed HTTP request as the connection hands it to the app."""

from __future__ import annotations

from policyengine.request import LowercaseHeaders, join_field
from policyengine.server.clientip import Peer

Fields = list[tuple[bytes, bytes]]  # header fields as received: names in any case, repeats


class HttpRequest:
    """A plain class, not a NamedTuple: compiled by mypyc it is built without running
    interpreted code (a NamedTuple's __new__ is Python), 0.2 µs a request."""

    __slots__ = ("_headers", "body", "client", "fields", "method", "target")

    def __init__(
        self, method: str, target: str, fields: Fields, body: bytes, client: Peer | None
    ) -> None:
        self.method = method
        self.target = target  # path and query, as sent
        self.fields = fields
        self.body = body
        self.client = client  # the TCP peer (None for a socket without an IP address)
        self._headers: LowercaseHeaders | None = None

    @property
    def headers(self) -> LowercaseHeaders:
        """Names lowercased, repeated fields joined (RFC 9110, 5.3). Built on first use:
        a request the decision cache answers never needs them (0.3 µs)."""
        if self._headers is None:
            self._headers = combine(self.fields)
        return self._headers


def add_header(headers: dict[str, str], name: str, value: str) -> None:
    """Combine a repeated field into one value, as RFC 9110 (5.3) allows."""
    previous = headers.get(name)
    headers[name] = value if previous is None else join_field(name, previous, value)


# Field names as sent -> lowercased text. Clients send the same few names on every
# request, so a lookup replaces a decode and a lowercase per field; bounded, since a
# client may send names at will.
_NAMES: dict[bytes, str] = {}
MAX_NAMES = 1024


def combine(fields: Fields) -> LowercaseHeaders:
    """Header fields as received -> names lowercased, repeated fields joined.

    Bytes are decoded as Latin-1, which maps every byte to one character and back.
    """
    headers = LowercaseHeaders()
    for name, value in fields:
        text = field_name(name)
        if text in headers:  # a repeated field
            add_header(headers, text, value.decode("latin-1"))
        else:
            headers[text] = value.decode("latin-1")
    return headers


def field_name(name: bytes) -> str:
    """A field name as sent -> lowercased text."""
    text = _NAMES.get(name)
    if text is None:
        if len(_NAMES) >= MAX_NAMES:
            _NAMES.clear()
        text = _NAMES[name] = name.decode("latin-1").lower()
    return text
