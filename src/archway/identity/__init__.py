"""Identity: users, passwords, signing keys and access tokens (the OAuth 2.0 server grows here)."""

from archway.identity.client import IdentityClient, InProcessIdentityClient

__all__ = ["IdentityClient", "InProcessIdentityClient"]
