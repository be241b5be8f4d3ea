"""SQLAlchemy Core tables. The Alembic migrations in ``migrations/`` create exactly these;
``tests/store/test_migrations.py`` compares the two."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from sso_gate._nul import NUL_MESSAGE
from sso_gate.exceptions import ValidationError

__all__ = [
    "metadata",
    "organizations",
    "organization_domains",
    "connections",
    "profiles",
    "sessions",
    "events",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "worker_leases",
    "portal_links",
    "portal_sessions",
    "audit_events",
    "audit_event_targets",
    "audit_chains",
    "audit_checkpoints",
    "audit_idempotency",
    "audit_streams",
    "directories",
    "directory_users",
    "directory_groups",
    "directory_group_members",
    "scim_requests",
    "UTCDateTime",
    "sqlite_datetime",
]


def sqlite_datetime(value: datetime) -> str:
    """The text :class:`UTCDateTime` stores on SQLite for a UTC instant (naive UTC, always six
    digits of microseconds), for statements that hand parameters to the driver as they are."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return text if value.microsecond else text + ".000000"


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


class String(sa.types.TypeDecorator[str]):
    """A string column that refuses U+0000 with a :class:`ValidationError` (422) before the
    database sees it: PostgreSQL cannot store it in text, and SQLite must not behave
    differently. Covers what is written and what is looked up (an id from a URL, a filter)."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError(f"a value {NUL_MESSAGE}", code="invalid_text")
        return value


class Text(String):
    """:class:`String` over ``TEXT``."""

    impl = sa.Text
    cache_ok = True


ID = String(64)
metadata = sa.MetaData()

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", String(200), nullable=False),
    sa.Column("sso_policy", String(16), nullable=False),
    # SSO routing only for domains verified through DNS (admin portal setting)
    sa.Column("require_verified_domains", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("external_id", String(200), nullable=True, unique=True),
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
    sa.Column("domain", String(253), nullable=False, unique=True),
    sa.Column("state", String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # DNS verification (admin portal): the TXT value to publish, and the last check
    sa.Column("verification_token", String(100), nullable=True),
    sa.Column("verified_at", UTCDateTime(), nullable=True),
    sa.Column("last_checked_at", UTCDateTime(), nullable=True),
    sa.Column("verification_error", String(500), nullable=True),
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
    sa.Column("connection_type", String(40), nullable=False),
    sa.Column("name", String(200), nullable=False),
    sa.Column("state", String(16), nullable=False),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("secret_ciphertext", Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False, index=True),
    sa.Column("connection_id", ID, nullable=False),
    sa.Column("idp_id", String(255), nullable=False),
    sa.Column("email", String(320), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_login_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("connection_id", "idp_id", name="uq_profiles_connection_idp"),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("token_hash", String(64), nullable=False, unique=True),
    sa.Column("profile_id", ID, nullable=False, index=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("email", String(320), nullable=False),
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
    sa.Column("event", String(100), nullable=False),
    sa.Column("organization_id", ID, nullable=True, index=True),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # Commit order, assigned after commit by the one sequencer (services/delivery.py): ULIDs are
    # made before commit, so two instances can commit them out of order; ``seq`` cannot be.
    # NULL = committed but not yet sequenced (and not yet fanned out to webhook endpoints).
    sa.Column("seq", sa.BigInteger(), nullable=True),
    sa.Index("ix_events_seq", "seq", unique=True),
    sa.Index("ix_events_created_at", "created_at"),
)

webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("url", String(2048), nullable=False),
    sa.Column("events", sa.JSON(), nullable=False),
    sa.Column("organization_id", ID, nullable=True),
    sa.Column("description", String(500), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("disabled_reason", String(500), nullable=True),
    sa.Column("secret_enc", Text(), nullable=False),
    sa.Column("secret_hint", String(16), nullable=False),
    sa.Column("previous_secret_enc", Text(), nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False),
    sa.Column("failing_since", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "endpoint_id",
        ID,
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", ID, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("claim", String(40), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_error", String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_event", "event_id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "delivery_id",
        ID,
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("endpoint_id", ID, nullable=False),
    sa.Column("event_id", ID, nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("worker", String(64), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("succeeded", sa.Boolean(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("response_excerpt", String(500), nullable=True),
    sa.Column("error", String(500), nullable=True),
    # one row per attempt number: the database itself refuses a second claim of one attempt
    sa.UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_attempt"),
    sa.Index("ix_webhook_attempts_endpoint", "endpoint_id", "started_at"),
)

worker_leases = sa.Table(
    "worker_leases",
    metadata,
    sa.Column("name", String(64), primary_key=True),
    sa.Column("holder", String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

portal_links = sa.Table(
    "portal_links",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("token_hash", String(64), nullable=False, unique=True),
    sa.Column(
        "organization_id",
        ID,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("intent", String(32), nullable=False),
    sa.Column("return_url", String(2048), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("used_at", UTCDateTime(), nullable=True),
)

portal_sessions = sa.Table(
    "portal_sessions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("token_hash", String(64), nullable=False, unique=True),
    sa.Column(
        "organization_id",
        ID,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("intent", String(32), nullable=False),
    sa.Column("link_id", ID, nullable=True),
    sa.Column("return_url", String(2048), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

# predicates of the audit log's partial indexes (the same text in the migration)
CHAINED = sa.text("seq IS NOT NULL")
UNCHAINED = sa.text("seq IS NULL")

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", ID, primary_key=True),
    # an organization id, or "gate" for gate-wide actions; no foreign key: the audit log
    # outlives the organization it describes
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("action", String(100), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("actor_id", String(255), nullable=False),
    sa.Column("actor_type", String(100), nullable=False),
    sa.Column("actor", sa.JSON(), nullable=False),
    sa.Column("targets", sa.JSON(), nullable=False),
    sa.Column("context", sa.JSON(), nullable=False),
    sa.Column("metadata", sa.JSON(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # position in the organization's hash chain and the chain hash (set by the chainer, in
    # commit order, shortly after commit; NULL until then)
    sa.Column("seq", sa.BigInteger(), nullable=True),
    sa.Column("hash", String(64), nullable=True),
    sa.Index("ix_audit_events_org_id", "organization_id", "id"),
    sa.Index("ix_audit_events_org_action", "organization_id", "action", "id"),
    # Written by the chainer, not at ingest (partial: chained rows only): its keys are random
    # (one hot spot per actor), which made it the costliest index of an insert. Queries by
    # actor chain the organization's backlog first (AuditService._chained).
    sa.Index(
        "ix_audit_events_org_actor",
        "organization_id",
        "actor_id",
        "id",
        sqlite_where=CHAINED,
        postgresql_where=CHAINED,
    ),
    sa.Index("ix_audit_events_org_occurred", "organization_id", "occurred_at"),
    sa.Index("ix_audit_events_org_seq", "organization_id", "seq", unique=True),
    # the chainer's backlog only (partial): rows leave it when chained
    sa.Index(
        "ix_audit_events_unchained",
        "seq",
        "id",
        sqlite_where=UNCHAINED,
        postgresql_where=UNCHAINED,
    ),
)

# one row per target of a chained event, written by the chainer with the event's position
# (targets of events not chained yet live only in audit_events.targets)
audit_event_targets = sa.Table(
    "audit_event_targets",
    metadata,
    sa.Column("event_id", ID, sa.ForeignKey("audit_events.id", ondelete="CASCADE"), nullable=False),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("target_type", String(100), nullable=False),
    sa.Column("target_id", String(255), nullable=False),
    sa.Index("ix_audit_event_targets_id", "organization_id", "target_id", "event_id"),
    sa.Index("ix_audit_event_targets_type", "organization_id", "target_type", "event_id"),
    sa.Index("ix_audit_event_targets_event", "event_id"),
)

audit_chains = sa.Table(
    "audit_chains",
    metadata,
    sa.Column("organization_id", ID, primary_key=True),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    sa.Column("last_hash", String(64), nullable=False),
    sa.Column("signature", String(128), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("hash", String(64), nullable=False),
    sa.Column("signature", String(128), nullable=False),
    sa.Column("reason", String(40), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("organization_id", "seq", name="uq_audit_checkpoints_org_seq"),
)

audit_idempotency = sa.Table(
    "audit_idempotency",
    metadata,
    sa.Column("organization_id", ID, primary_key=True),
    sa.Column("key", String(255), primary_key=True),
    sa.Column("request_hash", String(64), nullable=False),
    sa.Column("event_id", ID, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
)

audit_streams = sa.Table(
    "audit_streams",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("organization_id", ID, nullable=False, index=True),
    sa.Column("type", String(20), nullable=False),
    sa.Column("name", String(200), nullable=True),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("secret_enc", Text(), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    # the chain position delivered so far: the stream sends seq > cursor, in order
    sa.Column("cursor", sa.BigInteger(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("claim", String(40), nullable=True),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False),
    sa.Column("last_error", String(500), nullable=True),
    sa.Column("last_success_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
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
    sa.Column("name", String(200), nullable=False),
    sa.Column("type", String(40), nullable=False),
    sa.Column("state", String(16), nullable=False),
    sa.Column("token_hash", String(64), nullable=True),
    sa.Column("token_hint", String(16), nullable=True),
    sa.Column("previous_token_hash", String(64), nullable=True),
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
    sa.Column("user_name", String(320), nullable=False),
    sa.Column("user_name_lower", String(320), nullable=False),
    sa.Column("external_id", String(255), nullable=True),
    sa.Column("email", String(320), nullable=True),
    sa.Column("first_name", String(200), nullable=True),
    sa.Column("last_name", String(200), nullable=True),
    sa.Column("state", String(16), nullable=False),
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
    sa.Column("display_name", String(255), nullable=False),
    sa.Column("display_name_lower", String(255), nullable=False),
    sa.Column("external_id", String(255), nullable=True),
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
    sa.Column("method", String(8), nullable=False),
    sa.Column("path", String(300), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("error", String(500), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_scim_requests_directory", "directory_id", "id"),
)
