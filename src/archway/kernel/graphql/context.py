"""Who is calling a GraphQL operation, and the per-request DataLoaders.

The caller is authenticated once per request with the same verifier (and the same check that
the token's user still exists) as REST's route guard, and with the same rule: no token is an
anonymous caller, a token that is sent must be valid. A field that needs a caller raises
``Unauthenticated`` without one; scopes, roles and owners are the services' checks, as they
are for REST. DataLoaders live as long as the request, so one request's batching and caching
never serve another caller.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from archway.kernel.auth.principal import Principal
from archway.kernel.errors import ArchwayError, Unauthenticated

HeaderAuthenticator = Callable[[str], Awaitable[Principal | None]]
K = TypeVar("K")
V = TypeVar("V")


class GraphQLContext(BaseContext):
    """One operation's caller (or why it has none), the services its fields call (by context
    name: the composition root hands them in, each context's fields take their own), and its
    loaders, made on first use."""

    def __init__(
        self,
        services: Mapping[str, object],
        principal: Principal | None,
        refusal: ArchwayError | None = None,
        *,
        authenticate_header: HeaderAuthenticator | None = None,
    ) -> None:
        super().__init__()
        self.services = services
        self.connection_params: object = None  # graphql-transport-ws's connection_init payload
        self._principal = principal
        self._refusal = refusal
        self._authenticate_header = authenticate_header
        self._loaders: dict[str, DataLoader[Any, Any]] = {}

    async def authenticate_with(self, authorization: str) -> None:
        """The caller of a websocket whose token came in its first message: checked like a
        header (a refused one refuses every operation on the connection)."""
        if self._authenticate_header is None:
            raise Unauthenticated("This endpoint takes no token here.")
        try:
            self._principal, self._refusal = await self._authenticate_header(authorization), None
        except ArchwayError as refusal:
            self._principal, self._refusal = None, refusal

    @property
    def caller(self) -> Principal:
        """The authenticated caller; ``UNAUTHENTICATED`` for an anonymous or refused one."""
        if self._refusal is not None:
            raise self._refusal
        if self._principal is None:
            raise Unauthenticated()
        return self._principal

    @property
    def optional_caller(self) -> Principal | None:
        """The caller if any (public fields); a token that was sent but refused still fails."""
        if self._refusal is not None:
            raise self._refusal
        return self._principal

    def loader(
        self, name: str, load: Callable[[list[K]], Awaitable[list[V]]]
    ) -> DataLoader[K, V]:
        """This request's loader called ``name`` (one batch per name and tick)."""
        existing = self._loaders.get(name)
        if existing is None:
            existing = self._loaders[name] = DataLoader(load_fn=load)
        return existing


async def authenticated(
    services: Mapping[str, object],
    authenticate: Callable[[], Awaitable[Principal | None]],
    authenticate_header: HeaderAuthenticator | None = None,
) -> GraphQLContext:
    """The context of a request whose credentials ``authenticate`` checks."""
    try:
        principal, refusal = await authenticate(), None
    except ArchwayError as error:
        principal, refusal = None, error
    return GraphQLContext(
        services, principal, refusal, authenticate_header=authenticate_header)
