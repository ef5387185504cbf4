"""The gRPC server: grpcio's asyncio server with Archway's guard, the standard health service
and server reflection.

The guard is a server interceptor around every method of Archway's own services (``archway.*``;
health and reflection are left alone). For each call it

- authenticates the bearer token of the ``authorization`` metadata with the same verifier and
  user check as REST (``Authorization: Bearer <token>``; none → an anonymous call, which the
  service refuses where it needs a caller; an invalid one → ``UNAUTHENTICATED``), and hands the
  principal to the servicer through :func:`caller` / :func:`optional_caller`;
- maps every :class:`~archway.kernel.errors.ArchwayError` through ``kernel.grpc.status``, the one
  mapping, and any other exception to ``INTERNAL`` without its text (it is logged).

Deadlines: grpcio cancels a call's task when its deadline passes (or the client goes away), and
the cancellation reaches whatever the service awaits at that moment (a query, a wait for the
read models), so a call past its deadline stops its work. Servicers do nothing for it.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from archway.kernel.auth.principal import Principal
from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.errors import ArchwayError, Unauthenticated
from archway.kernel.grpc.status import internal_status, status_of

_log = logging.getLogger("archway.grpc")
_PRINCIPAL: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "archway_grpc_principal", default=None)
GUARDED_PREFIX = "/archway."


def optional_caller() -> Principal | None:
    """The principal of the call being served, ``None`` for an anonymous call."""
    return _PRINCIPAL.get()


def caller() -> Principal:
    """The principal of the call being served; an anonymous call is ``UNAUTHENTICATED``."""
    principal = _PRINCIPAL.get()
    if principal is None:
        raise Unauthenticated()
    return principal


class Authenticator:
    """Bearer tokens of the ``authorization`` metadata, as ``kernel.http.guard``'s
    ``BearerAuthenticator`` reads the header: verified, and their user still there."""

    def __init__(
        self, verifier: TokenVerifier, *, user_exists: Callable[[str], Awaitable[bool]]
    ) -> None:
        self._verifier = verifier
        self._user_exists = user_exists

    async def authenticate(self, metadata: Sequence[tuple[str, str | bytes]]) -> Principal | None:
        values = [value for key, value in metadata if key == "authorization"]
        if len(values) > 1 or any(isinstance(value, bytes) for value in values):
            raise Unauthenticated(
                "Send one access token as 'authorization: Bearer <token>'.",
                error="invalid_request")
        token = bearer_token(str(values[0])) if values else None
        if token is None:
            return None
        principal = await self._verifier.verify(token)
        if not await self._user_exists(principal.subject):
            raise Unauthenticated("The token's user no longer exists.", error="invalid_token")
        return principal


class Guard(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Authentication and the error mapping for every ``archway.*`` method (see above)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(GUARDED_PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        raise TypeError(f"{method}: Archway serves unary and server-streaming methods only")

    def _unary(
        self, method: str, behavior: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def unary(request: Any, context: Any) -> Any:
            try:
                await self._admit(context)
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except ArchwayError as exc:
                await context.abort_with_status(status_of(exc))
            except Exception:  # noqa: BLE001  # any bug: logged, never shown to the client
                _log.exception("gRPC %s failed", method)
                await context.abort_with_status(internal_status())

        return unary

    def _stream(
        self, method: str, behavior: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                await self._admit(context)
                async for response in behavior(request, context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except ArchwayError as exc:
                await context.abort_with_status(status_of(exc))
            except Exception:  # noqa: BLE001  # any bug: logged, never shown to the client
                _log.exception("gRPC %s failed", method)
                await context.abort_with_status(internal_status())

        return stream

    async def _admit(self, context: Any) -> None:
        _PRINCIPAL.set(await self._authenticator.authenticate(
            tuple(context.invocation_metadata() or ())))


Registration = Callable[[grpc.aio.Server], str]
"""Adds one service's servicer to a server and answers the service's full name."""


@dataclass
class GrpcServer:
    """One asyncio server on ``host:port`` (0: any free port, then :attr:`port` says which)."""

    host: str
    port: int
    authenticator: Authenticator
    registrations: Sequence[Registration]
    grace_seconds: float = 5.0
    _server: Any = field(default=None, init=False)
    _health: Any = field(default=None, init=False)

    async def start(self) -> int:
        server = grpc.aio.server(interceptors=[Guard(self.authenticator)])
        names = [register(server) for register in self.registrations]
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        bound: int = server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"cannot listen for gRPC on {address}")
        await server.start()
        for name in ("", *names):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server, self.port = server, bound
        return bound

    async def stop(self) -> None:
        """Health answers NOT_SERVING, calls in flight get ``grace_seconds``, then it stops."""
        if self._server is None:
            return
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self.grace_seconds)
        self._server = None
