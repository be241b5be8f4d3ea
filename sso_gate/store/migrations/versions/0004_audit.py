"""Audit log: events, targets, hash chains, signed checkpoints, idempotency keys, log streams.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sso_gate.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=False),
        sa.Column("actor_type", sa.String(100), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("hash", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_events_org_id", "audit_events", ["organization_id", "id"])
    op.create_index(
        "ix_audit_events_org_action", "audit_events", ["organization_id", "action", "id"]
    )
    op.create_index(
        "ix_audit_events_org_actor", "audit_events", ["organization_id", "actor_id", "id"]
    )
    op.create_index(
        "ix_audit_events_org_occurred", "audit_events", ["organization_id", "occurred_at"]
    )
    op.create_index(
        "ix_audit_events_org_seq", "audit_events", ["organization_id", "seq"], unique=True
    )
    op.create_index("ix_audit_events_unchained", "audit_events", ["seq", "id"])
    op.create_table(
        "audit_event_targets",
        sa.Column(
            "event_id",
            ID,
            sa.ForeignKey("audit_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("target_type", sa.String(100), nullable=False),
        sa.Column("target_id", sa.String(255), nullable=False),
    )
    op.create_index(
        "ix_audit_event_targets_id",
        "audit_event_targets",
        ["organization_id", "target_id", "event_id"],
    )
    op.create_index(
        "ix_audit_event_targets_type",
        "audit_event_targets",
        ["organization_id", "target_type", "event_id"],
    )
    op.create_index("ix_audit_event_targets_event", "audit_event_targets", ["event_id"])
    op.create_table(
        "audit_chains",
        sa.Column("organization_id", ID, primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "seq", name="uq_audit_checkpoints_org_seq"),
    )
    op.create_table(
        "audit_idempotency",
        sa.Column("organization_id", ID, primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_idempotency_created_at", "audit_idempotency", ["created_at"])
    op.create_table(
        "audit_streams",
        sa.Column("id", ID, primary_key=True),
        sa.Column("organization_id", ID, nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("claim", sa.String(40), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_audit_streams_organization_id", "audit_streams", ["organization_id"])


def downgrade() -> None:
    for table in (
        "audit_streams",
        "audit_idempotency",
        "audit_checkpoints",
        "audit_chains",
        "audit_event_targets",
        "audit_events",
    ):
        op.drop_table(table)
