"""The protocol-independent end of every sign-in: check the email, assign the stable profile id,
build the normalized :class:`Profile`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sso_gate._domains import email_domain, normalize_email
from sso_gate._ids import new_id
from sso_gate.exceptions import SSOGateError, TokenValidationError
from sso_gate.models import Connection, Profile
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import (
    directories,
    directory_group_members,
    directory_groups,
    directory_users,
    organizations,
)

__all__ = ["build_profile", "record_failure"]

log = logging.getLogger("sso_gate.sso")


async def record_failure(events: EventsService, connection: Connection, exc: SSOGateError) -> None:
    """Best effort: a failure to record must not hide the sign-in error itself."""
    events.metrics.login(connection.protocol, "failed", exc.code)
    # exception messages name what failed, never a secret (tests/test_no_secrets_in_logs.py)
    log.info("sign-in failed on %s: %s (%s)", connection.id, exc.message, exc.code)
    try:
        await events.emit(
            "authentication.sso_failed",
            {
                "type": connection.protocol,
                "connection_id": connection.id,
                "error": {"code": exc.code, "message": exc.message},
            },
            connection.organization_id,
        )
    except SSOGateError:
        log.warning("could not record sso_failed event for %s", connection.id)


async def build_profile(
    rt: Runtime,
    events: EventsService,
    connection: Connection,
    *,
    idp_id: str,
    email: object,
    first_name: str | None,
    last_name: str | None,
    groups: Sequence[str],
    role: str | None,
    roles: Sequence[str],
    raw_attributes: dict[str, Any],
    custom_attributes: dict[str, Any],
    require_domain_match: bool,
    hint: str,
) -> Profile:
    """``require_domain_match``: the email's domain must be one of the organization's, so an IdP
    of one tenant cannot sign users into another tenant's domain. The profile upsert and the
    ``authentication.sso_succeeded`` event commit in one transaction."""
    if not isinstance(email, str) or email_domain(email) is None:
        raise TokenValidationError(
            f"the identity provider sent no valid email for this user ({hint})",
            code="missing_email",
        )
    email = normalize_email(email)
    domain = email_domain(email)
    if not idp_id or len(idp_id) > 255:
        raise TokenValidationError(
            "the user's IdP identifier is missing or too long", code="invalid_sub"
        )
    async with rt.transaction() as conn:
        if require_domain_match:
            doms = await repo.domains_of(conn, [connection.organization_id])
            allowed = {d["domain"] for d in doms[connection.organization_id]}
            if domain not in allowed:
                raise TokenValidationError(
                    f"email domain {domain} is not a domain of this organization",
                    code="email_domain_mismatch",
                )
        link = await _directory_link(conn, connection.organization_id, idp_id, email)
        profile_id = await repo.upsert_profile(
            conn,
            new_id=new_id("prof"),
            organization_id=connection.organization_id,
            connection_id=connection.id,
            idp_id=idp_id,
            email=email,
            now=rt.clock(),
        )
        profile = Profile(
            id=profile_id,
            idp_id=idp_id,
            email=email,
            first_name=first_name or None,
            last_name=last_name or None,
            organization_id=connection.organization_id,
            connection_id=connection.id,
            connection_type=connection.connection_type,
            groups=tuple(dict.fromkeys([*groups, *link.groups])),
            role=link.role or role,
            roles=tuple(dict.fromkeys([*link.roles, *roles])),
            raw_attributes=raw_attributes,
            custom_attributes=custom_attributes,
            directory_user_id=link.user_id,
        )
        event = await events.record(
            conn,
            "authentication.sso_succeeded",
            {
                "type": connection.protocol,
                "connection_id": connection.id,
                "profile_id": profile.id,
                "email": profile.email,
            },
            connection.organization_id,
        )
    rt.metrics.login(connection.protocol, "succeeded")
    await events.dispatch([event])
    return profile


@dataclasses.dataclass(frozen=True, slots=True)
class _Link:
    user_id: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    role: str | None = None


async def _directory_link(conn: Any, organization_id: str, idp_id: str, email: str) -> _Link:
    """Link the SSO identity to its directory user (by IdP id, then by the verified email); add
    the user's directory groups and the organization's mapped roles. A user the directory has
    deactivated or deleted is refused when the directory says so (``deprovision_blocks_sso``)."""
    dirs = (
        await conn.execute(
            sa.select(directories.c.settings).where(
                directories.c.organization_id == organization_id
            )
        )
    ).all()
    org = (
        await conn.execute(
            sa.select(organizations.c.settings).where(organizations.c.id == organization_id)
        )
    ).scalar_one_or_none() or {}
    mapping = [(m["group"], m["role"]) for m in org.get("role_mapping") or []]
    default_role = org.get("default_role")
    if not dirs:
        return _Link(roles=(default_role,) if default_role else (), role=default_role)
    blocks = any((d[0] or {}).get("deprovision_blocks_sso", True) for d in dirs)
    row = None
    for cond in (
        directory_users.c.external_id == idp_id,
        directory_users.c.email == email.lower(),
    ):
        stmt = (
            sa.select(directory_users.c.id, directory_users.c.state)
            .where(directory_users.c.organization_id == organization_id, cond)
            .order_by(directory_users.c.state.asc())  # "active" before "deleted"/"inactive"
        )
        row = (await conn.execute(stmt)).first()
        if row is not None:
            break
    if row is not None and row.state != "active":
        if blocks:
            raise TokenValidationError(
                "this user was deprovisioned by the organization's directory",
                code="user_deprovisioned",
            )
        row = None
    groups: tuple[str, ...] = ()
    if row is not None:
        names = await conn.execute(
            sa.select(directory_groups.c.display_name)
            .join(
                directory_group_members, directory_group_members.c.group_id == directory_groups.c.id
            )
            .where(directory_group_members.c.user_id == row.id)
            .order_by(directory_groups.c.display_name)
        )
        groups = tuple(n[0] for n in names.all())
    roles = tuple(dict.fromkeys(r for g, r in mapping if g in groups))
    if not roles and default_role:
        roles = (default_role,)
    return _Link(
        user_id=row.id if row is not None else None,
        groups=groups,
        roles=roles,
        role=roles[0] if roles else None,
    )
