"""The outbox sequencer: gives committed events their place in the feed and fans them out.

Events are written with ULID ids in the transaction of the change that causes them. Two
instances can commit ULIDs out of order, so a reader that pages by id could skip an event that
commits late. The sequencer fixes that: one at a time (a row lock on ``worker_leases`` that
every backend honours), it takes committed events that have no ``seq`` yet, numbers them after
the highest ``seq`` so far, and in the same transaction creates one webhook delivery per
subscribed enabled endpoint. The Events API pages by ``seq``, so a consumer that polls with
``after=<last id>`` never misses an event.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate.store.tables import events, webhook_deliveries, webhook_endpoints, worker_leases

__all__ = ["lock", "sequence", "matches", "new_delivery", "BATCH"]

BATCH = 1000
_SET_SEQ = (
    sa.update(events).where(events.c.id == sa.bindparam("b_id")).values(seq=sa.bindparam("b_seq"))
)


def matches(patterns: Sequence[str], event: str) -> bool:
    return any(p == event or fnmatch.fnmatchcase(event, p) for p in patterns)


def new_delivery(endpoint_id: str, event_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("whd"),
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "claim": None,
        "last_status_code": None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }


async def lock(conn: AsyncConnection, name: str, now: datetime) -> None:
    """Hold a named mutex until the transaction ends (a row lock on PostgreSQL, the write
    lock on SQLite — taken by the first statement, so no read-then-upgrade deadlock)."""
    ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        ins(worker_leases)
        .values(name=name, holder="mutex", expires_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    await conn.execute(
        sa.update(worker_leases).where(worker_leases.c.name == name).values(expires_at=now)
    )


async def sequence(conn: AsyncConnection, now: datetime, *, batch: int = BATCH) -> int:
    """Number up to ``batch`` unsequenced events and create their webhook deliveries. Runs in
    the caller's transaction; returns how many events were numbered."""
    await lock(conn, "sequencer", now)
    rows = (
        await conn.execute(
            sa.select(events.c.id, events.c.event, events.c.organization_id)
            .where(events.c.seq.is_(None))
            .order_by(events.c.id)
            .limit(batch)
        )
    ).all()
    if not rows:
        return 0
    top = (await conn.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0)))).scalar()
    start = int(top or 0)
    await conn.execute(
        _SET_SEQ, [{"b_id": r.id, "b_seq": start + i + 1} for i, r in enumerate(rows)]
    )
    endpoints = (
        await conn.execute(
            sa.select(
                webhook_endpoints.c.id,
                webhook_endpoints.c.events,
                webhook_endpoints.c.organization_id,
            ).where(webhook_endpoints.c.enabled.is_(True))
        )
    ).all()
    deliveries = [
        new_delivery(ep.id, r.id, now)
        for r in rows
        for ep in endpoints
        if (ep.organization_id is None or ep.organization_id == r.organization_id)
        and matches(ep.events, r.event)
    ]
    if deliveries:
        await conn.execute(sa.insert(webhook_deliveries), deliveries)
    return len(rows)
