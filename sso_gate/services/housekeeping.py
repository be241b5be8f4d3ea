"""Housekeeping: rows that only ever grow are deleted once they cannot matter any more.

The worker runs :meth:`Housekeeping.purge` hourly, next to the event and audit purges:

- ``sessions`` that expired more than a day ago (a revoked session's row is kept until it would
  have expired: a cookie naming a missing row is refused just the same, the day is for people
  reading the table);
- ``portal_links`` and ``portal_sessions`` that expired more than a day ago (used or not);
- ``scim_requests`` (the provisioning log the admin portal shows) older than
  ``SSO_GATE_SCIM_LOG_RETENTION_DAYS`` (30 days by default).

Each table is purged in batches (``Runtime.delete_in_batches``), so a large backlog never
holds a long write lock.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from sso_gate.services._runtime import Runtime
from sso_gate.store.tables import portal_links, portal_sessions, scim_requests, sessions

__all__ = ["Housekeeping"]

_GRACE = timedelta(days=1)


class Housekeeping:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def purge(self) -> dict[str, int]:
        """Delete what has expired; returns rows deleted per table."""
        now = self._rt.clock()
        scim_cutoff = now - timedelta(days=self._rt.settings.scim_log_retention_days)
        expired: tuple[tuple[sa.Table, sa.ColumnElement[bool]], ...] = (
            (sessions, sessions.c.expires_at < now - _GRACE),
            (portal_links, portal_links.c.expires_at < now - _GRACE),
            (portal_sessions, portal_sessions.c.expires_at < now - _GRACE),
            (scim_requests, scim_requests.c.created_at < scim_cutoff),
        )
        return {t.name: await self._rt.delete_in_batches(t, cond) for t, cond in expired}
