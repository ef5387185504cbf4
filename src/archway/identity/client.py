"""Identity's public port: what other contexts and the HTTP guard may ask of it, and nothing more.

The in-process client (monolith) calls the service; a networked one (microservices) will
answer the same questions with the same types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from archway.identity.service import IdentityService


class IdentityClient(Protocol):
    async def user_exists(self, user_id: str) -> bool:
        """Whether ``user_id`` names a user now (a token outlives its user)."""
        ...

    async def subject_exists(self, subject: str) -> bool:
        """Whether a token's subject is still someone: a user, or a client not revoked."""
        ...


class InProcessIdentityClient:
    """The monolith's implementation: a direct call into the identity service, no network."""

    def __init__(self, service: IdentityService[Any]) -> None:
        self._service = service

    async def user_exists(self, user_id: str) -> bool:
        return await self._service.user_exists(user_id)

    async def subject_exists(self, subject: str) -> bool:
        return await self._service.subject_exists(subject)
