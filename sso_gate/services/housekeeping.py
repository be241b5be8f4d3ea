"""Housekeeping: rows that only ever grow are deleted once they cannot matter any more.

The worker runs :meth:`Housekeeping.purge` hourly, next to the event and audit purges:

- ``sessions`` that expired more than a day ago (a revoked session's row is kept until it would
  have expired: a cookie naming a missing row is refused just the same, the day is for people
  reading the table);
- ``portal_links`` and ``portal_sessions`` that expired more than a day ago (used or not);
- ``scim_requests`` (the provisioning log the admin portal shows) older than
  ``SSO_GATE_SCIM_LOG_RETENTION_DAYS`` (30 days by default).

Each table is purged in batches of 5,000 rows, one short transaction per batch, so a large
backlog never holds a long write lock.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from sso_gate.services._runtime import Runtime
from sso_gate.store.tables import portal_links, portal_sessions, scim_requests, sessions

__all__ = ["Housekeeping"]

_BATCH = 5000
_GRACE = timedelta(days=1)


class Housekeeping:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def _purge(self, table: sa.Table, condition: sa.ColumnElement[bool]) -> int:
        total = 0
        while True:
            async with self._rt.transaction() as conn:
                ids = sa.select(table.c.id).where(condition).limit(_BATCH)
                result = await conn.execute(
                    sa.delete(table).where(table.c.id.in_(ids.scalar_subquery()))
                )
            deleted = int(result.rowcount or 0)
            total += deleted
            if deleted < _BATCH:
                return total

    async def purge(self) -> dict[str, int]:
        """Delete what has expired; returns rows deleted per table."""
        now = self._rt.clock()
        scim_days = self._rt.settings.scim_log_retention_days
        return {
            "sessions": await self._purge(sessions, sessions.c.expires_at < now - _GRACE),
            "portal_links": await self._purge(
                portal_links, portal_links.c.expires_at < now - _GRACE
            ),
            "portal_sessions": await self._purge(
                portal_sessions, portal_sessions.c.expires_at < now - _GRACE
            ),
            "scim_requests": await self._purge(
                scim_requests, scim_requests.c.created_at < now - timedelta(days=scim_days)
            ),
        }
