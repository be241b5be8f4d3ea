"""Audit log: the actor index and the target rows are written by the chainer, not at ingest.

``ix_audit_events_org_actor`` becomes partial (chained rows only) and ``ix_audit_events_unchained``
partial (the backlog only); ``audit_event_targets`` holds the targets of chained events, so the
target rows of events not chained yet are removed here (the chainer writes them again).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CHAINED = "seq IS NOT NULL"
UNCHAINED = "seq IS NULL"


def _partial(name: str, columns: list[str], predicate: str) -> None:
    op.drop_index(name, table_name="audit_events")
    op.create_index(
        name,
        "audit_events",
        columns,
        sqlite_where=sa.text(predicate),
        postgresql_where=sa.text(predicate),
    )


def upgrade() -> None:
    _partial("ix_audit_events_org_actor", ["organization_id", "actor_id", "id"], CHAINED)
    _partial("ix_audit_events_unchained", ["seq", "id"], UNCHAINED)
    op.execute(
        "DELETE FROM audit_event_targets WHERE event_id IN "
        "(SELECT id FROM audit_events WHERE seq IS NULL)"
    )


def downgrade() -> None:
    for name, columns in (
        ("ix_audit_events_org_actor", ["organization_id", "actor_id", "id"]),
        ("ix_audit_events_unchained", ["seq", "id"]),
    ):
        op.drop_index(name, table_name="audit_events")
        op.create_index(name, "audit_events", columns)
    # 0005 expects a target row for every event: add those of the events not chained yet
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, organization_id, targets FROM audit_events WHERE seq IS NULL")
    ).all()
    values = [
        {"e": r.id, "o": r.organization_id, "t": t["type"], "i": t["id"]}
        for r in rows
        for t in (json.loads(r.targets) if isinstance(r.targets, str) else r.targets)
    ]
    if values:
        bind.execute(
            sa.text(
                "INSERT INTO audit_event_targets (event_id, organization_id, target_type, "
                "target_id) VALUES (:e, :o, :t, :i)"
            ),
            values,
        )
