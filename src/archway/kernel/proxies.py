"""The client's address behind trusted proxies, for every protocol (HTTP's scope, gRPC's peer).

A call's address is its immediate peer's unless that peer is one of the configured trusted
proxies (``ARCHWAY_TRUSTED_PROXIES``: IPs or CIDRs; none by default, so no header is believed).
Behind a trusted proxy the address is the right-most entry of ``X-Forwarded-For`` that is not
itself a trusted proxy: each proxy appends the address it saw, so everything left of the last
untrusted hop was written by the client and may be forged. RFC 7239 ``Forwarded`` (its ``for=``
parameters) is read the same way when a request has no ``X-Forwarded-For``. An entry that is not
an address (``unknown``, an obfuscated ``_hidden`` node) stops the walk and the peer is kept:
such calls share the proxy's bucket rather than one of their own choosing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` / ``Forwarded`` headers are believed."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        """``networks``: IPs or CIDRs (``10.0.0.0/8``, ``::1``); a bad one is a ``ValueError``."""
        self._networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(text.strip(), strict=False) for text in networks if text.strip())

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, address: str) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self._networks)

    def client_address(
        self, peer: str, forwarded_for: Sequence[str] = (), forwarded: Sequence[str] = ()
    ) -> str:
        """The client's address for a call from ``peer`` carrying these header values (each
        a whole header line, in the order received)."""
        if not self._networks or not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        if not forwarded_for:
            hops = [_forwarded_for(element) for value in forwarded for element in value.split(",")]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer
            if not any(address in network for network in self._networks):
                return str(address)
        return peer  # every hop a proxy of ours: the call came from inside


def _forwarded_for(element: str) -> str:
    """The ``for=`` node of one RFC 7239 element (``for="[2001:db8::1]:4711";proto=https``)."""
    for pair in element.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.lower() == "for":
            return value.strip().strip('"')
    return ""


def _address(text: str) -> IPAddress | None:
    """An IP from ``192.0.2.1``, ``192.0.2.1:443``, ``2001:db8::1`` or ``[2001:db8::1]:443``."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
