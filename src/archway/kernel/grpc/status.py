"""gRPC status with rich details: the one place where errors become gRPC answers (the twin of
``kernel/http/problems.py``).

Each typed error maps, by walking its MRO, to a standard code; the details travel as a
``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer (grpcio-status), which clients
read with ``rpc_status.from_call``:

- ``InvalidInput`` → ``INVALID_ARGUMENT`` with ``google.rpc.BadRequest`` field violations, each
  field path in protobuf's form (``lines[0].product_id``);
- ``Unavailable`` (what the catalog's current state refuses) → ``FAILED_PRECONDITION`` with
  ``google.rpc.PreconditionFailure`` violations naming the same fields;
- ``RateLimited`` and ``ServiceBusy`` carry ``google.rpc.RetryInfo``; a rate-limit refusal
  also has REST's ``retry-after``, ``ratelimit-policy`` and ``ratelimit`` values as trailers.

A request parameter that REST names by its query name is named by its request field here
(``cursor`` → ``page_token``, ``limit`` → ``page_size``). No other exception's text reaches a
client: anything else is ``INTERNAL`` with a fixed message (and logged by the server).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from archway.kernel.errors import (
    AlreadyApplied,
    AlreadyExists,
    ArchwayError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    InvalidState,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServiceBusy,
    Unauthenticated,
    Unavailable,
)

CODE_BY_ERROR: dict[type[ArchwayError], grpc.StatusCode] = {
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    AlreadyApplied: grpc.StatusCode.ALREADY_EXISTS,
    InvalidState: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.FAILED_PRECONDITION,
    Conflict: grpc.StatusCode.ABORTED,  # a concurrent change won: the client may retry
    PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ServiceBusy: grpc.StatusCode.UNAVAILABLE,
    ArchwayError: grpc.StatusCode.INVALID_ARGUMENT,
}

INTERNAL_MESSAGE = "Internal error."
_FIELD_NAMES = {"cursor": "page_token", "limit": "page_size"}


def code_of(exc: ArchwayError) -> grpc.StatusCode:
    return next(CODE_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in CODE_BY_ERROR)


def status_of(exc: ArchwayError) -> grpc.Status:
    """The gRPC status for ``exc``: its code, its safe ``detail``, and the rich details."""
    code = code_of(exc)
    details: list[any_pb2.Any] = []
    if isinstance(exc, InvalidInput) and exc.errors:
        details.append(_packed(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=field_path(error), description=error.detail)
            for error in exc.errors])))
    elif isinstance(exc, Unavailable):
        details.append(_packed(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="UNAVAILABLE", subject=field_path(error), description=error.detail)
            for error in exc.errors])))
    elif isinstance(exc, RateLimited | ServiceBusy):
        seconds = exc.retry_after if isinstance(exc, RateLimited) else 1
        details.append(_packed(error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=seconds))))
    status = _status(code, exc.detail, details)
    if isinstance(exc, RateLimited):  # grpcio-status's Status is a named tuple
        status = status._replace(trailing_metadata=(
            *status.trailing_metadata, *exc.limits, ("retry-after", str(exc.retry_after))))
    return status


def internal_status() -> grpc.Status:
    return _status(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, [])


def field_path(error: FieldError) -> str:
    """A protocol-neutral path in protobuf's form: ``("lines", 0, "product_id")`` →
    ``lines[0].product_id``; REST's parameter names become the request's field names."""
    text = ""
    for part in error.path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = _FIELD_NAMES.get(part, part) if error.parameter else part
            text += f".{name}" if text else name
    return text


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _status(code: grpc.StatusCode, message: str, details: Sequence[any_pb2.Any]) -> grpc.Status:
    number = code.value[0]
    assert code_pb2.Code.Name(number) == code.name  # the two enumerations agree
    return rpc_status.to_status(status_pb2.Status(code=number, message=message, details=details))
