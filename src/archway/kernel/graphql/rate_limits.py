"""Rate limits on GraphQL operations: REST's limiter, caller and plans, one count per operation.

``/graphql`` is left alone by the HTTP rate-limit middleware (a POST's method does not tell a
query from a mutation): this schema extension counts each operation once, when its document
has parsed and its type is known, a query as a read and a mutation as a write (the whole
operation is one request, however many fields it asks for); a mutation that registers
(``register``, REST's ``POST /users``) counts in the strict ``auth`` class, as REST's does, so
GraphQL is no way around it. A subscription over
graphql-transport-ws counts once, when it subscribes; queries and mutations sent over the
websocket count like any other. A document that does not parse counts as a read (its answer is
an error already).

Past the limit the operation is not run: its answer is a GraphQL error ``RATE_LIMITED`` with
``extensions.retryAfter`` (seconds), through the one GraphQL mapping (``kernel.graphql.errors``),
and the HTTP answer keeps REST's ``RateLimit-Policy``, ``RateLimit`` and ``Retry-After``
headers. Its status stays **200**, as the GraphQL-over-HTTP spec asks for an
``application/json`` answer (what Strawberry sends) and as every other GraphQL refusal here
is: clients such as ``gql`` read a JSON body with ``errors`` the same under any status and raise
it as a ``TransportQueryError`` with its extensions (which its retrying session does not retry
blindly), and keep the headers (``transport.response_headers``); a 429 would add nothing for
them and would make browsers' and proxies' generic error paths hide the GraphQL body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from graphql import DocumentNode, FieldNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from archway.kernel.errors import ArchwayError
from archway.kernel.http.caller import CallerIdentifier
from archway.kernel.ratelimit.limiter import RateLimiter
from archway.kernel.ratelimit.policy import RouteClass


class OperationRateLimits:
    """What the extension needs: the app's limiter and its caller identifier."""

    def __init__(
        self,
        limiter: RateLimiter,
        identify: CallerIdentifier,
        *,
        auth_mutations: frozenset[str] = frozenset(),
    ) -> None:
        """``auth_mutations``: the mutation fields of REST's ``auth`` class (registering);
        an operation that selects one counts as ``auth``, as ``POST /users`` does."""
        self.limiter = limiter
        self.identify = identify
        self.auth_mutations = auth_mutations

    def route_class(self, kind: OperationType, fields: frozenset[str] | None) -> RouteClass:
        """A query (or subscription) is a read, a mutation a write, or ``auth`` when it selects
        an auth mutation, or when its top level is a fragment (which this does not unfold)."""
        if kind is not OperationType.MUTATION:
            return RouteClass.READS
        if fields is None or fields & self.auth_mutations:
            return RouteClass.AUTH
        return RouteClass.WRITES

    def extension(self) -> SchemaExtension:
        """A fresh extension for one operation (the schema takes it as a factory)."""
        return _CountOperation(self)


class _CountOperation(SchemaExtension):
    def __init__(self, limits: OperationRateLimits) -> None:
        super().__init__()
        self._limits = limits
        self._counted = False
        self._refusal: ArchwayError | None = None

    async def on_validate(self) -> AsyncIterator[None]:
        """Counted before validation: the document has parsed and its operation's type is
        known. A refusal waits for :meth:`on_execute`, the one hook whose errors every path
        (a query's, a subscription's) answers as GraphQL errors."""
        context = self.execution_context
        document = context.graphql_document
        fields = None if document is None else top_fields(document, context.operation_name)
        try:
            await self._admit(self._limits.route_class(context.operation_type, fields))
        except ArchwayError as refusal:
            self._refusal = refusal
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        if self._refusal is not None:
            raise self._refusal
        yield

    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield  # a document the parser refuses comes back as an exception thrown in here
        finally:
            if not self._counted:  # refused before validation (it did not parse): a read
                # Over the limit, or failing closed: the answer is an error already.
                with suppress(ArchwayError):
                    await self._admit(RouteClass.READS)

    async def _admit(self, cls: RouteClass) -> None:
        self._counted = True
        context: Any = self.execution_context.context
        connection = getattr(context, "request", None)
        if connection is None:  # executed without a connection (a test's schema call)
            return
        params = getattr(context, "connection_params", None)  # graphql-transport-ws's
        token = params.get("Authorization") if isinstance(params, dict) else None
        caller = await self._limits.identify(
            connection.scope, authorization=token if isinstance(token, str) else None)
        decision = await self._limits.limiter.admit(caller, cls, protocol="graphql")
        if decision is None:  # failing open: nothing counted, nothing to tell
            return
        response = getattr(context, "response", None)
        if response is not None:  # an HTTP answer (a websocket has no headers to add)
            for name, value in decision.headers:
                response.headers.append(name.decode(), value.decode())
            if not decision.allowed:
                response.headers["retry-after"] = str(decision.retry_after)
        if not decision.allowed:
            raise decision.refusal()


def top_fields(document: DocumentNode, operation_name: str | None) -> frozenset[str] | None:
    """The field names an operation selects at its top level; ``None`` when it spreads a
    fragment there."""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if operation_name is not None and (
                definition.name is None or definition.name.value != operation_name):
            continue
        selections = definition.selection_set.selections
        if not all(isinstance(selection, FieldNode) for selection in selections):
            return None
        return frozenset(selection.name.value for selection in selections
                         if isinstance(selection, FieldNode))
    return None
