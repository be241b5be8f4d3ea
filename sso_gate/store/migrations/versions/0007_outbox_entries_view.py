"""SQLite: ``outbox_entries``, a view whose INSTEAD OF INSERT trigger writes a gate event and
its audit entry, so the request's transaction writes both in one statement.

Every gate event is also an audit entry, written in the same transaction. On SQLite each
statement is a round trip to aiosqlite's thread (~0.1-0.5 ms on a busy machine, more than the
SQL itself), so the second statement was most of the outbox's cost on a SCIM write. A view with
an ``INSTEAD OF INSERT`` trigger is SQLite's way to insert into two tables with one statement
(``EventsService.record``). PostgreSQL needs no schema for it: there the same statement is a
data-modifying ``WITH``. Nothing on PostgreSQL changes here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (view column, table column): the event's, then its audit entry's
_EVENT = (
    ("event_id", "id"),
    ("event_name", "event"),
    ("event_organization_id", "organization_id"),
    ("event_data", "data"),
    ("event_created_at", "created_at"),
)
_AUDIT = (
    ("audit_id", "id"),
    ("audit_organization_id", "organization_id"),
    ("action", "action"),
    ("occurred_at", "occurred_at"),
    ("actor_id", "actor_id"),
    ("actor_type", "actor_type"),
    ("actor", "actor"),
    ("targets", "targets"),
    ("context", "context"),
    ("metadata", "metadata"),
    ("version", "version"),
    ("audit_created_at", "created_at"),
)


def _insert(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(c for _, c in columns)}) "
        f"VALUES ({', '.join('NEW.' + v for v, _ in columns)});"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    view_columns = ", ".join(f"NULL AS {v}" for v, _ in _EVENT + _AUDIT)
    op.execute(f"CREATE VIEW outbox_entries AS SELECT {view_columns} WHERE 0")
    op.execute(
        "CREATE TRIGGER outbox_entries_insert INSTEAD OF INSERT ON outbox_entries BEGIN "
        + _insert("events", _EVENT)
        + " "
        + _insert("audit_events", _AUDIT)
        + " END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER outbox_entries_insert")
    op.execute("DROP VIEW outbox_entries")
