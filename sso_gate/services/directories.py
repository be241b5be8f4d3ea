"""Directories: one SCIM endpoint per directory, authenticated by a bearer token that is shown
once and stored as a SHA-256 hash. Rotation keeps the previous token valid for a grace period,
so the IdP can be updated without an outage; revocation kills both."""

from __future__ import annotations

import builtins
import dataclasses
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sso_gate._crypto import constant_time_equals, hash_token
from sso_gate._ids import new_id
from sso_gate.exceptions import AuthenticationError, NotFoundError, ValidationError
from sso_gate.models import (
    DIRECTORY_TYPES,
    Directory,
    DirectoryGroup,
    DirectoryUser,
    ListPage,
)
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import (
    directories,
    directory_group_members,
    directory_groups,
    directory_users,
    organizations,
    scim_requests,
)

__all__ = [
    "DirectoriesService",
    "DirectoryCounts",
    "ProvisioningRequest",
    "user_from_row",
    "group_from_row",
    "groups_of",
    "ROTATION_GRACE",
]

ROTATION_GRACE = timedelta(hours=24)
_AUTH_CACHE_TTL = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class ProvisioningRequest:
    """One logged SCIM request of a directory: every write, and every failed request after the
    bearer token was accepted (``error`` is the SCIM error detail)."""

    id: str
    directory_id: str
    method: str
    path: str
    status: int
    error: str | None
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryCounts:
    """How many users (deleted tombstones excluded) and groups a directory holds."""

    users: int
    groups: int


