"""Decisions reused for identical requests: the sidecar's fast path.

Gateways ask about the same caller on the same route again and again (every page
load, every poll). The engine marks a decision reusable (`Decision.reuse_until`)
when it was reached from the method, the target and the credentials alone: no body
was read, no authn step failed in a way that may pass. A decision of a limited route
is reusable the same way (`Decision.metered`), except that each reuse takes from its
limits again (Engine.take_again): only the counting is done per request.
Such a decision is kept under a key made of everything a decision of the policy can
read (`CompiledPolicy.inputs`): the fields that carry the original method and URI,
the header fields its authn blocks, conditions and limit keys read, and, when
anything reads the client address, the peer and the forwarded-for fields. A request
that differs in any of them is decided afresh; one that agrees gets the same answer.

An entry lives until the decision's own horizon (the credential's expiry, the authn
cache's horizon), at most MAX_SECONDS, and never across a reload: the cache belongs
to one engine. The keys hold credentials as sent, as the request itself does, for
at most MAX_SECONDS; like the engine's token cache they are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from policyengine.decision import Decision, join_field
from policyengine.engine import Engine
from policyengine.server.message import MAX_NAMES, HttpRequest, field_name
from policyengine.server.metrics import Series
from policyengine.server.responses import Response

MAX_SECONDS = 10.0
DEFAULT_ENTRIES = 10_000
# where forward-auth finds the original request (adapters.forward_auth_request)
ORIGINAL_FIELDS = ("x-original-method", "x-forwarded-method", "x-original-uri", "x-forwarded-uri")
FORWARDED_FIELDS = ("x-forwarded-for", "x-real-ip")  # what the client address comes from

Key = tuple[str | None, ...]


class Reused:
    """A kept decision. A plain class: compiled, its fields are read without a lookup."""

    __slots__ = ("decision", "expires", "method", "response", "series", "target")

    def __init__(
        self,
        decision: Decision,
        response: Response | None,
        method: str,
        target: str,
        series: Series,
    ) -> None:
        self.decision = decision
        # an allow's response is the same every time; a deny's has its own decision id
        self.response = response
        self.method = method  # the original request, for the decision log
        self.target = target
        self.series = series  # where it is counted in the metrics
        self.expires = 0.0  # in the engine's clock; set by put


class DecisionCache:
    """One engine's reusable decisions, bounded in entries (the oldest go first).

    A decision is kept only when its key comes back: a key seen once (a new order id
    on every request) would only push out keys that do come back, and cost a Reused
    and a key kept alive. The keys seen once are remembered by their hash only.
    """

    __slots__ = (
        "_clock",
        "_direct",
        "_direct_blank",
        "_direct_places",
        "_entries",
        "_forward_auth",
        "_forward_auth_blank",
        "_forward_auth_places",
        "_peer",
        "_seen_once",
        "engine",
        "size",
    )

    def __init__(self, engine: Engine, size: int = DEFAULT_ENTRIES) -> None:
        inputs = engine.policy.inputs
        self.engine = engine
        self.size = size
        self._clock: Callable[[], float] = engine.clock
        self._entries: dict[Key, Reused] = {}
        self._seen_once: set[int] = set()
        client = FORWARDED_FIELDS if inputs.client_ip else ()
        # the peer's trust decides whether forwarded fields count: in the key then too
        self._peer = inputs.client_ip or bool(inputs.forwarded)
        # each field's place in a key: after the endpoint and the peer (and for Envoy,
        # after the method and the target)
        forward_auth = (*ORIGINAL_FIELDS, *inputs.headers, *client)
        direct = (*inputs.headers, *client)
        self._forward_auth = {name: 2 + i for i, name in enumerate(forward_auth)}
        self._direct = {name: 4 + i for i, name in enumerate(direct)}
        # the same by field name as sent (0: not in the key): one lookup a field
        self._forward_auth_places: dict[bytes, int] = {}
        self._direct_places: dict[bytes, int] = {}
        self._forward_auth_blank: list[str | None] = [None] * len(forward_auth)
        self._direct_blank: list[str | None] = [None] * len(direct)

    def key(self, endpoint: str, http: HttpRequest) -> Key:
        """Forward-auth reads the original method and URI from header fields alone;
        Envoy's check request carries them as its own method and target.

        Read from the fields as received, joined as `HttpRequest.headers` joins them,
        so that a request answered here never builds its header dict."""
        client = http.client
        if client is None:
            peer = None
        elif self._peer:
            peer = client.text
        else:  # a trusted peer's X-Forwarded-Host is the host (adapters.gateway_headers)
            peer = "trusted" if client.trusted else "untrusted"
        if endpoint == "forward-auth":
            parts: list[str | None] = [endpoint, peer, *self._forward_auth_blank]
            slots, places = self._forward_auth, self._forward_auth_places
        else:
            parts = [endpoint, peer, http.method, http.target, *self._direct_blank]
            slots, places = self._direct, self._direct_places
        for name, raw in http.fields:
            index = places.get(name)
            if index is None:
                index = _place(places, slots, name)
            if index:
                value = raw.decode("latin-1")
                previous = parts[index]
                if previous is not None:
                    value = join_field(field_name(name), previous, value)
                parts[index] = value
        return tuple(parts)

    def get(self, key: Key) -> Reused | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.expires:
            del self._entries[key]
            return None
        return entry

    def admits(self, key: Key) -> bool:
        """Whether a decision for `key` is worth keeping: its key was seen before.
        (Two keys of one hash only get one of them kept a request early.)"""
        seen = self._seen_once
        digest = hash(key)
        if digest in seen:
            seen.discard(digest)
            return True
        if len(seen) >= self.size:
            seen.clear()
        seen.add(digest)
        return False

    def put(self, key: Key, entry: Reused) -> None:
        until = reusable_until(entry.decision)
        if until <= 0.0:
            return
        expires = min(until, self._clock() + MAX_SECONDS)
        entries = self._entries
        if len(entries) >= self.size:
            self._evict_oldest(max(1, self.size // 4))
        entry.expires = expires
        entries[key] = entry

    def _evict_oldest(self, count: int) -> None:
        """A quarter at a time: deleting from the front of a dict leaves holes that the
        next look for its first key must step over, so one at a time costs O(size)."""
        entries = self._entries
        for key in list(islice(entries, count)):
            del entries[key]


def reusable_until(decision: Decision) -> float:
    """Until when a decision may answer the same request again (0.0: never)."""
    metered = decision.metered
    return decision.reuse_until if metered is None else metered.until


def _place(places: dict[bytes, int], slots: dict[str, int], name: bytes) -> int:
    """A field name as sent -> its place in a key, remembered (bounded: a client may
    send names at will)."""
    if len(places) >= MAX_NAMES:
        places.clear()
    index = places[name] = slots.get(field_name(name), 0)
    return index
