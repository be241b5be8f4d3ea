"""Events (WorkOS names): written in the transaction of the change that causes them
(transactional outbox), handed to in-process subscribers after commit, numbered in commit order
by the sequencer (``_outbox.py``), delivered to webhooks by the worker (``delivery.py``) and
readable in order through :meth:`EventsService.list` (the Events API)."""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate.exceptions import NotFoundError, ValidationError
from sso_gate.metrics import GateMetrics
from sso_gate.models import EVENT_NAMES, Event, ListPage
from sso_gate.services import _outbox
from sso_gate.services._runtime import Runtime
from sso_gate.services.audit import ENTRY_COLUMNS
from sso_gate.store.tables import events as events_table
from sso_gate.store.tables import sqlite_datetime

__all__ = ["EventsService", "Subscriber"]

log = logging.getLogger("sso_gate.events")
Subscriber = Callable[[Event], Awaitable[None] | None]


class Auditor(Protocol):
    def event_entry(self, event: Event, *, sqlite: bool) -> tuple[Any, ...]: ...

    async def record(
        self,
        conn: AsyncConnection,
        organization_id: str | None,
        action: str,
        data: Mapping[str, Any],
        *,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> None: ...


# Built once (every change writes an event): a statement built per call costs ~0.1 ms more.
_INSERT = sa.insert(events_table)
# An event and its audit entry in one statement (one round trip; on SQLite each statement is a
# hand-off to aiosqlite's thread, which cost more than the SQL): on SQLite an insert into the
# view ``outbox_entries`` whose trigger writes both rows (migration 0007), on PostgreSQL a
# data-modifying WITH. Parameters: the event's columns, then ``ENTRY_COLUMNS``.
_EVENT_COLUMNS = ("id", "event", "organization_id", "data", "created_at")
_WITH_ENTRY_SQLITE = (
    f"INSERT INTO outbox_entries VALUES ({', '.join('?' * (5 + len(ENTRY_COLUMNS)))})"
)
_WITH_ENTRY_POSTGRES = (
    f"WITH event AS (INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ($1, $2, $3, $4, $5)) "
    f"INSERT INTO audit_events ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(6, 6 + len(ENTRY_COLUMNS)))})"
)


class EventsService:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._subscribers: list[tuple[str, Subscriber]] = []
        # called after every commit that wrote events (the inline worker wakes up)
        self.committed_listeners: list[Callable[[], None]] = []
        # the audit log (set by the gate): every event is also an audit entry, same transaction
        self.auditor: Auditor | None = None

    @property
    def metrics(self) -> GateMetrics:
        """The gate's metrics (sign-in outcomes are counted where their events are emitted)."""
        return self._rt.metrics

    def subscribe(self, pattern: str, fn: Subscriber) -> None:
        """Call ``fn`` for every committed event whose name matches ``pattern`` (``dsync.*``)."""
        self._subscribers.append((pattern, fn))

    async def record(
        self,
        conn: AsyncConnection,
        event: str,
        data: Mapping[str, Any],
        organization_id: str | None,
    ) -> Event:
        """Write an event inside the caller's transaction."""
        now = self._rt.clock()
        ev = Event(
            id=new_id("event"),
            event=event,
            data=dict(data),
            organization_id=organization_id,
            created_at=now,
        )
        if self.auditor is None:
            await conn.execute(
                _INSERT,
                {
                    "id": ev.id,
                    "event": event,
                    "organization_id": organization_id,
                    "data": ev.data,
                    "created_at": now,
                },
            )
            return ev
        # with its audit entry, in one statement (see _WITH_ENTRY_SQLITE)
        sqlite = conn.dialect.name == "sqlite"
        entry = self.auditor.event_entry(ev, sqlite=sqlite)
        own = (
            ev.id,
            event,
            organization_id,
            json.dumps(ev.data),
            sqlite_datetime(now) if sqlite else now,
        )
        await conn.exec_driver_sql(
            _WITH_ENTRY_SQLITE if sqlite else _WITH_ENTRY_POSTGRES, own + entry
        )
        return ev

    async def audit(
        self,
        conn: AsyncConnection,
        action: str,
        data: Mapping[str, Any],
        organization_id: str | None,
        *,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """An audit entry without an event (e.g. a directory token rotated), in the caller's
        transaction."""
        if self.auditor is not None:
            await self.auditor.record(conn, organization_id, action, data, targets=targets)

    async def emit(self, event: str, data: Mapping[str, Any], organization_id: str | None) -> Event:
        """Record an event in its own transaction and dispatch it (for events that are not part
        of a larger state change, such as authentication outcomes)."""
        async with self._rt.transaction() as conn:
            ev = await self.record(conn, event, data, organization_id)
        await self.dispatch([ev])
        return ev

    async def dispatch(self, events: Iterable[Event]) -> None:
        """Hand committed events to subscribers; a failing subscriber is logged, never raised."""
        events = list(events)
        if events:
            for listener in self.committed_listeners:
                listener()
        for ev in events:
            for pattern, fn in self._subscribers:
                if not fnmatch.fnmatchcase(ev.event, pattern):
                    continue
                try:
                    result = fn(ev)
                    if result is not None:
                        await result
                except Exception:
                    log.exception("event subscriber %r failed on %s", fn, ev.id)

    # -- the feed (Events API) -----------------------------------------------------------------

    async def sequence(self) -> int:
        """Number the committed events that have no place in the feed yet (and fan them out to
        webhook endpoints). The worker does this continuously; :meth:`list` does it first too,
        so the feed is current even without a running worker."""
        total = 0
        while True:
            async with self._rt.transaction() as conn:
                n = await _outbox.sequence(conn, self._rt.clock())
            total += n
            if n < _outbox.BATCH:
                return total

    async def list(
        self,
        *,
        after: str | None = None,
        events: Sequence[str] | None = None,
        organization_id: str | None = None,
        range_start: datetime | None = None,
        range_end: datetime | None = None,
        limit: int = 10,
    ) -> ListPage:
        """Events in commit order, oldest first, after the event id ``after``.

        ``list_metadata.after`` is the id of the last event returned (or the given cursor when
        the page is empty): pass it back to continue, now or after downtime.
        """
        if not 1 <= limit <= 100:
            raise ValidationError("limit must be between 1 and 100", field="limit")
        names: list[str] | None = None
        if events is not None:
            # exact names or the same wildcard patterns webhook subscriptions accept
            names = sorted(
                {n for p in events for n in EVENT_NAMES if n == p or fnmatch.fnmatchcase(n, p)}
            )
            unknown = sorted(
                p for p in events if not any(fnmatch.fnmatchcase(n, p) for n in EVENT_NAMES)
            )
            if unknown:
                raise ValidationError(
                    f"unknown event name(s): {', '.join(unknown)}", field="events"
                )
        if range_start and range_end and range_start > range_end:
            raise ValidationError("range_start must be before range_end", field="range_start")
        await self.sequence()
        t = events_table
        conds: list[sa.ColumnElement[bool]] = [t.c.seq.is_not(None)]
        async with self._rt.read() as conn:
            if after is not None:
                cursor = (
                    await conn.execute(sa.select(t.c.seq).where(t.c.id == after))
                ).scalar_one_or_none()
                if cursor is None:
                    raise ValidationError(
                        f"event {after!r} not found (unknown id, or older than the retention "
                        f"period of {self._rt.settings.event_retention_days} days)",
                        field="after",
                        code="invalid_cursor",
                    )
                conds.append(t.c.seq > cursor)
            if names is not None:
                conds.append(t.c.event.in_(names))
            if organization_id is not None:
                conds.append(t.c.organization_id == organization_id)
            if range_start is not None:
                conds.append(t.c.created_at >= range_start)
            if range_end is not None:
                conds.append(t.c.created_at < range_end)
            rows = (
                await conn.execute(sa.select(t).where(*conds).order_by(t.c.seq).limit(limit))
            ).all()
        data = tuple(_event_from_row(r._mapping) for r in rows)
        return ListPage(data, None, data[-1].id if data else after)

    async def get(self, event_id: str) -> Event:
        async with self._rt.read() as conn:
            row = (
                await conn.execute(sa.select(events_table).where(events_table.c.id == event_id))
            ).first()
        if row is None:
            raise NotFoundError(f"event {event_id!r} not found", code="event_not_found")
        return _event_from_row(row._mapping)

    async def purge(self, *, older_than_days: int | None = None) -> int:
        """Delete events (with their deliveries and attempts) older than the retention period
        (``SSO_GATE_EVENT_RETENTION_DAYS``, default 30). Returns how many were deleted."""
        days = (
            self._rt.settings.event_retention_days if older_than_days is None else older_than_days
        )
        cutoff = self._rt.clock() - timedelta(days=days)
        return await self._rt.delete_in_batches(events_table, events_table.c.created_at < cutoff)


def _event_from_row(row: RowMapping) -> Event:
    return Event(
        id=row["id"],
        event=row["event"],
        data=row["data"],
        organization_id=row["organization_id"],
        created_at=row["created_at"],
    )
