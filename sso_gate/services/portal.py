"""Admin portal links and sessions.

The app (its sales or support team) creates a **link** for one organization and one intent
(``sso``, ``dsync``, ``domain_verification``, ``audit_logs``, ``log_streams``) and sends it to
the customer's IT admin. The link is single-use and expires after 5 minutes; opening it starts
a **portal session** (an opaque cookie naming a server-side row, stored hashed) that is bounded
in time (``SSO_GATE_PORTAL_SESSION_LIFETIME``, default 1 hour) and scoped to that organization
and intent: it can never see or change another organization.

An app that already authenticates its admins can embed the portal instead: register
``@gate.portal_access`` — a function ``(request) -> (organization_id, intents) | None`` — and
the portal serves those admins without a link (see the README).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from sso_gate._crypto import hash_token
from sso_gate._ids import new_id, random_token
from sso_gate._time import isoformat
from sso_gate.exceptions import AuthenticationError, NotFoundError, ValidationError
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import organizations, portal_links, portal_sessions

__all__ = ["PortalService", "PortalLink", "PortalSession", "INTENTS", "Intent"]

Intent = Literal["sso", "dsync", "domain_verification", "audit_logs", "log_streams"]
INTENTS: tuple[str, ...] = ("sso", "dsync", "domain_verification", "audit_logs", "log_streams")
LINK_TTL = timedelta(minutes=5)


@dataclasses.dataclass(frozen=True, slots=True)
class PortalLink:
    """A one-time portal link. ``link`` (the URL with its token) is only known at creation."""

    id: str
    organization_id: str
    intent: str
    link: str
    return_url: str | None
    created_at: datetime
    expires_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "portal_link",
            "id": self.id,
            "organization_id": self.organization_id,
            "intent": self.intent,
            "link": self.link,
            "return_url": self.return_url,
            "created_at": isoformat(self.created_at),
            "expires_at": isoformat(self.expires_at),
        }

    def __repr__(self) -> str:  # the link is a bearer credential until used
        return f"PortalLink(id={self.id!r}, organization_id={self.organization_id!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class PortalSession:
    id: str
    organization_id: str
    organization_name: str
    intents: tuple[str, ...]
    return_url: str | None
    expires_at: datetime
    embedded: bool = False

    def allows(self, intent: str) -> bool:
        return intent in self.intents


class PortalService:
    def __init__(self, rt: Runtime, events: EventsService) -> None:
        self._rt = rt
        self._events = events

    def _check_return_url(self, value: object) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > 2048:
            raise ValidationError("return_url must be a URL", field="return_url")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError("return_url must be an absolute http(s) URL", field="return_url")
        if parts.scheme == "http" and not self._rt.settings.is_development:
            host = parts.hostname or ""
            if host not in ("localhost", "127.0.0.1", "::1"):
                raise ValidationError("return_url must use https", field="return_url")
        return value

    async def create_link(
        self, organization_id: str, intent: str, *, return_url: str | None = None
    ) -> PortalLink:
        """A single-use link (5 minutes) to the portal for one organization and intent."""
        if intent not in INTENTS:
            raise ValidationError(f"intent must be one of {', '.join(INTENTS)}", field="intent")
        ret = self._check_return_url(return_url)
        token = random_token(32)
        now = self._rt.clock()
        link_id = new_id("portal_link")
        async with self._rt.transaction() as conn:
            org = await repo.get_by_id(conn, organizations, organization_id)
            if org is None:
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            await repo.insert(
                conn,
                portal_links,
                {
                    "id": link_id,
                    "token_hash": hash_token(token),
                    "organization_id": organization_id,
                    "intent": intent,
                    "return_url": ret,
                    "created_at": now,
                    "expires_at": now + LINK_TTL,
                    "used_at": None,
                },
            )
            await self._events.audit(
                conn,
                "portal.link_created",
                {"intent": intent, "expires_at": isoformat(now + LINK_TTL)},
                organization_id,
                targets=[{"type": "portal_link", "id": link_id}],
            )
        url = self._rt.settings.gate_url(f"/portal/l/{token}")
        return PortalLink(link_id, organization_id, intent, url, ret, now, now + LINK_TTL)

    async def redeem(self, token: str) -> tuple[PortalSession, str]:
        """Use a link once: returns the new portal session and its cookie value."""
        now = self._rt.clock()
        lifetime = timedelta(seconds=self._rt.settings.portal_session_lifetime)
        cookie = random_token(32)
        session_id = new_id("portal_session")
        async with self._rt.transaction() as conn:
            # atomic: of two concurrent uses of one link, exactly one succeeds
            result = await conn.execute(
                sa.update(portal_links)
                .where(
                    portal_links.c.token_hash == hash_token(token),
                    portal_links.c.used_at.is_(None),
                    portal_links.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(
                    portal_links.c.id,
                    portal_links.c.organization_id,
                    portal_links.c.intent,
                    portal_links.c.return_url,
                )
            )
            link = result.first()
            if link is None:
                raise AuthenticationError(
                    "this portal link was already used or has expired; ask for a new one",
                    code="portal_link_invalid",
                )
            org = await repo.get_by_id(conn, organizations, link.organization_id)
            assert org is not None
            await repo.insert(
                conn,
                portal_sessions,
                {
                    "id": session_id,
                    "token_hash": hash_token(cookie),
                    "organization_id": link.organization_id,
                    "intent": link.intent,
                    "link_id": link.id,
                    "return_url": link.return_url,
                    "created_at": now,
                    "expires_at": now + lifetime,
                    "revoked_at": None,
                },
            )
            await self._events.audit(
                conn,
                "portal.link_used",
                {"intent": link.intent, "portal_session_id": session_id},
                link.organization_id,
                targets=[{"type": "portal_link", "id": link.id}],
            )
        session = PortalSession(
            session_id,
            link.organization_id,
            org["name"],
            (link.intent,),
            link.return_url,
            now + lifetime,
        )
        return session, cookie

    async def session(self, cookie: str) -> PortalSession | None:
        """The live portal session of a cookie value, or None."""
        if not cookie or len(cookie) > 200:
            return None
        now = self._rt.clock()
        async with self._rt.read() as conn:
            row = (
                await conn.execute(
                    sa.select(portal_sessions, organizations.c.name)
                    .join(organizations, organizations.c.id == portal_sessions.c.organization_id)
                    .where(portal_sessions.c.token_hash == hash_token(cookie))
                )
            ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        return PortalSession(
            row.id, row.organization_id, row.name, (row.intent,), row.return_url, row.expires_at
        )

    async def end(self, cookie: str) -> None:
        async with self._rt.transaction() as conn:
            await conn.execute(
                sa.update(portal_sessions)
                .where(portal_sessions.c.token_hash == hash_token(cookie))
                .values(revoked_at=self._rt.clock())
            )

    async def embedded(self, organization_id: str, intents: tuple[str, ...]) -> PortalSession:
        """A session for the app's own admin (the ``portal_access`` hook): not stored."""
        bad = [i for i in intents if i not in INTENTS]
        if bad or not intents:
            raise ValidationError(f"intents must be among {', '.join(INTENTS)}", field="intents")
        async with self._rt.read() as conn:
            org = await repo.get_by_id(conn, organizations, organization_id)
        if org is None:
            raise NotFoundError(f"organization {organization_id!r} not found")
        expires = self._rt.clock() + timedelta(seconds=self._rt.settings.portal_session_lifetime)
        return PortalSession(
            "embedded", organization_id, org["name"], tuple(intents), None, expires, embedded=True
        )
