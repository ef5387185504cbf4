"""Who is calling, and what they may do: scopes from the token, roles of the user."""

from __future__ import annotations

from dataclasses import dataclass, field

from archway.kernel.errors import Forbidden

SCOPES: dict[str, str] = {
    "profile": "Read and change your own user",
    "users:read": "Read every user (admins)",
    "users:write": "Change or delete any user (admins)",
    "catalog:write": "Create and change products and stock (admins)",
    "orders:read": "Read your orders",
    "orders:write": "Place and cancel your orders",
    "reports:read": "Read sales reports",
}
ROLES = ("customer", "admin")
KEY_SUBJECT_PREFIX = "key:"
"""The subject of a principal an API key authenticated: ``key:<id>`` (no user, no client)."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)
    client_id: str = ""
    token_id: str = ""
    expires_at: int = 0

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_api_key(self) -> bool:
        return self.subject.startswith(KEY_SUBJECT_PREFIX)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"This needs the '{scope}' scope.", scope=scope)

    def require_admin(self, scope: str) -> None:
        """Admin-only use: needs the admin role and the scope that names the action."""
        if not self.is_admin:
            raise Forbidden("This is for administrators.")
        self.require_scope(scope)

    def acts_on_self_or_admin(
        self, user_id: str, admin_scope: str, *, own_scope: str = "profile"
    ) -> None:
        """Object-level check: the user itself (with ``own_scope``) or an admin with
        ``admin_scope``."""
        if user_id == self.subject and self.has_scope(own_scope):
            return
        if self.is_admin and self.has_scope(admin_scope):
            return
        if user_id == self.subject:
            self.require_scope(own_scope)
        raise Forbidden("You may only act on your own account.")
