"""Access tokens revoked before they expire (RFC 7009), by jti, kept until they would expire.

Revision ID: identity_0006
Revises: identity_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0006"
down_revision = "identity_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_revoked_access_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identity_revoked_access_tokens")
