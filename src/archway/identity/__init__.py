"""Identity: users, passwords, signing keys and access tokens (the OAuth 2.0 server grows here)."""

from archway.identity.client import IdentityClient, InProcessIdentityClient, UserSummary

__all__ = ["IdentityClient", "InProcessIdentityClient", "UserSummary"]
