"""``/graphql``: the schema with its limits and caches, served as one route of the app.

A GraphQL request is an HTTP request like any other: it runs inside every HTTP service default
(request ids, metrics, access log, security headers, body limit, CORS), except the rate limits,
which count each operation by its type instead (``kernel.graphql.rate_limits``). The caller is
authenticated once per request by the same authenticator as REST's route guard.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse
from strawberry import Schema
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from archway.graphql.schema import Mutation, Query, Subscription
from archway.kernel.graphql.context import GraphQLContext, authenticated
from archway.kernel.graphql.errors import map_errors
from archway.kernel.graphql.limits import cost_limit
from archway.kernel.graphql.rate_limits import OperationRateLimits
from archway.kernel.graphql.types import SCALARS
from archway.kernel.http.docs_pages import graphiql_html, page_headers
from archway.kernel.http.guard import BearerAuthenticator

PATH = "/graphql"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one operation may ask for (defaults documented in docs/protocols.md)."""

    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2_000
    max_cost: int = 5_000
    cached_documents: int = 256


class ArchwaySchema(Schema):
    """Strawberry's schema, whose every result has its errors mapped (``map_errors``): here
    rather than in an extension, which a document the parser cache refuses never reaches."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """A query's or a mutation's result. A subscription is streamed (websockets, SSE) or
        refused: run as one plain answer, its resolver's stream would fail as a bug, so it is
        not allowed here (Strawberry's view answers a 400 that says so)."""
        allowed = set(allowed_operation_types or (OperationType.QUERY, OperationType.MUTATION))
        result = await super().execute(
            query, variable_values, context_value, root_value, operation_name,
            allowed - {OperationType.SUBSCRIPTION}, operation_extensions)
        result.errors = map_errors(result.errors)
        return result

    async def stream(self, *args: Any, **kwargs: Any) -> StreamResult:
        """Subscriptions' results (over graphql-transport-ws) mapped like any other's."""
        results = await super().stream(*args, **kwargs)

        async def mapped() -> StreamResult:
            async for result in results:
                if isinstance(result, ExecutionResult):
                    result.errors = map_errors(result.errors)
                yield result

        return mapped()

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Nothing to log: a client's mistake is its answer, and a bug is logged once, with
        its traceback, where errors are mapped (``kernel.graphql.errors.mapped``)."""


def build_schema(
    limits: Limits = Limits(), rate_limits: OperationRateLimits | None = None
) -> Schema:
    # The limits' validation rules are made once: the validation cache keys a document by
    # its rules too, and Strawberry's limiters make a new rule class per instance (per
    # request, as factories), which would make every validation a miss.
    rules = [
        *QueryDepthLimiter(max_depth=limits.max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=limits.max_aliases).validation_rules,
        cost_limit(limits.max_cost),
    ]
    return ArchwaySchema(
        query=Query, mutation=Mutation, subscription=Subscription,
        config=StrawberryConfig(scalar_map=SCALARS),
        # Factories: a fresh extension per operation (the caches are shared, per size).
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
            lambda: ParserCache(maxsize=limits.cached_documents),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=limits.cached_documents),
            *([] if rate_limits is None else [rate_limits.extension]),
        ])


class ArchwayGraphQLRouter(GraphQLRouter[GraphQLContext, None]):
    """Strawberry's router, whose GraphiQL page loads Archway's own copies of its assets
    (Strawberry's loads them from a CDN): ``GET /graphql`` from a browser works offline."""

    page = graphiql_html("Archway GraphiQL", PATH)
    headers = page_headers(page)  # its own inline script by hash, its assets, calls to itself

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(self.page, headers=self.headers)

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: a browser cannot send headers with a websocket, so a token
        may come in ``connection_init``'s payload instead, ``{"Authorization": "Bearer …"}``;
        it is checked like the header (a refused one refuses every operation)."""
        params = getattr(context, "connection_params", None)
        authorization = params.get("Authorization") if isinstance(params, dict) else None
        if isinstance(authorization, str):
            await context.authenticate_with(authorization)
        unset: UnsetType = UNSET
        return unset


def build_router(
    services: Mapping[str, object],
    authenticator: BearerAuthenticator,
    limits: Limits = Limits(),
    rate_limits: OperationRateLimits | None = None,
) -> ArchwayGraphQLRouter:
    """``/graphql``: POST (and GET for queries; GraphiQL for a browser) over ``services``,
    keyed by context name; ``rate_limits``: each operation counted by the app's limiter."""

    async def context(connection: HTTPConnection) -> GraphQLContext:
        """A request's or a websocket's: both may carry ``Authorization``."""
        return await authenticated(
            services, lambda: authenticator.authenticate(connection),
            authenticator.authenticate_header)

    return ArchwayGraphQLRouter(
        build_schema(limits, rate_limits), path=PATH, context_getter=context,
        graphql_ide="graphiql", include_in_schema=False)

