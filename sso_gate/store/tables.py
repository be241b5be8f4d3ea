"""SQLAlchemy Core tables. The Alembic migrations in ``migrations/`` create exactly these;
``tests/store/test_migrations.py`` compares the two."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "metadata",
    "organizations",
    "organization_domains",
    "connections",
    "profiles",
    "sessions",
    "events",
    "directories",
    "directory_users",
    "directory_groups",
    "directory_group_members",
    "scim_requests",
    "UTCDateTime",
]


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


ID = sa.String(64)
metadata = sa.MetaData()

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("sso_policy", sa.String(16), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=True, unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("settings", sa.JSON(), nullable=True),
)

organization_domains = sa.Table(
    "organization_domains",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "organization_id",
        ID,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("domain", sa.String(253), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

connections = sa.Table(
    "connections",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "organization_id",
        ID,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("connection_type", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("secret_ciphertext", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False, index=True),
    sa.Column("connection_id", ID, nullable=False),
    sa.Column("idp_id", sa.String(255), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_login_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("connection_id", "idp_id", name="uq_profiles_connection_idp"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("profile_id", ID, nullable=False, index=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("profile", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Index("ix_sessions_org_email", "organization_id", "email"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("organization_id", ID, nullable=True, index=True),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

directories = sa.Table(
    "directories",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "organization_id",
        ID,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
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

directory_users = sa.Table(
    "directory_users",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "directory_id",
        ID,
        sa.ForeignKey("directories.id", ondelete="CASCADE"),
        nullable=False,
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
    sa.Index("ix_directory_users_external_id", "directory_id", "external_id"),
    sa.Index("ix_directory_users_email", "directory_id", "email"),
    sa.Index("ix_directory_users_org_email", "organization_id", "email"),
)

directory_groups = sa.Table(
    "directory_groups",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "directory_id",
        ID,
        sa.ForeignKey("directories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("display_name_lower", sa.String(255), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=True),
    sa.Column("resource", sa.JSON(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_directory_groups_name", "directory_id", "display_name_lower"),
    sa.Index("ix_directory_groups_external_id", "directory_id", "external_id"),
)

directory_group_members = sa.Table(
    "directory_group_members",
    metadata,
    sa.Column(
        "group_id",
        ID,
        sa.ForeignKey("directory_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id",
        ID,
        sa.ForeignKey("directory_users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("directory_id", ID, nullable=False),
    sa.Index("ix_directory_group_members_user", "user_id"),
)

scim_requests = sa.Table(
    "scim_requests",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("directory_id", ID, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(300), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("error", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_scim_requests_directory", "directory_id", "id"),
)