def directory_from_row(row: repo.Row) -> Directory:
    settings = row["settings"] or {}
    return Directory(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        type=row["type"],
        state=row["state"],
        token_hint=row["token_hint"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deprovision_blocks_sso=bool(settings.get("deprovision_blocks_sso", True)),
    )


def group_from_row(row: repo.Row) -> DirectoryGroup:
    return DirectoryGroup(
        id=row["id"],
        directory_id=row["directory_id"],
        organization_id=row["organization_id"],
        idp_id=row["external_id"],
        name=row["display_name"],
        raw_attributes=dict(row["resource"] or {}),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def user_from_row(row: repo.Row, groups: tuple[DirectoryGroup, ...] = ()) -> DirectoryUser:
    resource = dict(row["resource"] or {})
    custom: dict[str, Any] = {}
    enterprise = resource.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
    if isinstance(enterprise, dict):
        for key in ("department", "division", "costCenter", "organization", "employeeNumber"):
            if key in enterprise:
                custom[key] = enterprise[key]
        manager = enterprise.get("manager")
        if isinstance(manager, dict) and manager.get("value"):
            custom["manager_id"] = manager["value"]
    if resource.get("title"):
        custom["job_title"] = resource["title"]
    return DirectoryUser(
        id=row["id"],
        directory_id=row["directory_id"],
        organization_id=row["organization_id"],
        idp_id=row["external_id"],
        username=row["user_name"],
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        state=row["state"],
        custom_attributes=custom,
        raw_attributes=resource,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        groups=groups,
    )


async def groups_of(conn: Any, user_ids: list[str]) -> dict[str, list[DirectoryGroup]]:
    out: dict[str, list[DirectoryGroup]] = {u: [] for u in user_ids}
    if not user_ids:
        return out
    stmt = (
        sa.select(directory_group_members.c.user_id, directory_groups)
        .join(directory_groups, directory_groups.c.id == directory_group_members.c.group_id)
        .where(directory_group_members.c.user_id.in_(user_ids))
    )
    for row in (await conn.execute(stmt)).all():
        out[row.user_id].append(group_from_row(row._mapping))
    return out


def _scope(
    table: sa.Table, directory_id: str | None, organization_id: str | None, related: str | None
) -> list[sa.ColumnElement[bool]]:
    """The filters every directory listing starts from; one of the three scopes is required."""
    if not (directory_id or organization_id or related):
        raise ValidationError(
            "give a directory, an organization or a related id", field="directory"
        )
    where: list[sa.ColumnElement[bool]] = []
    if directory_id:
        where.append(table.c.directory_id == directory_id)
    if organization_id:
        where.append(table.c.organization_id == organization_id)
    return where


def _new_token() -> str:
    return "scim_" + secrets.token_urlsafe(32)


class DirectoriesService:
    """``gate.directories``: create directories, manage their tokens, read their users/groups."""

    def __init__(self, rt: Runtime, events: EventsService) -> None:
        self._rt = rt
        self._events = events
        # (directory id, token hash) -> (directory, deadline)
        self._auth: dict[tuple[str, str], tuple[Directory, float]] = {}

    def scim_base_url(self, directory_id: str) -> str:
        return self._rt.settings.gate_url(f"/scim/v2/{directory_id}")

    async def _load(self, conn: Any, directory_id: str) -> repo.Row:
        row = await repo.get_by_id(conn, directories, directory_id)
        if row is None:
            raise NotFoundError(f"directory {directory_id!r} not found", code="directory_not_found")
        return row

    async def create(
        self,
        organization_id: str,
        *,
        name: str | None = None,
        type: str = "generic scim v2.0",
        deprovision_blocks_sso: bool = True,
    ) -> tuple[Directory, str]:
        """Create a directory; returns it and its bearer token (shown this once)."""
        if type not in DIRECTORY_TYPES:
            raise ValidationError(f"type must be one of {', '.join(DIRECTORY_TYPES)}", field="type")
        if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 200):
            raise ValidationError("name must be 1-200 characters", field="name")
        token = _new_token()
        now = self._rt.clock()
        directory_id = new_id("directory")
        async with self._rt.transaction() as conn:
            org = await repo.get_by_id(conn, organizations, organization_id)
            if org is None:
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            await repo.insert(
                conn,
                directories,
                {
                    "id": directory_id,
                    "organization_id": organization_id,
                    "name": name or f"{org['name']} directory",
                    "type": type,
                    "state": "linked",
                    "token_hash": hash_token(token),
                    "token_hint": token[:9],
                    "settings": {"deprovision_blocks_sso": bool(deprovision_blocks_sso)},
                    "created_at": now,
                    "updated_at": now,
                },
            )
            directory = directory_from_row(await self._load(conn, directory_id))
            ev = await self._events.record(
                conn, "dsync.activated", {"directory": directory.to_dict()}, organization_id
            )
        await self._events.dispatch([ev])
        return directory, token

    async def get(self, directory_id: str) -> Directory:
        async with self._rt.read() as conn:
            return directory_from_row(await self._load(conn, directory_id))

    async def list(
        self,
        *,
        organization_id: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        where = [directories.c.organization_id == organization_id] if organization_id else []
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn, directories, where, limit=limit, before=before, after=after, order=order
            )
        return ListPage(tuple(directory_from_row(r) for r in rows), b, a)

    async def delete(self, directory_id: str) -> None:
        async with self._rt.transaction() as conn:
            directory = directory_from_row(await self._load(conn, directory_id))
            await repo.delete_by_id(conn, directories, directory_id)
            ev = await self._events.record(
                conn, "dsync.deleted", {"directory": directory.to_dict()}, directory.organization_id
            )
        self._forget(directory_id)
        await self._events.dispatch([ev])

    # -- tokens --------------------------------------------------------------------------------

    async def rotate_token(self, directory_id: str, *, grace: timedelta = ROTATION_GRACE) -> str:
        """A new token; the previous one keeps working for ``grace`` (then it is refused)."""
        token = _new_token()
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            row = await self._load(conn, directory_id)
            await repo.update_by_id(
                conn,
                directories,
                directory_id,
                {
                    "token_hash": hash_token(token),
                    "token_hint": token[:9],
                    "previous_token_hash": row["token_hash"],
                    "previous_token_expires_at": now + grace,
                    "updated_at": now,
                },
            )
            await self._events.audit(
                conn,
                "dsync.token.rotated",
                {"grace_seconds": int(grace.total_seconds())},
                row["organization_id"],
                targets=[{"type": "directory", "id": directory_id, "name": row["name"]}],
            )
        self._forget(directory_id)
        return token

    async def revoke_tokens(self, directory_id: str) -> None:
        """Refuse every token of the directory until a new one is issued by rotation."""
        async with self._rt.transaction() as conn:
            row = await self._load(conn, directory_id)
            await repo.update_by_id(
                conn,
                directories,
                directory_id,
                {
                    "token_hash": None,
                    "token_hint": None,
                    "previous_token_hash": None,
                    "previous_token_expires_at": None,
                    "updated_at": self._rt.clock(),
                },
            )
            await self._events.audit(
                conn,
                "dsync.token.revoked",
                {},
                row["organization_id"],
                targets=[{"type": "directory", "id": directory_id, "name": row["name"]}],
            )
        self._forget(directory_id)

    def _forget(self, directory_id: str) -> None:
        for key in [k for k in self._auth if k[0] == directory_id]:
            self._auth.pop(key, None)

    async def authenticate(self, directory_id: str, authorization: str | None) -> Directory:
        """The directory if ``authorization`` is ``Bearer <its token>``; else 401. The same
        answer for an unknown directory and a wrong token, so ids cannot be probed."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            raise AuthenticationError("missing or malformed bearer token")
        digest = hash_token(token)
        hit = self._auth.get((directory_id, digest))
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        async with self._rt.read() as conn:
            row = await repo.get_by_id(conn, directories, directory_id)
        now = self._rt.clock()
        ok = False
        if row is not None:
            current = row["token_hash"] or ""
            previous = row["previous_token_hash"] or ""
            expires = row["previous_token_expires_at"]
            ok = constant_time_equals(current, digest) if current else False
            if not ok and previous and expires is not None and expires > now:
                ok = constant_time_equals(previous, digest)
        if not ok or row is None or row["state"] != "linked":
            raise AuthenticationError("invalid bearer token for this directory")
        directory = directory_from_row(row)
        if len(self._auth) > 10_000:
            self._auth.clear()
        self._auth[(directory_id, digest)] = (directory, time.monotonic() + _AUTH_CACHE_TTL)
        return directory

    # -- provisioning activity ------------------------------------------------------------------

    async def recent_requests(
        self, directory_id: str, limit: int = 50
    ) -> builtins.list[ProvisioningRequest]:
        """The directory's latest logged SCIM requests, newest first."""
        if not 1 <= limit <= 500:
            raise ValidationError("limit must be between 1 and 500", field="limit")
        t = scim_requests
        stmt = sa.select(t).where(t.c.directory_id == directory_id).order_by(t.c.id.desc())
        async with self._rt.read() as conn:
            rows = (await conn.execute(stmt.limit(limit))).all()
        return [
            ProvisioningRequest(
                id=r.id,
                directory_id=r.directory_id,
                method=r.method,
                path=r.path,
                status=r.status,
                error=r.error,
                created_at=r.created_at,
            )
            for r in rows
        ]

    async def counts(self, directory_id: str) -> DirectoryCounts:
        """User and group counts of a directory (two indexed COUNT queries)."""
        users = sa.select(sa.func.count()).where(
            directory_users.c.directory_id == directory_id, directory_users.c.state != "deleted"
        )
        groups = sa.select(sa.func.count()).where(directory_groups.c.directory_id == directory_id)
        async with self._rt.read() as conn:
            n_users = (await conn.execute(users)).scalar_one()
            n_groups = (await conn.execute(groups)).scalar_one()
        return DirectoryCounts(users=int(n_users), groups=int(n_groups))

    # -- directory users and groups (WorkOS shapes) ---------------------------------------------

    async def list_users(
        self,
        *,
        directory_id: str | None = None,
        group_id: str | None = None,
        organization_id: str | None = None,
        email: str | None = None,
        state: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        where = _scope(directory_users, directory_id, organization_id, group_id)
        # deleted users are tombstones kept only to refuse their SSO logins
        where.append(directory_users.c.state != "deleted")
        if email:
            where.append(directory_users.c.email == email.lower())
        if state:
            where.append(directory_users.c.state == state)
        if group_id:
            where.append(
                directory_users.c.id.in_(
                    sa.select(directory_group_members.c.user_id).where(
                        directory_group_members.c.group_id == group_id
                    )
                )
            )
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn, directory_users, where, limit=limit, before=before, after=after, order=order
            )
            groups = await groups_of(conn, [r["id"] for r in rows])
        return ListPage(tuple(user_from_row(r, tuple(groups[r["id"]])) for r in rows), b, a)

    async def get_user(self, user_id: str) -> DirectoryUser:
        async with self._rt.read() as conn:
            row = await repo.get_by_id(conn, directory_users, user_id)
            if row is None or row["state"] == "deleted":
                raise NotFoundError(f"directory user {user_id!r} not found")
            groups = await groups_of(conn, [user_id])
        return user_from_row(row, tuple(groups[user_id]))

    async def list_groups(
        self,
        *,
        directory_id: str | None = None,
        user_id: str | None = None,
        organization_id: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        where = _scope(directory_groups, directory_id, organization_id, user_id)
        if user_id:
            where.append(
                directory_groups.c.id.in_(
                    sa.select(directory_group_members.c.group_id).where(
                        directory_group_members.c.user_id == user_id
                    )
                )
            )
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn, directory_groups, where, limit=limit, before=before, after=after, order=order
            )
        return ListPage(tuple(group_from_row(r) for r in rows), b, a)

    async def get_group(self, group_id: str) -> DirectoryGroup:
        async with self._rt.read() as conn:
            row = await repo.get_by_id(conn, directory_groups, group_id)
        if row is None:
            raise NotFoundError(f"directory group {group_id!r} not found")
        return group_from_row(row)
