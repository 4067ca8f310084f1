"""Which address is the client: forwarded headers count only from trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from policyengine.server.clientip import ClientAddresses, TrustedProxies, parse_address

PROXIES = TrustedProxies.parse(["10.0.0.0/8", "fd00::/8"])
GATEWAY = ipaddress.ip_address("10.1.1.1")
STRANGER = ipaddress.ip_address("203.0.113.7")


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert PROXIES.client_ip(STRANGER, "198.51.100.1", "198.51.100.2") == "203.0.113.7"


def test_a_trusted_peer_passes_on_the_rightmost_untrusted_hop() -> None:
    # the client wrote the first entry itself; our gateway appended what it saw
    forwarded = "6.6.6.6, 198.51.100.9"
    assert PROXIES.client_ip(GATEWAY, forwarded, None) == "198.51.100.9"


def test_trusted_hops_are_skipped_from_the_right() -> None:
    forwarded = "6.6.6.6, 198.51.100.9, 10.2.2.2, 10.3.3.3"
    assert PROXIES.client_ip(GATEWAY, forwarded, None) == "198.51.100.9"


def test_a_chain_of_only_trusted_hops_ends_at_the_leftmost() -> None:
    assert PROXIES.client_ip(GATEWAY, "10.9.9.9, 10.3.3.3", None) == "10.9.9.9"


def test_a_malformed_hop_gives_no_client_address_rather_than_a_proxy_one() -> None:
    # a proxy address would pass `client_ip in 10.0.0.0/8`: garbage must not
    assert PROXIES.client_ip(GATEWAY, "198.51.100.9, junk", None) is None
    assert PROXIES.client_ip(GATEWAY, "junk, 10.3.3.3", None) is None


def test_x_real_ip_counts_from_a_trusted_peer_when_there_is_no_x_forwarded_for() -> None:
    assert PROXIES.client_ip(GATEWAY, None, "198.51.100.4") == "198.51.100.4"
    assert PROXIES.client_ip(GATEWAY, None, "not an address") is None
    assert PROXIES.client_ip(GATEWAY, "198.51.100.9", "198.51.100.4") == "198.51.100.9"


def test_a_trusted_peer_without_forwarded_headers_is_the_client() -> None:
    assert PROXIES.client_ip(GATEWAY, None, None) == "10.1.1.1"


def test_ipv6_hops_and_ipv4_mapped_peers() -> None:
    assert PROXIES.client_ip(ipaddress.ip_address("fd00::1"), "2001:db8::5", None) == "2001:db8::5"
    peer = PROXIES.peer("::ffff:10.1.1.1")
    assert peer is not None and peer.trusted and peer.text == "10.1.1.1"
    assert parse_address(" 192.0.2.1 ") == ipaddress.ip_address("192.0.2.1")


def test_no_trusted_proxy_means_no_forwarded_header_is_believed() -> None:
    assert TrustedProxies().client_ip(GATEWAY, "198.51.100.9", "198.51.100.4") == "10.1.1.1"


def test_a_bad_cidr_is_named() -> None:
    with pytest.raises(ValueError, match=r"`10\.0\.0\.1/8` is not a CIDR range"):
        TrustedProxies.parse(["10.0.0.1/8"])


def test_remembered_answers_are_the_same_answers() -> None:
    addresses = ClientAddresses(PROXIES)
    gateway = PROXIES.peer("10.1.1.1")
    stranger = PROXIES.peer("203.0.113.7")
    assert gateway is not None and stranger is not None
    for _ in range(2):  # computed, then remembered
        assert addresses.client_ip(gateway, "6.6.6.6, 198.51.100.9", None) == "198.51.100.9"
        assert addresses.client_ip(gateway, "junk", None) is None
        assert addresses.client_ip(stranger, "198.51.100.9", None) == "203.0.113.7"
    long_chain = ", ".join(["10.2.2.2"] * 100) + ", 198.51.100.1"
    assert addresses.client_ip(gateway, long_chain, None) == "198.51.100.1"
    assert len(addresses._known) == 2  # the long chain was not kept
