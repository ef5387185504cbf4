"""The demo accounts and OAuth clients `archway seed` and `archway dev` create, and the token a
newcomer uses."""

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


# The seeded OAuth clients. The demo client's secret is as public as the demo passwords above:
# it is printed by `archway seed` and used by docs/api.md. Any other client's secret is
# generated (`archway clients create`) and shown once.
DOCS_CLIENT_ID = "archway-docs"
DEMO_CLIENT_ID = "archway-demo"
DEMO_CLIENT_SECRET = "archway-demo-client-secret-for-local-use-only"
DEMO_CLIENT_SCOPES = "reports:read"
DOCS_REDIRECT_PATH = "/docs/oauth2-redirect"
