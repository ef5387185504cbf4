"""Refresh tokens: stored as SHA-256 digests, in families that rotation extends and reuse
revokes.

Revision ID: identity_0003
Revises: identity_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_refresh_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("family_id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_identity_refresh_tokens_family_id", "identity_refresh_tokens", ["family_id"])
    op.create_index(
        "ix_identity_refresh_tokens_user_id", "identity_refresh_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_refresh_tokens_user_id", "identity_refresh_tokens")
    op.drop_index("ix_identity_refresh_tokens_family_id", "identity_refresh_tokens")
    op.drop_table("identity_refresh_tokens")
