"""Which address is the client: the peer, unless the peer is a proxy we were told to trust.

A forwarded header is a claim made by whoever sent it. We believe it only from a
configured proxy, and read X-Forwarded-For from the right: each proxy appends the
address it saw, so the rightmost entry that is not one of our proxies is the first
address nobody we trust could have made up. Entries further left were written by
the client itself and are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return address


class Peer(NamedTuple):
    """The other end of one connection, worked out once per connection."""

    address: IPAddress
    text: str
    trusted: bool  # one of the configured proxies: its forwarded headers count


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, cidrs: Iterable[str]) -> TrustedProxies:
        """From `--trusted-proxy` values; raises ValueError naming the bad one."""
        networks = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=True))
            except ValueError as err:
                raise ValueError(f"`{cidr}` is not a CIDR range ({err})") from None
        return cls(tuple(networks))

    def peer(self, host: str) -> Peer | None:
        address = parse_address(host)
        if address is None:
            return None
        return Peer(address, str(address), self.trusts(address))

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in net for net in self.networks)

    def client_ip(
        self, peer: IPAddress, forwarded_for: str | None, real_ip: str | None
    ) -> str | None:
        """The client's address for a request from `peer`; None when the chain is broken.

        A malformed hop gives None rather than a nearby proxy's address: a policy
        rule like `client_ip in 10.0.0.0/8` must not pass because of garbage.
        """
        if not self.trusts(peer):
            return str(peer)
        if forwarded_for:
            hop: IPAddress | None = peer
            for entry in reversed(forwarded_for.split(",")):
                hop = parse_address(entry)
                if hop is None:
                    return None
                if not self.trusts(hop):
                    return str(hop)
            return str(hop)  # every hop is one of ours: the leftmost is the client
        if real_ip:
            address = parse_address(real_ip)
            return str(address) if address is not None else None
        return str(peer)


class ClientAddresses:
    """`TrustedProxies.client_ip` for trusted peers, remembered.

    A gateway repeats the same few forwarded chains, and parsing one costs more than
    a whole route match; only short chains are kept, so memory stays bounded.
    """

    MAX_ENTRIES = 4096
    MAX_KEY_CHARS = 256

    def __init__(self, proxies: TrustedProxies) -> None:
        self.proxies = proxies
        self._known: dict[tuple[str, str | None, str | None], str | None] = {}

    def client_ip(self, peer: Peer, forwarded_for: str | None, real_ip: str | None) -> str | None:
        if not peer.trusted:
            return peer.text
        key = (peer.text, forwarded_for, real_ip)
        try:
            return self._known[key]
        except KeyError:
            pass
        found = self.proxies.client_ip(peer.address, forwarded_for, real_ip)
        if len(forwarded_for or "") + len(real_ip or "") <= self.MAX_KEY_CHARS:
            if len(self._known) >= self.MAX_ENTRIES:
                self._known.clear()
            self._known[key] = found
        return found
