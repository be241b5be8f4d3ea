"""Alembic environment: runs on the connection sso_gate hands in (see ``store/db.py``)."""

from __future__ import annotations

from alembic import context

from sso_gate.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - sso_gate always passes a connection
    raise RuntimeError("run migrations through `sso-gate migrate` or sso_gate.store.db.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
