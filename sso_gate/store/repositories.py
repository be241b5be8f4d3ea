"""Queries over the tables. Each function takes an open connection; the caller (a service)
owns the transaction, so a state change and the event it causes commit together."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate.store.tables import (
    connections,
    events,
    organization_domains,
    organizations,
    profiles,
    sessions,
)

__all__ = [
    "Row",
    "Order",
    "paginate",
    "insert",
    "get_by_id",
    "update_by_id",
    "delete_by_id",
    "domains_of",
    "domain_owner",
    "routing_row",
    "upsert_profile",
    "session_by_token_hash",
    "revoke_sessions",
    "insert_event",
]

Row = RowMapping
Order = Literal["asc", "desc"]


async def paginate(
    conn: AsyncConnection,
    table: sa.Table,
    where: Sequence[sa.ColumnElement[bool]] = (),
    *,
    limit: int = 10,
    before: str | None = None,
    after: str | None = None,
    order: Order = "desc",
    leading: Sequence[sa.ColumnElement[Any]] = (),
) -> tuple[list[Row], str | None, str | None]:
    """Cursor pagination over time-sortable ids, WorkOS style.

    ``leading``: columns ``where`` holds constant, ordered before the id (the same direction),
    so only an index that starts with them can give the order (see ``AuditService._scope``).

    Returns ``(rows, before_cursor, after_cursor)``: ``after`` is the id to pass to get the next
    page in ``order``; ``before`` the id to pass to get the previous page. ``None`` when there is
    no such page.
    """
    id_col = table.c.id
    conds = list(where)
    # "after" walks forward in the list's order, "before" walks backward.
    forward = before is None
    if after is not None:
        conds.append(id_col < after if order == "desc" else id_col > after)
    if before is not None:
        conds.append(id_col > before if order == "desc" else id_col < before)
    descending = (order == "desc") == forward
    stmt = (
        sa.select(table)
        .where(*conds)
        .order_by(*(c.desc() if descending else c.asc() for c in (*leading, id_col)))
        .limit(limit + 1)
    )
    rows = [r._mapping for r in (await conn.execute(stmt)).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if not rows:
        return rows, None, None
    first, last = rows[0]["id"], rows[-1]["id"]
    if forward:
        return rows, (first if after is not None else None), (last if more else None)
    return rows, (first if more else None), last


async def insert(conn: AsyncConnection, table: sa.Table, values: Mapping[str, Any]) -> None:
    await conn.execute(sa.insert(table).values(**values))


async def get_by_id(conn: AsyncConnection, table: sa.Table, id_: str) -> Row | None:
    row = (await conn.execute(sa.select(table).where(table.c.id == id_))).first()
    return None if row is None else row._mapping


async def update_by_id(
    conn: AsyncConnection, table: sa.Table, id_: str, values: Mapping[str, Any]
) -> bool:
    result = await conn.execute(sa.update(table).where(table.c.id == id_).values(**values))
    return bool(result.rowcount)


async def delete_by_id(conn: AsyncConnection, table: sa.Table, id_: str) -> bool:
    result = await conn.execute(sa.delete(table).where(table.c.id == id_))
    return bool(result.rowcount)


async def domains_of(
    conn: AsyncConnection, organization_ids: Sequence[str]
) -> dict[str, list[Row]]:
    """Domains of several organizations in one query."""
    out: dict[str, list[Row]] = {oid: [] for oid in organization_ids}
    if not organization_ids:
        return out
    stmt = (
        sa.select(organization_domains)
        .where(organization_domains.c.organization_id.in_(list(organization_ids)))
        .order_by(organization_domains.c.domain)
    )
    for row in (await conn.execute(stmt)).all():
        out[row.organization_id].append(row._mapping)
    return out


async def domain_owner(conn: AsyncConnection, domain: str) -> str | None:
    stmt = sa.select(organization_domains.c.organization_id).where(
        organization_domains.c.domain == domain
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def routing_row(conn: AsyncConnection, domain: str) -> tuple[str, str, str | None] | None:
    """``(organization_id, sso_policy, active connection id or None)`` for an email domain.

    One indexed query; with several active connections the oldest wins (deterministic).
    """
    conn_id = (
        sa.select(connections.c.id)
        .where(
            connections.c.organization_id == organizations.c.id,
            connections.c.state == "active",
        )
        .order_by(connections.c.id)
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        sa.select(organizations.c.id, organizations.c.sso_policy, conn_id)
        .select_from(
            organization_domains.join(
                organizations, organizations.c.id == organization_domains.c.organization_id
            )
        )
        .where(
            organization_domains.c.domain == domain,
            # an organization that requires DNS verification routes only verified domains
            sa.or_(
                organization_domains.c.state == "verified",
                organizations.c.require_verified_domains.is_(False),
            ),
        )
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return row[0], row[1], row[2]


async def upsert_profile(
    conn: AsyncConnection,
    *,
    new_id: str,
    organization_id: str,
    connection_id: str,
    idp_id: str,
    email: str,
    now: datetime,
) -> str:
    """The stable profile id for (connection, IdP subject); created on first login."""
    stmt = sa.select(profiles.c.id).where(
        profiles.c.connection_id == connection_id, profiles.c.idp_id == idp_id
    )
    existing = (await conn.execute(stmt)).scalar_one_or_none()
    if existing is not None:
        await conn.execute(
            sa.update(profiles)
            .where(profiles.c.id == existing)
            .values(email=email, last_login_at=now)
        )
        return str(existing)
    await insert(
        conn,
        profiles,
        {
            "id": new_id,
            "organization_id": organization_id,
            "connection_id": connection_id,
            "idp_id": idp_id,
            "email": email,
            "created_at": now,
            "last_login_at": now,
        },
    )
    return new_id


async def session_by_token_hash(conn: AsyncConnection, token_hash: str) -> Row | None:
    row = (
        await conn.execute(sa.select(sessions).where(sessions.c.token_hash == token_hash))
    ).first()
    return None if row is None else row._mapping


async def revoke_sessions(
    conn: AsyncConnection,
    now: datetime,
    *,
    session_id: str | None = None,
    profile_id: str | None = None,
    organization_id: str | None = None,
    email: str | None = None,
) -> list[str]:
    """Revoke live sessions matching the filters; returns the revoked session ids."""
    conds: list[sa.ColumnElement[bool]] = [sessions.c.revoked_at.is_(None)]
    if session_id is not None:
        conds.append(sessions.c.id == session_id)
    if profile_id is not None:
        conds.append(sessions.c.profile_id == profile_id)
    if organization_id is not None:
        conds.append(sessions.c.organization_id == organization_id)
    if email is not None:
        conds.append(sessions.c.email == email)
    if len(conds) == 1:
        raise ValueError("refusing to revoke every session without a filter")
    ids = [r[0] for r in (await conn.execute(sa.select(sessions.c.id).where(*conds))).all()]
    if ids:
        await conn.execute(sa.update(sessions).where(sessions.c.id.in_(ids)).values(revoked_at=now))
    return ids


async def insert_event(
    conn: AsyncConnection,
    *,
    id_: str,
    event: str,
    organization_id: str | None,
    data: Mapping[str, Any],
    now: datetime,
) -> None:
    await insert(
        conn,
        events,
        {
            "id": id_,
            "event": event,
            "organization_id": organization_id,
            "data": dict(data),
            "created_at": now,
        },
    )
