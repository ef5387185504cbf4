"""Typed application errors, raised by domains and services, mapped once per protocol.

    ArchwayError                 base: a refusal a client can act on (never a bug)
    ├── BadRequest               malformed request (bad header, unreadable JSON)      400
    ├── InvalidInput             well-formed but invalid values, with field paths      422
    ├── Unauthenticated          missing, malformed or invalid credentials            401
    ├── Forbidden                authenticated, but lacks the scope or role           403
    ├── NotFound                 no such resource, or not visible to the caller       404
    ├── Conflict                 clashes with current state (duplicate, in flight)    409
    │   ├── AlreadyExists        another resource has this unique value (sku, email)   409
    │   ├── InvalidState         the resource's state does not allow it (cancel a     409
    │   │                        rejected order)
    │   ├── Unavailable          the current state does not offer what is named       409
    │   └── AlreadyApplied       an Idempotency-Key's first request took effect        409
    ├── PreconditionFailed       If-Match did not match the current version           412
    ├── PayloadTooLarge          request body over the configured limit               413
    ├── RateLimited              too many requests; carries retry_after seconds       429
    └── ServiceBusy              a bounded resource is saturated; retry later         503

Adapters map these by walking the exception's MRO, so a subclass needs no new mapping.
Field paths are protocol-neutral (``("lines", 0, "product_id")``); each adapter renders them in
its own form (REST: a JSON Pointer, ``/lines/0/product_id``, in kernel/http/problems.py).
"""

from __future__ import annotations

from dataclasses import dataclass

FieldPath = tuple[str | int, ...]
"""Where an invalid value is: a field's name, then for nested values the keys and list indexes
that lead to it -- ``("price", "amount")``, ``("lines", 0, "product_id")``."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid value at ``path``. ``parameter`` marks a request parameter (a query
    parameter such as ``cursor``, a form field) rather than a field of the request's body:
    protocols that tell the two apart (REST) render them differently."""

    path: FieldPath
    detail: str
    parameter: bool = False


class ArchwayError(Exception):
    """A refusal that a client can act on. ``detail`` is safe to show to clients."""

    title = "Request refused"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class BadRequest(ArchwayError):
    title = "Bad request"


class InvalidInput(ArchwayError):
    title = "Invalid input"

    def __init__(self, detail: str | None = None, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail or "The request has invalid values.")
        self.errors = errors or []

    @classmethod
    def field(cls, path: str | FieldPath, detail: str) -> InvalidInput:
        """One invalid field of the request's body: a name, or a :data:`FieldPath`."""
        return cls(detail, [FieldError(_as_path(path), detail)])

    @classmethod
    def parameter(cls, name: str, detail: str) -> InvalidInput:
        """One invalid request parameter (``cursor``, ``min_price``, ``scope``)."""
        return cls(detail, [FieldError((name,), detail, parameter=True)])


def _as_path(path: str | FieldPath) -> FieldPath:
    return (path,) if isinstance(path, str) else path


class Unauthenticated(ArchwayError):
    title = "Unauthenticated"

    def __init__(
        self, detail: str | None = None, *, error: str | None = None, scheme: str = "Bearer"
    ) -> None:
        super().__init__(detail or "A valid access token is required.")
        self.error = error  # RFC 6750 error code: invalid_request, invalid_token
        self.scheme = scheme  # the challenge's scheme: Bearer, or ApiKey for a refused key


class Forbidden(ArchwayError):
    title = "Forbidden"

    def __init__(self, detail: str | None = None, *, scope: str | None = None) -> None:
        super().__init__(detail)
        self.scope = scope


class NotFound(ArchwayError):
    title = "Not found"


class Conflict(ArchwayError):
    title = "Conflict"


class AlreadyExists(Conflict):
    """Another resource already holds a value that must be unique (a product's sku, a user's
    email). REST answers it as any conflict (409); gRPC as ``ALREADY_EXISTS``."""


class InvalidState(Conflict):
    """The resource is in a state that does not allow the change (a rejected order cannot be
    cancelled): retrying as is cannot succeed. REST: 409; gRPC: ``FAILED_PRECONDITION``."""


class Unavailable(Conflict):
    """A well-formed request that names what the current state does not offer (a product not
    on sale, one priced in another currency than the rest of the order): no schema can say
    so, and the same request may succeed once the state changes, so it is a conflict (409),
    not invalid input; ``errors`` name the values at fault."""

    title = "Unavailable"

    def __init__(self, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.errors = errors


class AlreadyApplied(Conflict):
    """A retry under an ``Idempotency-Key`` whose first request took effect and whose answer
    was not kept (it failed after its commit, or its process died): it is not run again."""

    title = "Already applied"

    def __init__(self, location: str | None = None) -> None:
        detail = ("The first request with this Idempotency-Key took effect, but its answer "
                  "was lost; it is not run again. ")
        detail += (f"Its resource is at {location}." if location else
                   "Read the resources it changes to see its result; a new request needs a "
                   "new key.")
        super().__init__(detail)
        self.location = location


class PreconditionFailed(ArchwayError):
    title = "Precondition failed"


class PayloadTooLarge(ArchwayError):
    title = "Payload too large"


class RateLimited(ArchwayError):
    title = "Too many requests"

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int = 1,
        limits: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.limits = limits  # the ``ratelimit-policy`` and ``ratelimit`` values, when known


class ServiceBusy(ArchwayError):
    title = "Service busy"
