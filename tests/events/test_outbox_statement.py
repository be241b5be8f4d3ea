"""A gate event and its audit entry are written by one statement (the SQLite view
``outbox_entries`` of migration 0007, a data-modifying WITH on PostgreSQL): both rows or
neither, read back exactly as the two-statement path wrote them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sso_gate import SSOGate
from sso_gate.store.tables import audit_events, events

pytestmark = pytest.mark.anyio

DATA = {
    "id": "directory_user_01",
    "emails": [{"primary": True, "value": "ada@example.com", "type": "work"}],
    "first_name": "Ada",
    "last_name": "Lovelace ü 🦄",  # non-ASCII survives the hand-made JSON text
    "state": "active",
    "raw_attributes": {"nested": {"n": 1, "f": 1.5, "none": None, "t": True}},
    "custom_attributes": {},
}


@contextmanager
def statements(gate: SSOGate) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    engine = gate._rt.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)


async def rows(gate: SSOGate, event_id: str) -> tuple[Any, list[Any]]:
    async with gate._rt.read() as conn:
        ev = (await conn.execute(sa.select(events).where(events.c.id == event_id))).one()
        audit = (
            await conn.execute(
                sa.select(audit_events)
                .where(audit_events.c.organization_id == ev.organization_id)
                .where(audit_events.c.action == ev.event)
                .order_by(audit_events.c.id)
            )
        ).all()
    return ev, audit


async def test_one_statement_writes_both_rows_as_two_statements_did(gate: SSOGate) -> None:
    org = (await gate.organizations.create("Acme")).id
    with statements(gate) as seen:
        one = await gate.events.emit("dsync.user.created", DATA, org)
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith(("INSERT", "WITH"))

    # the same event written the other way: the event through SQLAlchemy, the entry apart
    auditor, gate.events.auditor = gate.events.auditor, None
    try:
        async with gate._rt.transaction() as conn:
            two = await gate.events.record(conn, "dsync.user.created", DATA, org)
            await gate.audit.record(conn, org, two.event, two.data)
    finally:
        gate.events.auditor = auditor

    ev1, audit = await rows(gate, one.id)
    ev2, _ = await rows(gate, two.id)
    for ev, made in ((ev1, one), (ev2, two)):
        assert ev.data == DATA and ev.organization_id == org and ev.event == "dsync.user.created"
        assert ev.created_at == made.created_at  # to the microsecond, as a UTC datetime
        assert ev.created_at.utcoffset() is not None and ev.seq is None
    assert len(audit) == 2
    first, second = audit
    assert first.actor == second.actor and first.targets == second.targets
    assert first.metadata == second.metadata and first.context == second.context
    assert first.created_at.utcoffset() is not None and first.seq is None

    # both entries are chained and verifiable, and the Events API reads the event back
    assert (await gate.audit.verify(org)).ok
    page = await gate.events.list(events=["dsync.user.created"])
    assert {e.id for e in page.data} >= {one.id, two.id}
    assert next(e for e in page.data if e.id == one.id).data == DATA


async def test_event_without_its_entry_is_not_written(gate: SSOGate) -> None:
    """The audit half fails (an id already taken): the event is not written either."""
    org = (await gate.organizations.create("Acme")).id
    async with gate._rt.read() as conn:
        taken = (await conn.execute(sa.select(audit_events.c.id).limit(1))).scalar_one()
        before = (await conn.execute(sa.select(sa.func.count()).select_from(events))).scalar()
    real = gate.audit.event_entry

    def clashing(event: Any, *, sqlite: bool) -> tuple[Any, ...]:
        return (taken, *real(event, sqlite=sqlite)[1:])

    gate.audit.event_entry = clashing  # type: ignore[method-assign]
    with pytest.raises(IntegrityError):
        await gate.events.emit("dsync.user.created", DATA, org)
    del gate.audit.event_entry
    async with gate._rt.read() as conn:
        after = (await conn.execute(sa.select(sa.func.count()).select_from(events))).scalar()
    assert after == before
    await gate.events.emit("dsync.user.created", DATA, org)  # and the next one is written
