"""Directories (SCIM), directory users and groups, group membership, SCIM request log,
organization settings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sso_gate.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    # organization-level settings: group -> role mapping, directory-linked SSO
    op.add_column("organizations", sa.Column("settings", sa.JSON(), nullable=True))
    op.create_table(
        "directories",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "organization_id",
            ID,
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=True),
        sa.Column("token_hint", sa.String(16), nullable=True),
        sa.Column("previous_token_hash", sa.String(64), nullable=True),
        sa.Column("previous_token_expires_at", UTCDateTime(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_directories_organization_id", "directories", ["organization_id"])
    op.create_table(
        "directory_users",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "directory_id", ID, sa.ForeignKey("directories.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("user_name_lower", sa.String(320), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("last_name", sa.String(200), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("directory_id", "user_name_lower", name="uq_directory_users_user_name"),
    )
    op.create_index(
        "ix_directory_users_external_id", "directory_users", ["directory_id", "external_id"]
    )
    op.create_index("ix_directory_users_email", "directory_users", ["directory_id", "email"])
    op.create_index("ix_directory_users_org_email", "directory_users", ["organization_id", "email"])
    op.create_table(
        "directory_groups",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "directory_id", ID, sa.ForeignKey("directories.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("display_name_lower", sa.String(255), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_directory_groups_name", "directory_groups", ["directory_id", "display_name_lower"]
    )
    op.create_index(
        "ix_directory_groups_external_id", "directory_groups", ["directory_id", "external_id"]
    )
    op.create_table(
        "directory_group_members",
        sa.Column(
            "group_id",
            ID,
            sa.ForeignKey("directory_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id", ID, sa.ForeignKey("directory_users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("directory_id", ID, nullable=False),
    )
    op.create_index("ix_directory_group_members_user", "directory_group_members", ["user_id"])
    op.create_table(
        "scim_requests",
        sa.Column("id", ID, primary_key=True),
        sa.Column("directory_id", ID, nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_scim_requests_directory", "scim_requests", ["directory_id", "id"])


def downgrade() -> None:
    for name in (
        "scim_requests",
        "directory_group_members",
        "directory_groups",
        "directory_users",
        "directories",
    ):
        op.drop_table(name)
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("settings")
