"""Rate limits on gRPC calls: REST's limiter, caller and plans, read from a call's metadata.

The guard (:mod:`.server`) asks :meth:`CallLimits.admit` before anything else for every
``archway.*`` method (health and reflection are never counted), so a call is counted as a REST
request is: by its bearer token's subject (``authorization`` metadata), else its API key
(``x-api-key``), else its peer's address (behind a trusted proxy, the forwarded client:
:mod:`archway.kernel.proxies`), against the same limiter instance and store, under the route
class its service declares for the method (each context's ``grpc.py``: ``ROUTE_CLASSES``). A
server-streaming call (``WatchOrder``) counts once, when it starts.

Under the limit the ``ratelimit-policy`` and ``ratelimit`` values go back as initial metadata;
over it the call is ``RESOURCE_EXHAUSTED`` with ``google.rpc.RetryInfo`` and those values plus
``retry-after`` as trailers (``kernel.grpc.status``, the one mapping, from ``RateLimited``).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

from archway.kernel.auth.api_keys import API_KEY_HEADER
from archway.kernel.auth.callers import Caller, Callers
from archway.kernel.proxies import TrustedProxies
from archway.kernel.ratelimit.limiter import RateLimiter
from archway.kernel.ratelimit.policy import RouteClass

Metadata = Sequence[tuple[str, str | bytes]]


class CallLimits:
    def __init__(
        self, limiter: RateLimiter, callers: Callers, *, proxies: TrustedProxies | None = None
    ) -> None:
        self._limiter = limiter
        self._callers = callers
        self._proxies = proxies or TrustedProxies()

    async def admit(self, cls: RouteClass, metadata: Metadata, peer: str) -> Metadata:
        """Count one call; the metadata that tells its count, or ``RateLimited`` past the
        limit (``ServiceBusy`` when the store is down and the limiter fails closed)."""
        decision = await self._limiter.admit(await self.caller(metadata, peer), cls,
                                             protocol="grpc")
        if decision is None:  # failing open: nothing counted, nothing to tell
            return ()
        if not decision.allowed:
            raise decision.refusal()
        return tuple((name.decode(), value.decode()) for name, value in decision.headers)

    async def caller(self, metadata: Metadata, peer: str) -> Caller:
        address = peer_address(peer)
        if self._proxies:
            address = self._proxies.client_address(
                address, _values(metadata, "x-forwarded-for"), _values(metadata, "forwarded"))
        authorization = _values(metadata, "authorization")
        api_key = _values(metadata, API_KEY_HEADER)
        return await self._callers.identify(
            authorization[0] if authorization else None, api_key[0] if api_key else None,
            address)


def peer_address(peer: str | None) -> str:
    """The IP of grpcio's peer string (``ipv4:192.0.2.1:5000``, ``ipv6:%5B2001:db8::1%5D:5000``:
    a URI, so IPv6's brackets come percent-encoded); the transport's name for any other
    (``unix``)."""
    kind, _, rest = unquote(peer or "unknown").partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        return rest[1:].partition("]")[0] if rest.startswith("[") else rest
    return kind


def _values(metadata: Metadata, key: str) -> list[str]:
    """The text values of ``key`` (binary ``-bin`` values never carry these)."""
    return [value for name, value in metadata if name == key and isinstance(value, str)]

