"""Organizations and their domains."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._domains import CONSUMER_DOMAINS, normalize_domain
from sso_gate._ids import new_id
from sso_gate._nul import refuse_nul
from sso_gate.exceptions import ConflictError, NotFoundError, ValidationError
from sso_gate.models import SSO_POLICIES, ListPage, Organization, OrganizationDomain, SSOPolicy
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.services.routing import RoutingService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import organization_domains, organizations

__all__ = ["OrganizationsService", "organization_from_rows"]


def _check_policy(value: object) -> SSOPolicy:
    if value not in SSO_POLICIES:
        raise ValidationError(
            f"sso_policy must be one of {', '.join(SSO_POLICIES)}, got {value!r}",
            field="sso_policy",
        )
    return value  # type: ignore[return-value]


def _check_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("name is required", field="name")
    if len(value) > 200:
        raise ValidationError("name is longer than 200 characters", field="name")
    return value.strip()


def _claimable(domain: str, field: str) -> str:
    d = normalize_domain(domain, field=field)
    if d in CONSUMER_DOMAINS:
        raise ValidationError(
            f"{d} is a consumer email domain and cannot belong to an organization", field=field
        )
    return d


def _mapping(row: repo.Row) -> tuple[tuple[tuple[str, str], ...], str | None]:
    settings = row.get("settings") or {}
    pairs = tuple((m["group"], m["role"]) for m in settings.get("role_mapping") or [])
    return pairs, settings.get("default_role")


def _domain_data(org: Organization, domain: str) -> dict[str, object]:
    for item in org.domains:
        if item.domain == domain:
            return item.to_dict()
    return {"domain": domain, "organization_id": org.id}


def organization_from_rows(row: repo.Row, domain_rows: Iterable[repo.Row]) -> Organization:
    role_mapping, default_role = _mapping(row)
    return Organization(
        id=row["id"],
        name=row["name"],
        role_mapping=role_mapping,
        default_role=default_role,
        require_verified_domains=bool(row["require_verified_domains"]),
        sso_policy=row["sso_policy"],
        external_id=row["external_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        domains=tuple(
            OrganizationDomain(
                id=d["id"],
                organization_id=d["organization_id"],
                domain=d["domain"],
                state=d["state"],
                created_at=d["created_at"],
                verification_token=d["verification_token"],
                verified_at=d["verified_at"],
                last_checked_at=d["last_checked_at"],
                verification_error=d["verification_error"],
            )
            for d in domain_rows
        ),
    )


class OrganizationsService:
    """``gate.organizations``: create, read, update, delete organizations and their domains."""

    def __init__(self, rt: Runtime, events: EventsService, routing: RoutingService) -> None:
        self._rt = rt
        self._events = events
        self._routing = routing

    async def _load(self, conn: AsyncConnection, organization_id: str) -> Organization:
        row = await repo.get_by_id(conn, organizations, organization_id)
        if row is None:
            raise NotFoundError(f"organization {organization_id!r} not found")
        domains = await repo.domains_of(conn, [organization_id])
        return organization_from_rows(row, domains[organization_id])

    async def _insert_domains(
        self, conn: AsyncConnection, organization_id: str, domains: Sequence[str]
    ) -> None:
        now = self._rt.clock()
        for d in domains:
            owner = await repo.domain_owner(conn, d)
            if owner is not None:
                raise ConflictError(
                    f"domain {d} already belongs to "
                    + ("this organization" if owner == organization_id else "another organization"),
                    code="domain_taken",
                )
            await repo.insert(
                conn,
                organization_domains,
                {
                    "id": new_id("org_domain"),
                    "organization_id": organization_id,
                    "domain": d,
                    # Verification by DNS arrives with the admin portal; until then a domain
                    # added by the app's operator is trusted as verified.
                    "state": "verified",
                    "created_at": now,
                },
            )

    async def create(
        self,
        name: str,
        domains: Sequence[str] = (),
        sso_policy: SSOPolicy = "optional",
        external_id: str | None = None,
    ) -> Organization:
        name = _check_name(name)
        policy = _check_policy(sso_policy)
        if isinstance(domains, str):
            raise ValidationError("domains must be a list of domain names", field="domains")
        clean = [_claimable(d, "domains") for d in domains]
        if len(set(clean)) != len(clean):
            raise ValidationError("domains contains duplicates", field="domains")
        now = self._rt.clock()
        org_id = new_id("org")
        try:
            async with self._rt.transaction() as conn:
                await repo.insert(
                    conn,
                    organizations,
                    {
                        "id": org_id,
                        "name": name,
                        "sso_policy": policy,
                        "external_id": external_id,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
                await self._insert_domains(conn, org_id, clean)
                org = await self._load(conn, org_id)
                ev = await self._events.record(conn, "organization.created", org.to_dict(), org_id)
        except IntegrityError:
            raise ConflictError(
                "an organization with that external_id or domain already exists", code="conflict"
            ) from None
        self._routing.invalidate(clean)
        await self._events.dispatch([ev])
        return org

    async def get(self, organization_id: str) -> Organization:
        async with self._rt.read() as conn:
            return await self._load(conn, organization_id)

    async def list(
        self,
        *,
        domain: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        where: list[sa.ColumnElement[bool]] = []
        if domain is not None:
            d = normalize_domain(domain, field="domains")
            where.append(
                organizations.c.id.in_(
                    sa.select(organization_domains.c.organization_id).where(
                        organization_domains.c.domain == d
                    )
                )
            )
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn, organizations, where, limit=limit, before=before, after=after, order=order
            )
            doms = await repo.domains_of(conn, [r["id"] for r in rows])
        return ListPage(tuple(organization_from_rows(r, doms[r["id"]]) for r in rows), b, a)

    async def update(
        self,
        organization_id: str,
        *,
        name: str | None = None,
        sso_policy: SSOPolicy | None = None,
        domains: Sequence[str] | None = None,
    ) -> Organization:
        """Update fields; ``domains`` replaces the whole domain list (WorkOS semantics)."""
        values: dict[str, Any] = {"updated_at": self._rt.clock()}
        if name is not None:
            values["name"] = _check_name(name)
        if sso_policy is not None:
            values["sso_policy"] = _check_policy(sso_policy)
        clean = None if domains is None else [_claimable(d, "domains") for d in domains]
        if clean is not None and len(set(clean)) != len(clean):
            raise ValidationError("domains contains duplicates", field="domains")
        async with self._rt.transaction() as conn:
            before = await self._load(conn, organization_id)
            await repo.update_by_id(conn, organizations, organization_id, values)
            if clean is not None:
                keep = {d.domain for d in before.domains} & set(clean)
                await conn.execute(
                    sa.delete(organization_domains).where(
                        organization_domains.c.organization_id == organization_id,
                        organization_domains.c.domain.not_in(keep) if keep else sa.true(),
                    )
                )
                await self._insert_domains(
                    conn, organization_id, [d for d in clean if d not in keep]
                )
            org = await self._load(conn, organization_id)
            ev = await self._events.record(conn, "organization.updated", org.to_dict(), org.id)
        self._routing.invalidate([d.domain for d in before.domains] + (clean or []))
        await self._events.dispatch([ev])
        return org

    async def add_domain(self, organization_id: str, domain: str) -> Organization:
        d = _claimable(domain, "domain")
        async with self._rt.transaction() as conn:
            await self._load(conn, organization_id)
            await self._insert_domains(conn, organization_id, [d])
            org = await self._load(conn, organization_id)
            ev = await self._events.record(
                conn, "organization_domain.created", _domain_data(org, d), organization_id
            )
        self._routing.invalidate([d])
        await self._events.dispatch([ev])
        return org

    async def remove_domain(self, organization_id: str, domain: str) -> Organization:
        d = normalize_domain(domain)
        async with self._rt.transaction() as conn:
            result = await conn.execute(
                sa.delete(organization_domains).where(
                    organization_domains.c.organization_id == organization_id,
                    organization_domains.c.domain == d,
                )
            )
            if not result.rowcount:
                raise NotFoundError(
                    f"domain {d} is not a domain of organization {organization_id!r}"
                )
            org = await self._load(conn, organization_id)
            ev = await self._events.record(
                conn,
                "organization_domain.deleted",
                {"domain": d, "organization_id": organization_id},
                organization_id,
            )
        self._routing.invalidate([d])
        await self._events.dispatch([ev])
        return org

    async def set_role_mapping(
        self,
        organization_id: str,
        mapping: Sequence[tuple[str, str]],
        default_role: str | None = None,
    ) -> Organization:
        """Directory group -> role, in priority order: an SSO user's roles are the roles of their
        directory groups (first match = ``role``), else ``default_role``. Guards check them."""
        pairs = []
        for item in mapping:
            if (
                not isinstance(item, tuple | list)
                or len(item) != 2
                or not all(isinstance(x, str) and x.strip() and len(x) <= 200 for x in item)
            ):
                raise ValidationError(
                    "role_mapping entries are (group, role) strings", field="role_mapping"
                )
            pairs.append({"group": item[0], "role": item[1]})
        if default_role is not None and (
            not isinstance(default_role, str) or not default_role.strip()
        ):
            raise ValidationError("default_role must be a non-empty string", field="default_role")
        # kept in a JSON column (found by the API fuzz: stored and answered back)
        refuse_nul(role_mapping=pairs, default_role=default_role)
        async with self._rt.transaction() as conn:
            row = await repo.get_by_id(conn, organizations, organization_id)
            if row is None:
                raise NotFoundError(f"organization {organization_id!r} not found")
            settings = dict(row["settings"] or {})
            settings["role_mapping"] = pairs
            settings["default_role"] = default_role
            await repo.update_by_id(
                conn,
                organizations,
                organization_id,
                {"settings": settings, "updated_at": self._rt.clock()},
            )
            org = await self._load(conn, organization_id)
        return org

    async def delete(self, organization_id: str) -> None:
        async with self._rt.transaction() as conn:
            org = await self._load(conn, organization_id)
            await repo.delete_by_id(conn, organizations, organization_id)
            ev = await self._events.record(conn, "organization.deleted", org.to_dict(), org.id)
        self._routing.invalidate([d.domain for d in org.domains])
        await self._events.dispatch([ev])
