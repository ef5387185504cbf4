"""The gRPC server: grpcio's asyncio server with Archway's guard, the standard health service
and server reflection.

The guard is a server interceptor around every method of Archway's own services (``archway.*``;
health and reflection are left alone). For each call it

- binds its request and trace ids and counts and times it (:mod:`.telemetry`);
- counts it against the rate limits, when the server has them (:mod:`.limits`): REST's
  limiter, caller and plans, under the route class its service declares for the method;
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

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from archway.kernel.auth.principal import Principal
from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.errors import ArchwayError, Unauthenticated
from archway.kernel.grpc.limits import CallLimits, Metadata
from archway.kernel.grpc.status import code_of, internal_status, status_of
from archway.kernel.grpc.telemetry import REQUEST_ID_KEY, CallTelemetry
from archway.kernel.observability.metrics import HttpMetrics
from archway.kernel.ratelimit.policy import RouteClass

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
    """Telemetry, rate limits, authentication and the error mapping for every ``archway.*``
    method (see above)."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        limits: CallLimits | None = None,
        metrics: HttpMetrics | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._limits = limits
        self._metrics = metrics
        self._route_classes: dict[str, RouteClass] = {}

    def classify(self, services: Sequence[Served]) -> None:
        """Learn each served method's route class; a method its service's table leaves out
        (or names wrongly) stops the server at start, not a call at run time."""
        for served in services:
            methods = {m.name for m in descriptor_pool.Default().FindServiceByName(
                served.name).methods}
            if methods != set(served.route_classes):
                raise ValueError(
                    f"{served.name}: route classes {sorted(served.route_classes)} are not its "
                    f"methods {sorted(methods)}")
            for name, cls in served.route_classes.items():
                self._route_classes[f"/{served.name}/{name}"] = cls

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
            async with self._serving(method, context, streaming=False) as told:
                response = await behavior(request, context)
                context.set_trailing_metadata(told)
                return response
            raise AssertionError("unreachable: a refusal aborts the call")  # for the type checker

        return unary

    def _stream(
        self, method: str, behavior: Callable[[Any, Any], AsyncIterator[Any]]
    ) -> Callable[[Any, Any], AsyncIterator[Any]]:
        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            # A stream is admitted once, here; it tells its metadata before its first message.
            async with self._serving(method, context, streaming=True):
                async for response in behavior(request, context):
                    yield response

        return stream

    @asynccontextmanager
    async def _serving(
        self, method: str, context: Any, *, streaming: bool
    ) -> AsyncIterator[Metadata]:
        """Around one call: its telemetry, its admission, and the one error mapping. Yields
        what the call tells its client (its request id, its rate limit's values): a stream
        sends it as initial metadata at once; a unary call sends it with its status, as
        trailing metadata, because sending initial metadata of its own is one more write per
        call (a quarter of GetProduct's calls per second: docs/protocols.md)."""
        call = CallTelemetry(self._metrics, method)
        told: Metadata = ()
        try:
            metadata = tuple(context.invocation_metadata() or ())
            call.start(metadata)
            told = ((REQUEST_ID_KEY, call.request_id),)
            if self._limits is not None:  # first, as REST counts a request before its token
                told = (*told, *await self._limits.admit(
                    self._route_classes.get(method, RouteClass.WRITES), metadata,
                    context.peer()))
            if streaming:
                await context.send_initial_metadata(told)
                told = ()  # told already; a refusal below need not repeat it
            _PRINCIPAL.set(await self._authenticator.authenticate(metadata))
            yield told
        except grpc.aio.AbortError:
            raise
        except asyncio.CancelledError:  # the client went away, or the deadline passed
            call.code = _cancellation(context)
            raise
        except Exception as exc:  # noqa: BLE001  # any error: mapped, never shown raw
            await self._refuse(method, context, call, exc, told)
        finally:
            call.finish(_final_code(context, call))

    @staticmethod
    async def _refuse(
        method: str, context: Any, call: CallTelemetry, exc: Exception, told: Metadata
    ) -> None:
        """The one mapping: an Archway error to its status, anything else (a bug) to
        ``INTERNAL`` without its text (logged), with what the call tells (``told``) among its
        trailers. Both abort: grpcio raises ``AbortError``."""
        if isinstance(exc, ArchwayError):
            call.code = code_of(exc)
            status = status_of(exc)
        else:
            _log.error("gRPC %s failed", method, exc_info=exc)
            call.code = grpc.StatusCode.INTERNAL
            status = internal_status()
        told_names = {name for name, _ in told}
        await context.abort_with_status(status._replace(trailing_metadata=(
            *told, *(item for item in status.trailing_metadata if item[0] not in told_names))))


def _cancellation(context: Any) -> grpc.StatusCode:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


def _final_code(context: Any, call: CallTelemetry) -> grpc.StatusCode:
    """What the call ended with: its refusal's code, else what the servicer set, else OK."""
    if call.code is not None:
        return call.code
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK


@dataclass(frozen=True, slots=True)
class Served:
    """A service a :data:`Registration` added: its full name and each method's route class
    (what the rate limits count it as; every method must have one)."""

    name: str
    route_classes: Mapping[str, RouteClass]


Registration = Callable[[grpc.aio.Server], Served]
"""Adds one service's servicer to a server and says what it added."""


@dataclass
class GrpcServer:
    """One asyncio server on ``host:port`` (0: any free port, then :attr:`port` says which)."""

    host: str
    port: int
    authenticator: Authenticator
    registrations: Sequence[Registration]
    limits: CallLimits | None = None
    metrics: HttpMetrics | None = None
    grace_seconds: float = 5.0
    _server: Any = field(default=None, init=False)
    _health: Any = field(default=None, init=False)

    async def start(self) -> int:
        guard = Guard(self.authenticator, limits=self.limits, metrics=self.metrics)
        server = grpc.aio.server(interceptors=[guard])
        served = [register(server) for register in self.registrations]
        guard.classify(served)
        names = [service.name for service in served]
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
