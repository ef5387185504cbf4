"""Whose forwarded headers are believed (kernel.proxies): nobody's by default; behind a trusted
proxy, the right-most untrusted hop of X-Forwarded-For, else of RFC 7239 Forwarded."""

from __future__ import annotations

import pytest

from archway.config import ConfigurationError, load_settings
from archway.kernel.grpc.limits import peer_address
from archway.kernel.proxies import TrustedProxies

PROXIES = TrustedProxies(["10.0.0.0/8", "2001:db8:ffff::/48"])


def test_nobody_is_trusted_by_default() -> None:
    assert not TrustedProxies()
    assert TrustedProxies().client_address("10.0.0.1", ["203.0.113.9"]) == "10.0.0.1"
    assert load_settings().trusted_proxies == []


def test_an_untrusted_peer_keeps_its_own_address_whatever_it_forwards() -> None:
    assert PROXIES.client_address("198.51.100.7", ["203.0.113.9"]) == "198.51.100.7"
    assert PROXIES.client_address("198.51.100.7", (), ["for=203.0.113.9"]) == "198.51.100.7"


@pytest.mark.parametrize(("forwarded_for", "client"), [
    (["203.0.113.9"], "203.0.113.9"),
    # The client wrote the left part: only the last untrusted hop counts.
    (["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
    (["6.6.6.6", "203.0.113.9, 10.1.1.1"], "203.0.113.9"),  # two header lines, one list
    (["203.0.113.9:4711"], "203.0.113.9"),
    (["[2001:db8::1]:4711"], "2001:db8::1"),
    (["2001:db8::1, 2001:db8:ffff::2"], "2001:db8::1"),
    (["unknown"], "10.0.0.1"),  # not an address: the proxy's own bucket, not one of its choice
    (["10.2.2.2, 10.3.3.3"], "10.0.0.1"),  # every hop ours
    ([], "10.0.0.1"),
])
def test_behind_a_trusted_proxy_the_right_most_untrusted_hop(
    forwarded_for: list[str], client: str
) -> None:
    assert PROXIES.client_address("10.0.0.1", forwarded_for) == client


def test_rfc_7239_forwarded_when_there_is_no_x_forwarded_for() -> None:
    value = 'for=6.6.6.6, for="[2001:db8::17]:4711";proto=https;by=10.0.0.1'
    assert PROXIES.client_address("10.0.0.1", (), [value]) == "2001:db8::17"
    assert PROXIES.client_address("10.0.0.1", ["203.0.113.9"], [value]) == "203.0.113.9"
    assert PROXIES.client_address("10.0.0.1", (), ["for=_hidden"]) == "10.0.0.1"


def test_the_setting_is_a_comma_list_checked_at_start_up() -> None:
    assert load_settings(trusted_proxies="10.0.0.0/8, ::1").trusted_proxies == ["10.0.0.0/8",
                                                                               "::1"]
    with pytest.raises(ConfigurationError, match="ARCHWAY_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.0.0/8,proxy.example")


@pytest.mark.parametrize(("peer", "address"), [
    ("ipv4:192.0.2.1:5000", "192.0.2.1"), ("ipv6:%5B2001:db8::1%5D:5000", "2001:db8::1"),
    ("ipv6:[::1]:5000", "::1"),
    ("unix:/tmp/socket", "unix"), (None, "unknown"),
])
def test_grpc_peers(peer: str | None, address: str) -> None:
    assert peer_address(peer) == address
