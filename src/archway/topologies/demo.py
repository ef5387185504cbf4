"""The demo accounts `archway seed` and `archway dev` create, and the token a newcomer uses."""

from __future__ import annotations

# (role, email, password, name)
DEMO_ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("admin", "admin@archway.test", "archway-admin", "Ada Admin"),
    ("customer", "alice@archway.test", "archway-alice", "Alice Customer"),
    ("customer", "bob@archway.test", "archway-bob", "Bob Customer"),
)

# Every scope a customer's journey needs: the profile, placing and reading orders, and the
# customer's own report (GET /reports/customers/{id} asks for orders:read).
CUSTOMER_SCOPES = "profile orders:read orders:write"


def customer_token_command(archway: str = ".venv/bin/archway") -> str:
    return f'{archway} token --user alice@archway.test --scope "{CUSTOMER_SCOPES}"'
