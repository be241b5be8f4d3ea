"""The protocol-independent end of every sign-in: check the email, assign the stable profile id,
build the normalized :class:`Profile`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sso_gate._domains import email_domain, normalize_email
from sso_gate._ids import new_id
from sso_gate.exceptions import SSOGateError, TokenValidationError
from sso_gate.models import Connection, Profile
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.store import repositories as repo

__all__ = ["build_profile", "record_success", "record_failure"]

log = logging.getLogger("sso_gate.sso")


async def record_success(events: EventsService, connection: Connection, profile: Profile) -> None:
    await events.emit(
        "authentication.sso_succeeded",
        {
            "type": connection.protocol,
            "connection_id": connection.id,
            "profile_id": profile.id,
            "email": profile.email,
        },
        connection.organization_id,
    )


async def record_failure(events: EventsService, connection: Connection, exc: SSOGateError) -> None:
    """Best effort: a failure to record must not hide the sign-in error itself."""
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
    of one tenant cannot sign users into another tenant's domain."""
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
        profile_id = await repo.upsert_profile(
            conn,
            new_id=new_id("prof"),
            organization_id=connection.organization_id,
            connection_id=connection.id,
            idp_id=idp_id,
            email=email,
            now=rt.clock(),
        )
    return Profile(
        id=profile_id,
        idp_id=idp_id,
        email=email,
        first_name=first_name or None,
        last_name=last_name or None,
        organization_id=connection.organization_id,
        connection_id=connection.id,
        connection_type=connection.connection_type,
        groups=tuple(groups),
        role=role,
        roles=tuple(roles),
        raw_attributes=raw_attributes,
        custom_attributes=custom_attributes,
    )
