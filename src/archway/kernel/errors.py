"""Typed application errors, raised by domains and services, mapped once per protocol.

    ArchwayError                 base: a refusal a client can act on (never a bug)
    ├── BadRequest               malformed request (bad header, unreadable JSON)      400
    ├── InvalidInput             well-formed but invalid values, with field pointers   422
    ├── Unauthenticated          missing, malformed or invalid credentials            401
    ├── Forbidden                authenticated, but lacks the scope or role           403
    ├── NotFound                 no such resource, or not visible to the caller       404
    ├── Conflict                 clashes with current state (duplicate, in flight)    409
    │   └── AlreadyApplied       an Idempotency-Key's first request took effect        409
    ├── PreconditionFailed       If-Match did not match the current version           412
    ├── PayloadTooLarge          request body over the configured limit               413
    ├── RateLimited              too many requests; carries retry_after seconds       429
    └── ServiceBusy              a bounded resource is saturated; retry later         503

Adapters map these by walking the exception's MRO, so a subclass needs no new mapping.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid value: ``pointer`` is a JSON Pointer into the body, or a parameter's name."""

    pointer: str
    detail: str


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
    def field(cls, pointer: str, detail: str) -> InvalidInput:
        return cls(detail, [FieldError(pointer, detail)])


class Unauthenticated(ArchwayError):
    title = "Unauthenticated"

    def __init__(self, detail: str | None = None, *, error: str | None = None) -> None:
        super().__init__(detail or "A valid access token is required.")
        self.error = error  # RFC 6750 error code: invalid_request, invalid_token


class Forbidden(ArchwayError):
    title = "Forbidden"

    def __init__(self, detail: str | None = None, *, scope: str | None = None) -> None:
        super().__init__(detail)
        self.scope = scope


class NotFound(ArchwayError):
    title = "Not found"


class Conflict(ArchwayError):
    title = "Conflict"


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

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceBusy(ArchwayError):
    title = "Service busy"
