"""SCIM 2.0 operations for one authenticated directory (RFC 7644 §3): list/filter, get, create,
replace, patch, delete for Users and Groups; events in the same transaction; deprovisioning.

Every query is scoped by ``directory_id``: ids of another directory are simply "not found".
Group membership lives in its own table, so adding or removing a member touches one row whatever
the group's size.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

import sso_gate.scim.filter as scim_filter
import sso_gate.scim.patch as scim_patch
import sso_gate.scim.schema as scim_schema
from sso_gate._ids import new_id
from sso_gate.models import Directory, DirectoryUser, Event
from sso_gate.scim.errors import SCIMError
from sso_gate.services._runtime import Runtime
from sso_gate.services._scim_store import (
    etag,
    group_columns,
    group_resource,
    sort_resources,
    user_columns,
    user_resource,
)
from sso_gate.services.directories import group_from_row, user_from_row
from sso_gate.services.events import EventsService
from sso_gate.services.sessions import SessionsService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import (
    directory_group_members,
    directory_groups,
    directory_users,
    scim_requests,
)

__all__ = ["SCIMService", "Kind", "MAX_COUNT", "DeprovisionHook", "RequestLog"]

log = logging.getLogger("sso_gate.scim")
Kind = Literal["Users", "Groups"]
MAX_COUNT = 1000  # RFC 7644 §3.4.2.4: the server may return fewer than asked
MAX_SCAN = 50_000  # resources a filter or sort may evaluate in Python before tooMany
DeprovisionHook = Callable[[DirectoryUser], Awaitable[None] | None]


def _not_found(kind: Kind, rid: str) -> SCIMError:
    return SCIMError(f"{kind[:-1]} {rid} not found", status=404)


def _check_version(row: repo.Row, if_match: str | None) -> None:
    """RFC 7644 §3.14: a stale ``If-Match`` is 412; ``*`` matches anything."""
    if if_match is None or if_match.strip() == "*":
        return
    wanted = {t.strip() for t in if_match.split(",")}
    if etag(row["version"]) not in wanted and etag(row["version"])[2:] not in wanted:
        raise SCIMError(
            f"resource version is {etag(row['version'])}, If-Match wanted {if_match}",
            status=412,
            scim_type="invalidVers",
        )


@dataclasses.dataclass
class _Tx:
    conn: AsyncConnection
    events: list[Event]


@dataclasses.dataclass(slots=True)
class RequestLog:
    """A successful write's entry in the provisioning request log, written in the write's own
    transaction (one transaction per write, not two); ``written`` is set once it is committed.
    A failed request is logged by the caller with ``log_request``, after the rollback."""

    method: str
    path: str
    status: int
    written: bool = False


@dataclasses.dataclass
class _Change:
    """What a PUT or PATCH makes of the stored resource."""

    resource: dict[str, Any]
    replace_members: Any = None
    add: list[str] = dataclasses.field(default_factory=list)
    remove: list[str] = dataclasses.field(default_factory=list)
    attributes_changed: bool = True


# The statements of the write paths, built once: building a statement and its cache key costs
# about 0.1 ms per execution (a good share of a single-row query); the compiled form is cached.
_TABLES: dict[str, sa.Table] = {"Users": directory_users, "Groups": directory_groups}
_ROW = {
    "Users": sa.select(directory_users).where(
        directory_users.c.id == sa.bindparam("rid"),
        directory_users.c.directory_id == sa.bindparam("did"),
        directory_users.c.state != "deleted",
    ),
    "Groups": sa.select(directory_groups).where(
        directory_groups.c.id == sa.bindparam("rid"),
        directory_groups.c.directory_id == sa.bindparam("did"),
    ),
}
# INSERT/UPDATE … RETURNING the row (PostgreSQL, SQLite >= 3.35): no re-read after a write.
# The SET clause of an update is the parameters named after columns.
_INSERT_PLAIN = {k: sa.insert(t) for k, t in _TABLES.items()}
_UPDATE_PLAIN = {
    k: sa.update(t).where(t.c.id == sa.bindparam("row_id")) for k, t in _TABLES.items()
}
_INSERT = {k: stmt.returning(*_TABLES[k].c) for k, stmt in _INSERT_PLAIN.items()}
_UPDATE = {k: stmt.returning(*_TABLES[k].c) for k, stmt in _UPDATE_PLAIN.items()}
_TAKEN = sa.select(directory_users.c.id).where(
    directory_users.c.directory_id == sa.bindparam("did"),
    directory_users.c.user_name_lower == sa.bindparam("name"),
    directory_users.c.state != "deleted",
)
_LIVE_USERS = sa.select(directory_users).where(
    directory_users.c.directory_id == sa.bindparam("did"),
    directory_users.c.id.in_(sa.bindparam("uids", expanding=True)),
    directory_users.c.state != "deleted",
)
_PRESENT = sa.select(directory_group_members.c.user_id).where(
    directory_group_members.c.group_id == sa.bindparam("gid"),
    directory_group_members.c.user_id.in_(sa.bindparam("uids", expanding=True)),
)
_MEMBER_IDS = (
    sa.select(directory_group_members.c.user_id)
    .where(directory_group_members.c.group_id == sa.bindparam("gid"))
    .order_by(directory_group_members.c.user_id)
)
_ADD_MEMBER = sa.insert(directory_group_members)
_DROP_MEMBER = sa.delete(directory_group_members).where(
    directory_group_members.c.group_id == sa.bindparam("gid"),
    directory_group_members.c.user_id == sa.bindparam("uid"),
)
_LOG = sa.insert(scim_requests)


class SCIMService:
    def __init__(
        self,
        rt: Runtime,
        events: EventsService,
        sessions: SessionsService,
        base_url: Callable[[str], str],
    ) -> None:
        self._rt = rt
        self._events = events
        self._sessions = sessions
        self._base_url = base_url
        self._deprovision_hooks: list[DeprovisionHook] = []

    def on_deprovision(self, fn: DeprovisionHook) -> None:
        self._deprovision_hooks.append(fn)

    async def log_request(
        self, directory_id: str, method: str, path: str, status: int, error: str | None
    ) -> None:
        """The provisioning request log (shown to the IT admin): writes and failures."""
        async with self._rt.transaction() as conn:
            await self._log_row(conn, directory_id, method, path, status, error)

    async def _log_row(
        self,
        conn: AsyncConnection,
        directory_id: str,
        method: str,
        path: str,
        status: int,
        error: str | None,
    ) -> None:
        await conn.execute(
            _LOG,
            {
                "id": new_id("scim_request"),
                "directory_id": directory_id,
                "method": method[:8],
                "path": path[:300],
                "status": status,
                "error": error,
                "created_at": self._rt.clock(),
            },
        )

    @asynccontextmanager
    async def _write(self, directory: Directory, log: RequestLog | None) -> AsyncIterator[_Tx]:
        """A write transaction; ``log``'s entry is its last statement."""
        async with self._rt.transaction() as conn:
            tx = _Tx(conn, [])
            yield tx
            if log is not None:
                await self._log_row(conn, directory.id, log.method, log.path, log.status, None)
        if log is not None:
            log.written = True

    @staticmethod
    def rtype(kind: Kind) -> Any:
        return scim_schema.USER_TYPE if kind == "Users" else scim_schema.GROUP_TYPE

    # -- reading ------------------------------------------------------------------------------

    async def _user_groups(
        self, conn: AsyncConnection, user_ids: list[str]
    ) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {u: [] for u in user_ids}
        if user_ids:
            stmt = (
                sa.select(
                    directory_group_members.c.user_id,
                    directory_groups.c.id,
                    directory_groups.c.display_name,
                )
                .join(directory_groups, directory_groups.c.id == directory_group_members.c.group_id)
                .where(directory_group_members.c.user_id.in_(user_ids))
            )
            for uid, gid, name in (await conn.execute(stmt)).all():
                out[uid].append((gid, name))
        return out

    async def _group_members(
        self, conn: AsyncConnection, group_ids: list[str], *, display: bool = True
    ) -> dict[str, list[tuple[str, str | None]]]:
        """Members in id order: (user id, userName for ``display``). Without ``display`` the
        ids come from the membership table alone (its primary key, no join): None names."""
        out: dict[str, list[tuple[str, str | None]]] = {g: [] for g in group_ids}
        if group_ids and not display:
            ids = (
                sa.select(directory_group_members.c.group_id, directory_group_members.c.user_id)
                .where(directory_group_members.c.group_id.in_(group_ids))
                .order_by(directory_group_members.c.user_id)
            )
            for gid, uid in (await conn.execute(ids)).all():
                out[gid].append((uid, None))
        elif group_ids:
            stmt = (
                sa.select(
                    directory_group_members.c.group_id,
                    directory_users.c.id,
                    directory_users.c.user_name,
                )
                .join(directory_users, directory_users.c.id == directory_group_members.c.user_id)
                .where(directory_group_members.c.group_id.in_(group_ids))
                # = directory_users.id (the join); walks the primary key, no sort step
                .order_by(directory_group_members.c.user_id)
            )
            for gid, uid, name in (await conn.execute(stmt)).all():
                out[gid].append((uid, name))
        return out

    async def _resources(
        self,
        conn: AsyncConnection,
        directory: Directory,
        kind: Kind,
        rows: list[repo.Row],
        *,
        related: bool,
        member_display: bool = True,
    ) -> list[dict[str, Any]]:
        base = self._base_url(directory.id)
        ids = [r["id"] for r in rows]
        if kind == "Users":
            groups = await self._user_groups(conn, ids) if related else {}
            return [user_resource(r, base, groups.get(r["id"]) if related else None) for r in rows]
        members = await self._group_members(conn, ids, display=member_display) if related else {}
        return [group_resource(r, base, members.get(r["id"]) if related else None) for r in rows]

    def _table(self, kind: Kind) -> sa.Table:
        return directory_users if kind == "Users" else directory_groups

    def _scope(self, kind: Kind, directory: Directory) -> list[sa.ColumnElement[bool]]:
        table = self._table(kind)
        conds: list[sa.ColumnElement[bool]] = [table.c.directory_id == directory.id]
        if kind == "Users":
            conds.append(directory_users.c.state != "deleted")
        return conds

    async def _row(
        self, conn: AsyncConnection, directory: Directory, kind: Kind, rid: str
    ) -> repo.Row:
        row = (await conn.execute(_ROW[kind], {"rid": rid, "did": directory.id})).first()
        if row is None:
            raise _not_found(kind, rid)
        return row._mapping

    async def _insert(
        self, conn: AsyncConnection, directory: Directory, kind: Kind, values: dict[str, Any]
    ) -> repo.Row:
        """Insert the row and return it as stored."""
        if conn.dialect.insert_returning:
            return (await conn.execute(_INSERT[kind], values)).one()._mapping
        await conn.execute(_INSERT_PLAIN[kind], values)  # SQLite < 3.35: no RETURNING
        return await self._row(conn, directory, kind, values["id"])

    async def _update(
        self, conn: AsyncConnection, kind: Kind, rid: str, values: dict[str, Any]
    ) -> repo.Row:
        """Update the row and return it as it now is (``_row`` read it in this transaction)."""
        params = {"row_id": rid, **values}
        if conn.dialect.update_returning:
            found = (await conn.execute(_UPDATE[kind], params)).first()
            row = None if found is None else found._mapping
        else:  # SQLite < 3.35: no RETURNING
            await conn.execute(_UPDATE_PLAIN[kind], params)
            row = await repo.get_by_id(conn, _TABLES[kind], rid)
        if row is None:  # pragma: no cover - deleted by a concurrent transaction
            raise _not_found(kind, rid)
        return row

    async def get(
        self,
        directory: Directory,
        kind: Kind,
        rid: str,
        *,
        related: bool = True,
        member_display: bool = True,
    ) -> dict[str, Any]:
        """The resource; ``related`` and ``member_display`` as for the write methods."""
        async with self._rt.read() as conn:
            row = await self._row(conn, directory, kind, rid)
            resources = await self._resources(
                conn, directory, kind, [row], related=related, member_display=member_display
            )
            return resources[0]

    async def list_resources(
        self,
        directory: Directory,
        kind: Kind,
        *,
        filter_text: str | None,
        start_index: int,
        count: int,
        sort_by: str | None,
        sort_order: str,
        related: bool,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(totalResults, the page). Indexed equalities narrow the SQL query; the parsed filter is
        then evaluated on every candidate, so results never depend on the shortcut."""
        rtype = self.rtype(kind)
        table = self._table(kind)
        conds = self._scope(kind, directory)
        flt = scim_filter.parse_filter(filter_text) if filter_text else None
        unique = False  # an equality on a unique column: at most one candidate
        if flt is not None:
            for key, value in scim_filter.indexable_equalities(flt, rtype).items():
                column = {
                    "userName": "user_name_lower",
                    "externalId": "external_id",
                    "id": "id",
                    "email": "email",
                    "displayName": "display_name_lower",
                }.get(key)
                if key == "active" and kind == "Users":
                    conds.append(directory_users.c.state == ("active" if value else "inactive"))
                elif column is not None and column in table.c:
                    conds.append(table.c[column] == value)
                    # ids, and userNames within a directory (uq_directory_users_user_name)
                    unique = unique or column in ("id", "user_name_lower")
        count = max(0, min(count, MAX_COUNT))
        start = max(1, start_index)
        async with self._rt.read() as conn:
            if flt is None and sort_by is None:
                total = (
                    await conn.execute(sa.select(sa.func.count()).select_from(table).where(*conds))
                ).scalar_one()
                stmt = (
                    sa.select(table)
                    .where(*conds)
                    .order_by(table.c.id)
                    .offset(start - 1)
                    .limit(count)
                )
                rows = [r._mapping for r in (await conn.execute(stmt)).all()]
                return int(total), await self._resources(
                    conn, directory, kind, rows, related=related
                )
            candidates = (
                1  # no need to count (a query saved on the IdPs' userName lookups)
                if unique
                else (
                    await conn.execute(sa.select(sa.func.count()).select_from(table).where(*conds))
                ).scalar_one()
            )
            if candidates > MAX_SCAN:
                # RFC 7644 §3.12 tooMany: the filter does not narrow the search enough to be
                # answered without scanning the whole directory.
                raise SCIMError(
                    f"the filter would examine {candidates} resources (limit {MAX_SCAN}); "
                    "add an equality on userName, externalId, id, emails.value or displayName",
                    scim_type="tooMany",
                )
            rows = [
                r._mapping
                for r in (
                    await conn.execute(sa.select(table).where(*conds).order_by(table.c.id))
                ).all()
            ]
            needs_related = related or (
                filter_text is not None and ("groups" in filter_text or "members" in filter_text)
            )
            resources = await self._resources(conn, directory, kind, rows, related=needs_related)
        if flt is not None:
            resources = [r for r in resources if scim_filter.evaluate(flt, r, rtype)]
        if sort_by:
            resources = sort_resources(resources, sort_by, sort_order)
        total = len(resources)
        page = resources[start - 1 : start - 1 + count]
        if needs_related and not related:
            for r in page:
                r.pop("groups" if kind == "Users" else "members", None)
        return total, page

    # -- writing ------------------------------------------------------------------------------

    async def _uniqueness(
        self,
        conn: AsyncConnection,
        directory: Directory,
        kind: Kind,
        cols: dict[str, Any],
        exclude: str | None,
    ) -> None:
        if kind != "Users":
            return
        params = {"did": directory.id, "name": cols["user_name_lower"]}
        found = (await conn.execute(_TAKEN, params)).scalar_one_or_none()
        if found is not None and found != exclude:
            raise SCIMError(
                f"userName {cols['user_name']!r} is already taken in this directory",
                status=409,
                scim_type="uniqueness",
            )

    async def _set_members(
        self, tx: _Tx, directory: Directory, group: repo.Row, add: list[str], remove: list[str]
    ) -> None:
        """Add/remove membership rows one by one (no rewrite of the group); events per change."""
        gid = group["id"]
        added: dict[str, repo.Row] = {}  # the users added, read once for validation and events
        if add:
            params = {"did": directory.id, "uids": add}
            added = {r.id: r._mapping for r in (await tx.conn.execute(_LIVE_USERS, params)).all()}
            unknown = [u for u in add if u not in added]
            if unknown:
                raise SCIMError(
                    f"members {unknown[:5]} are not users of this directory",
                    scim_type="invalidValue",
                )
        params = {"gid": gid, "uids": list(set(add) | set(remove))}
        present = {r[0] for r in (await tx.conn.execute(_PRESENT, params)).all()}
        group_dict = group_from_row(group).to_dict()
        for uid in dict.fromkeys(add):
            if uid in present:
                continue
            await tx.conn.execute(
                _ADD_MEMBER, {"group_id": gid, "user_id": uid, "directory_id": directory.id}
            )
            await self._member_event(
                tx, directory, "dsync.group.user_added", uid, group_dict, added[uid]
            )
        for uid in dict.fromkeys(remove):
            if uid not in present:
                continue
            await tx.conn.execute(_DROP_MEMBER, {"gid": gid, "uid": uid})
            await self._member_event(tx, directory, "dsync.group.user_removed", uid, group_dict)

    async def _member_event(
        self,
        tx: _Tx,
        directory: Directory,
        event: str,
        uid: str,
        group: dict[str, Any],
        row: repo.Row | None = None,
    ) -> None:
        if row is None:
            row = await repo.get_by_id(tx.conn, directory_users, uid)
        user = user_from_row(row).to_dict() if row is not None else {"id": uid}
        tx.events.append(
            await self._events.record(
                tx.conn,
                event,
                {"directory_id": directory.id, "user": user, "group": group},
                directory.organization_id,
            )
        )

    async def _after(self, tx: _Tx, deprovisioned: list[DirectoryUser]) -> None:
        await self._events.dispatch(tx.events)
        for user in deprovisioned:
            if user.email:
                try:
                    await self._sessions.revoke_user(user.organization_id, email=user.email)
                except Exception:  # pragma: no cover - logged, the SCIM change stands
                    log.exception("revoking sessions of %s failed", user.id)
            for hook in self._deprovision_hooks:
                try:
                    result = hook(user)
                    if result is not None:
                        await result
                except Exception:
                    log.exception("deprovision hook %r failed for %s", hook, user.id)

    # The write methods take ``related`` (False: the response may leave out ``groups`` /
    # ``members``, which are then not loaded: the caller's ``attributes`` /
    # ``excludedAttributes`` drop them), ``member_display`` (False: the members' ``display``
    # may be left out, so only their ids are read) and ``log`` (the request log entry to write
    # in the same transaction).

    async def create(
        self,
        directory: Directory,
        kind: Kind,
        body: Any,
        *,
        related: bool = True,
        member_display: bool = True,
        log: RequestLog | None = None,
    ) -> dict[str, Any]:
        rtype = self.rtype(kind)
        resource = scim_schema.validate_resource(rtype, body)
        members = (
            [m.get("value") for m in resource.pop("members", []) or [] if isinstance(m, dict)]
            if kind == "Groups"
            else []
        )
        resource.pop("groups", None)
        now = self._rt.clock()
        rid = new_id("directory_user" if kind == "Users" else "directory_group")
        cols = user_columns(resource) if kind == "Users" else group_columns(resource)
        try:
            async with self._write(directory, log) as tx:
                conn = tx.conn
                await self._uniqueness(conn, directory, kind, cols, None)
                values = {
                    "id": rid,
                    "directory_id": directory.id,
                    "organization_id": directory.organization_id,
                    **cols,
                    "resource": resource,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                row = await self._insert(conn, directory, kind, values)
                if kind == "Users":
                    tx.events.append(
                        await self._events.record(
                            conn,
                            "dsync.user.created",
                            user_from_row(row).to_dict(),
                            directory.organization_id,
                        )
                    )
                    # A user created just now is in no group: nothing to look up.
                    base = self._base_url(directory.id)
                    out = user_resource(row, base, [] if related else None)
                else:
                    tx.events.append(
                        await self._events.record(
                            conn,
                            "dsync.group.created",
                            group_from_row(row).to_dict(),
                            directory.organization_id,
                        )
                    )
                    await self._set_members(
                        tx, directory, row, [m for m in members if isinstance(m, str)], []
                    )
                    resources = await self._resources(
                        conn, directory, kind, [row], related=related, member_display=member_display
                    )
                    out = resources[0]
        except IntegrityError:
            raise SCIMError(
                "a resource with these unique attributes already exists",
                status=409,
                scim_type="uniqueness",
            ) from None
        await self._after(tx, [])
        return out

    async def replace(
        self,
        directory: Directory,
        kind: Kind,
        rid: str,
        body: Any,
        if_match: str | None,
        *,
        related: bool = True,
        member_display: bool = True,
        log: RequestLog | None = None,
    ) -> dict[str, Any]:
        rtype = self.rtype(kind)
        base = self._base_url(directory.id)

        def change(current: repo.Row) -> _Change:
            existing = _stored(kind, current, base)
            resource = scim_schema.validate_resource(rtype, body, existing=existing)
            members = resource.pop("members", None) if kind == "Groups" else None
            resource.pop("groups", None)
            return _Change(resource, replace_members=members)

        return await self._store(
            directory, kind, rid, change, if_match, related, member_display, log
        )

    async def patch(
        self,
        directory: Directory,
        kind: Kind,
        rid: str,
        body: Any,
        if_match: str | None,
        *,
        related: bool = True,
        member_display: bool = True,
        log: RequestLog | None = None,
    ) -> dict[str, Any]:
        rtype = self.rtype(kind)
        base = self._base_url(directory.id)

        def change(current: repo.Row) -> _Change | None:
            existing = _stored(kind, current, base)
            result = scim_patch.apply_patch(rtype, existing, body)
            resource = {
                k: v
                for k, v in result.resource.items()
                if k not in ("id", "meta", "groups", "members")
            }
            mc = result.members
            if not result.changed and not mc.added and not mc.removed and mc.replaced is None:
                return None  # no-op PATCH (Entra sends these)
            replaced = None if mc.replaced is None else [{"value": v} for v in mc.replaced]
            return _Change(
                resource,
                replace_members=replaced,
                add=list(mc.added),
                remove=list(mc.removed),
                attributes_changed=result.changed,
            )

        return await self._store(
            directory, kind, rid, change, if_match, related, member_display, log
        )

    async def _store(
        self,
        directory: Directory,
        kind: Kind,
        rid: str,
        change: Callable[[repo.Row], _Change | None],
        if_match: str | None,
        related: bool,
        member_display: bool,
        log: RequestLog | None,
    ) -> dict[str, Any]:
        """Read the resource, ``change`` it and write it, in one transaction."""
        deprovisioned: list[DirectoryUser] = []
        try:
            async with self._write(directory, log) as tx:
                conn = tx.conn
                row = await self._row(conn, directory, kind, rid)
                plan = change(row)
                if plan is None:
                    _check_version(row, if_match)
                    new = row
                else:
                    new = await self._apply(tx, directory, kind, row, plan, if_match, deprovisioned)
                resources = await self._resources(
                    conn, directory, kind, [new], related=related, member_display=member_display
                )
                out = resources[0]
        except IntegrityError:
            raise SCIMError(
                "a resource with these unique attributes already exists",
                status=409,
                scim_type="uniqueness",
            ) from None
        await self._after(tx, deprovisioned)
        return out

    async def _apply(
        self,
        tx: _Tx,
        directory: Directory,
        kind: Kind,
        row: repo.Row,
        plan: _Change,
        if_match: str | None,
        deprovisioned: list[DirectoryUser],
    ) -> repo.Row:
        """Write ``plan`` over ``row``; returns the row as it now is."""
        conn, rid, resource = tx.conn, row["id"], plan.resource
        now = self._rt.clock()
        cols = user_columns(resource) if kind == "Users" else group_columns(resource)
        _check_version(row, if_match)
        await self._uniqueness(conn, directory, kind, cols, rid)
        new = row
        if plan.attributes_changed:
            values = {
                **cols,
                "resource": resource,
                "version": row["version"] + 1,
                "updated_at": now,
            }
            new = await self._update(conn, kind, rid, values)
        if kind == "Users" and plan.attributes_changed:
            user = user_from_row(new)
            data = user.to_dict()
            data["previous_attributes"] = _diff(row, new)
            tx.events.append(
                await self._events.record(
                    conn, "dsync.user.updated", data, directory.organization_id
                )
            )
            if row["state"] == "active" and new["state"] == "inactive":
                deprovisioned.append(user)
        elif kind == "Groups":
            if plan.attributes_changed:
                tx.events.append(
                    await self._events.record(
                        conn,
                        "dsync.group.updated",
                        group_from_row(new).to_dict(),
                        directory.organization_id,
                    )
                )
            adds, removes = list(plan.add), list(plan.remove)
            if plan.replace_members is not None:
                wanted: list[str] = [
                    m["value"]
                    for m in plan.replace_members
                    if isinstance(m, dict) and isinstance(m.get("value"), str)
                ]
                have_ids = [r[0] for r in (await conn.execute(_MEMBER_IDS, {"gid": rid})).all()]
                have, keep = set(have_ids), set(wanted)
                adds += [u for u in wanted if u not in have]
                removes += [u for u in have_ids if u not in keep]
            if adds or removes:
                await self._set_members(tx, directory, new, adds, removes)
                if not plan.attributes_changed:
                    values = {"version": row["version"] + 1, "updated_at": now}
                    new = await self._update(conn, "Groups", rid, values)
        return new

    async def delete(
        self,
        directory: Directory,
        kind: Kind,
        rid: str,
        if_match: str | None,
        *,
        log: RequestLog | None = None,
    ) -> None:
        """Users become tombstones (state ``deleted``: gone from SCIM and the API, but an SSO
        login of theirs is still recognised and refused); groups are removed."""
        now = self._rt.clock()
        deprovisioned: list[DirectoryUser] = []
        async with self._write(directory, log) as tx:
            conn = tx.conn
            row = await self._row(conn, directory, kind, rid)
            _check_version(row, if_match)
            if kind == "Users":
                user = user_from_row(row)
                await conn.execute(
                    sa.delete(directory_group_members).where(
                        directory_group_members.c.user_id == rid
                    )
                )
                await repo.update_by_id(
                    conn,
                    directory_users,
                    rid,
                    {
                        "state": "deleted",
                        "user_name_lower": f"deleted:{rid}",
                        "version": row["version"] + 1,
                        "updated_at": now,
                    },
                )
                data = dataclasses.replace(user, state="inactive").to_dict()
                tx.events.append(
                    await self._events.record(
                        conn, "dsync.user.deleted", data, directory.organization_id
                    )
                )
                if row["state"] == "active":
                    deprovisioned.append(dataclasses.replace(user, state="inactive"))
            else:
                group = group_from_row(row).to_dict()
                await conn.execute(
                    sa.delete(directory_group_members).where(
                        directory_group_members.c.group_id == rid
                    )
                )
                await repo.delete_by_id(conn, directory_groups, rid)
                tx.events.append(
                    await self._events.record(
                        conn, "dsync.group.deleted", group, directory.organization_id
                    )
                )
        await self._after(tx, deprovisioned)


def _stored(kind: Kind, row: repo.Row, base: str) -> dict[str, Any]:
    """The resource as stored (no groups/members), the input of PUT validation and PATCH."""
    return user_resource(row, base) if kind == "Users" else group_resource(row, base, None)


def _diff(old: repo.Row, new: repo.Row) -> dict[str, Any]:
    """Previous values of the changed top-level attributes (WorkOS ``previous_attributes``)."""
    a, b = dict(old["resource"] or {}), dict(new["resource"] or {})
    return {k: a.get(k) for k in set(a) | set(b) if a.get(k) != b.get(k)}
