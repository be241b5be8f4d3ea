"""Admin portal: portal links and sessions, DNS domain verification, verified-only routing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sso_gate.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(
            sa.Column(
                "require_verified_domains",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("organization_domains") as batch:
        batch.add_column(sa.Column("verification_token", sa.String(100), nullable=True))
        batch.add_column(sa.Column("verified_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_checked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("verification_error", sa.String(500), nullable=True))
    op.create_table(
        "portal_links",
        sa.Column("id", ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "organization_id",
            ID,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("intent", sa.String(32), nullable=False),
        sa.Column("return_url", sa.String(2048), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_portal_links_organization_id", "portal_links", ["organization_id"])
    op.create_table(
        "portal_sessions",
        sa.Column("id", ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "organization_id",
            ID,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("intent", sa.String(32), nullable=False),
        sa.Column("link_id", ID, nullable=True),
        sa.Column("return_url", sa.String(2048), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_portal_sessions_organization_id", "portal_sessions", ["organization_id"])


def downgrade() -> None:
    op.drop_table("portal_sessions")
    op.drop_table("portal_links")
    with op.batch_alter_table("organization_domains") as batch:
        for column in (
            "verification_error",
            "last_checked_at",
            "verified_at",
            "verification_token",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("require_verified_domains")
