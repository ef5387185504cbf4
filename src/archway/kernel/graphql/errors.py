"""GraphQL errors: the one place where Archway's errors become GraphQL answers.

The twin of :mod:`archway.kernel.http.problems`: a resolver raises the same typed errors the
services raise, and :func:`mapped` gives each error a stable ``extensions.code`` (walking the
exception's MRO, so a subclass needs no entry); the schema maps every result it answers, a
query's, a mutation's and each of a subscription's (``graphql.endpoint``). Invalid values
carry their field paths in ``extensions.fields``, each path in GraphQL's form: argument names
and list indexes, in camelCase (``["input", "lines", 0, "productId"]``). Anything that is not
an Archway error is a bug: it is logged with its traceback and shown only as
``INTERNAL_SERVER_ERROR``. A client's
mistake is never an HTTP 5xx: the answer is a 200 with ``errors`` (or a 400 for a request that
is not GraphQL at all, as Strawberry answers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from archway.kernel.errors import (
    AlreadyApplied,
    ArchwayError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServiceBusy,
    Unauthenticated,
    Unavailable,
)
from archway.kernel.graphql.limits import LIMITED, is_limit

_log = logging.getLogger("archway.graphql")

CODE_BY_ERROR: dict[type[ArchwayError], str] = {
    BadRequest: "BAD_USER_INPUT",
    InvalidInput: "BAD_USER_INPUT",
    Unauthenticated: "UNAUTHENTICATED",
    Forbidden: "FORBIDDEN",
    NotFound: "NOT_FOUND",
    AlreadyApplied: "CONFLICT",
    Unavailable: "CONFLICT",
    Conflict: "CONFLICT",
    PreconditionFailed: "PRECONDITION_FAILED",
    PayloadTooLarge: "BAD_USER_INPUT",
    RateLimited: "RATE_LIMITED",
    ServiceBusy: "SERVICE_BUSY",
    ArchwayError: "BAD_USER_INPUT",
}
INTERNAL = "INTERNAL_SERVER_ERROR"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
# The REST parameters a service names in its errors, as GraphQL's arguments call them.
_ARGUMENT_OF_PARAMETER = {"cursor": "after", "limit": "first"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def graphql_path(error: FieldError) -> list[str | int]:
    """A protocol-neutral field path in GraphQL's form: ``("lines", 0, "product_id")`` →
    ``["lines", 0, "productId"]``; a REST parameter by its argument's name (``after``)."""
    if error.parameter and len(error.path) == 1 and error.path[0] in _ARGUMENT_OF_PARAMETER:
        return [_ARGUMENT_OF_PARAMETER[str(error.path[0])]]
    return [camel(part) if isinstance(part, str) else part for part in error.path]


@contextmanager
def argument(name: str) -> Iterator[None]:
    """Inside, invalid values of a body (``("lines", 0, "quantity")``) are values of the
    argument ``name`` (``["input", "lines", 0, "quantity"]``): REST's body is GraphQL's
    ``input`` argument. Request parameters (a cursor) keep their own names."""
    try:
        yield
    except (InvalidInput, Unavailable) as exc:
        exc.errors = [e if e.parameter else FieldError((name, *e.path), e.detail)
                      for e in exc.errors]
        raise


def extensions_of(exc: ArchwayError) -> dict[str, Any]:
    code = next(CODE_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in CODE_BY_ERROR)
    extensions: dict[str, Any] = {"code": code}
    if isinstance(exc, InvalidInput | Unavailable) and exc.errors:
        extensions["fields"] = [
            {"path": graphql_path(error), "detail": error.detail} for error in exc.errors]
    elif isinstance(exc, Forbidden) and exc.scope:
        extensions["scope"] = exc.scope
    elif isinstance(exc, RateLimited):
        extensions["retryAfter"] = exc.retry_after
    return extensions


def mapped(error: GraphQLError) -> GraphQLError:
    """``error`` with its ``extensions.code``; an unexpected exception masked (and logged)."""
    original = error.original_error
    if isinstance(original, ArchwayError):
        return _with(error, original.detail, extensions_of(original))
    if original is None or isinstance(original, GraphQLSyntaxError):
        # Refused by the parser, the validation or a limit: the query's fault. (Mapped
        # errors have no original either: mapping twice changes nothing.)
        syntax = isinstance(error, GraphQLSyntaxError) or original is not None
        code = (error.extensions or {}).get("code") or (
            LIMITED if is_limit(error.message) else PARSE_FAILED if syntax else VALIDATION_FAILED)
        return _with(error, error.message, {**(error.extensions or {}), "code": code})
    if error.path is None:  # a value (a literal, a variable) its scalar refused, before running
        return _with(error, error.message, {"code": "BAD_USER_INPUT"})
    _log.error("unhandled error in a resolver", exc_info=original)
    return _with(error, "An unexpected error occurred; it has been logged.", {"code": INTERNAL})


def _with(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message, nodes=error.nodes, source=error.source, positions=error.positions,
        path=error.path, original_error=None, extensions=extensions)


def map_errors(errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
    """Every error of a result, mapped (the schema calls it on every result it answers)."""
    return [mapped(error) for error in errors] if errors else errors
