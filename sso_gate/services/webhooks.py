"""Webhook endpoints: create, list, update, enable/disable, rotate the signing secret, redeliver.

The secret (``whsec_…``, Standard Webhooks) is generated here, encrypted at rest with the
gate's secret box and returned only by :meth:`WebhooksService.create` and
:meth:`WebhooksService.rotate_secret`. During a rotation both the new and the previous secret
sign every delivery for ``SSO_GATE_WEBHOOK_SECRET_GRACE`` seconds (default 24 h).

Endpoint URLs must be https outside development and may not resolve to private, loopback,
link-local or other non-public addresses unless ``SSO_GATE_ALLOW_PRIVATE_URLS`` is set. The check
runs when the URL is saved; a DNS answer that changes later (rebinding) is a residual risk that
an egress policy should close, as for metadata URLs.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._crypto import SecretBox
from sso_gate._ids import new_id
from sso_gate.exceptions import NotFoundError, ValidationError
from sso_gate.models import EVENT_NAMES, ListPage, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from sso_gate.services import _fetch
from sso_gate.services._outbox import matches, new_delivery
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import (
    events,
    organizations,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from sso_gate.webhooks import generate_secret

__all__ = [
    "WebhooksService",
    "check_event_patterns",
    "endpoint_from_row",
    "signing_secrets",
]

_MAX_URL = 2048
_MAX_REDELIVER = 10_000


def check_event_patterns(value: object, field: str = "events") -> tuple[str, ...]:
    """Event names or wildcard patterns (``dsync.*``, ``*``); each must match a known event."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("events must be a non-empty list of event names", field=field)
    out: list[str] = []
    unknown: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 100:
            raise ValidationError(
                "each event must be a name such as dsync.user.created", field=field
            )
        name = item.strip()
        if name in EVENT_NAMES or any(fnmatch.fnmatchcase(e, name) for e in EVENT_NAMES):
            if name not in out:
                out.append(name)
        else:
            unknown.append(name)
    if unknown:
        raise ValidationError(
            f"unknown event name(s): {', '.join(sorted(unknown))}; known events are "
            f"{', '.join(sorted(EVENT_NAMES))} (wildcards such as dsync.* are allowed)",
            field=field,
            code="unknown_event",
        )
    return tuple(out)


def signing_secrets(box: SecretBox, row: repo.Row, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, plus the previous one during its
    grace period."""
    out = [box.decrypt(row["secret_enc"], row["id"])]
    until = row["previous_secret_expires_at"]
    if row["previous_secret_enc"] and until is not None and until > now:
        out.append(box.decrypt(row["previous_secret_enc"], row["id"]))
    return out


def endpoint_from_row(row: repo.Row, now: datetime) -> WebhookEndpoint:
    until = row["previous_secret_expires_at"]
    return WebhookEndpoint(
        id=row["id"],
        url=row["url"],
        events=tuple(row["events"]),
        organization_id=row["organization_id"],
        description=row["description"],
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        secret_hint=row["secret_hint"],
        secret_rotating_until=until if until is not None and until > now else None,
        consecutive_failures=row["consecutive_failures"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def delivery_from_row(row: repo.Row) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def attempt_from_row(row: repo.Row) -> WebhookAttempt:
    return WebhookAttempt(
        id=row["id"],
        delivery_id=row["delivery_id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        attempt=row["attempt"],
        started_at=row["started_at"],
        succeeded=bool(row["succeeded"]),
        status_code=row["status_code"],
        latency_ms=row["latency_ms"],
        response_excerpt=row["response_excerpt"],
        error=row["error"],
    )


class WebhooksService:
    def __init__(self, rt: Runtime, events_service: EventsService) -> None:
        self._rt = rt
        self._events = events_service

    # -- validation ----------------------------------------------------------------------------

    async def _check_url(self, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("url is required", field="url")
        url = value.strip()
        if len(url) > _MAX_URL:
            raise ValidationError(f"url is longer than {_MAX_URL} characters", field="url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"{url!r} is not an absolute https URL", field="url")
        if parts.username or parts.password:
            raise ValidationError("url must not contain credentials", field="url")
        if parts.fragment:
            raise ValidationError("url must not contain a fragment", field="url")
        if parts.scheme == "http" and not self._rt.settings.is_development:
            raise ValidationError(
                "webhook URLs must use https (plain http only with SSO_GATE_ENVIRONMENT="
                "development)",
                field="url",
                code="https_required",
            )
        if not self._rt.settings.allow_private_urls:
            await _fetch.check_public_url(url, field="url")
        return url

    @staticmethod
    def _check_description(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > 500:
            raise ValidationError(
                "description must be text of at most 500 characters", field="description"
            )
        return value

    async def _audit(
        self, conn: AsyncConnection, action: str, endpoint: WebhookEndpoint, **extra: Any
    ) -> None:
        """Audit entry (no event) in the organization's log, or the gate-wide log."""
        data = {"url": endpoint.url, "enabled": endpoint.enabled, **extra}
        target = {"type": "webhook_endpoint", "id": endpoint.id, "name": endpoint.url[:500]}
        await self._events.audit(conn, action, data, endpoint.organization_id, targets=[target])

    # -- CRUD ----------------------------------------------------------------------------------

    async def _load(self, conn: AsyncConnection, endpoint_id: str) -> repo.Row:
        row = await repo.get_by_id(conn, webhook_endpoints, endpoint_id)
        if row is None:
            raise NotFoundError(
                f"webhook endpoint {endpoint_id!r} not found", code="webhook_endpoint_not_found"
            )
        return row

    async def create(
        self,
        url: str,
        events: Iterable[str] = ("*",),
        *,
        organization_id: str | None = None,
        description: str | None = None,
        enabled: bool = True,
    ) -> tuple[WebhookEndpoint, str]:
        """Register an endpoint; returns it and its signing secret (shown this once)."""
        clean_url = await self._check_url(url)
        if not isinstance(events, str | list | tuple):
            raise ValidationError("events must be a list of event names", field="events")
        patterns = check_event_patterns(list(events) if not isinstance(events, str) else events)
        desc = self._check_description(description)
        secret = generate_secret()
        now = self._rt.clock()
        endpoint_id = new_id("we")
        async with self._rt.transaction() as conn:
            if organization_id is not None:
                if await repo.get_by_id(conn, organizations, organization_id) is None:
                    raise NotFoundError(
                        f"organization {organization_id!r} not found",
                        code="organization_not_found",
                    )
            await repo.insert(
                conn,
                webhook_endpoints,
                {
                    "id": endpoint_id,
                    "url": clean_url,
                    "events": list(patterns),
                    "organization_id": organization_id,
                    "description": desc,
                    "enabled": bool(enabled),
                    "disabled_reason": None if enabled else "disabled when created",
                    "secret_enc": self._rt.box.encrypt(secret, endpoint_id),
                    "secret_hint": secret[-4:],
                    "previous_secret_enc": None,
                    "previous_secret_expires_at": None,
                    "consecutive_failures": 0,
                    "failing_since": None,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            row = await self._load(conn, endpoint_id)
            endpoint = endpoint_from_row(row, now)
            await self._audit(conn, "webhook_endpoint.created", endpoint)
        return endpoint, secret

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        async with self._rt.read() as conn:
            return endpoint_from_row(await self._load(conn, endpoint_id), self._rt.clock())

    async def list(
        self,
        *,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn, webhook_endpoints, (), limit=limit, before=before, after=after, order=order
            )
        now = self._rt.clock()
        return ListPage(tuple(endpoint_from_row(r, now) for r in rows), b, a)

    async def update(self, endpoint_id: str, changes: Mapping[str, Any]) -> WebhookEndpoint:
        """Change ``url``, ``events``, ``description`` or ``enabled``."""
        allowed = {"url", "events", "description", "enabled"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(
                f"cannot change {', '.join(sorted(unknown))}; changeable: "
                f"{', '.join(sorted(allowed))}",
                field=sorted(unknown)[0],
            )
        values: dict[str, Any] = {}
        if "url" in changes:
            values["url"] = await self._check_url(changes["url"])
        if "events" in changes:
            values["events"] = list(check_event_patterns(changes["events"]))
        if "description" in changes:
            values["description"] = self._check_description(changes["description"])
        if "enabled" in changes:
            if not isinstance(changes["enabled"], bool):
                raise ValidationError("enabled must be true or false", field="enabled")
            return await self.set_enabled(endpoint_id, changes["enabled"], extra=values)
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            await self._load(conn, endpoint_id)
            if values:
                values["updated_at"] = now
                await repo.update_by_id(conn, webhook_endpoints, endpoint_id, values)
            row = await self._load(conn, endpoint_id)
            endpoint = endpoint_from_row(row, now)
            if values:
                await self._audit(conn, "webhook_endpoint.updated", endpoint)
        return endpoint

    async def set_enabled(
        self,
        endpoint_id: str,
        enabled: bool,
        *,
        reason: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> WebhookEndpoint:
        """Enable (failure counters reset, pending retries resume now) or disable an endpoint."""
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            before = await self._load(conn, endpoint_id)
            values: dict[str, Any] = dict(extra or {})
            values.update(enabled=enabled, updated_at=now)
            if enabled:
                values.update(disabled_reason=None, consecutive_failures=0, failing_since=None)
                await conn.execute(
                    sa.update(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.endpoint_id == endpoint_id,
                        webhook_deliveries.c.status == "pending",
                    )
                    .values(next_attempt_at=now)
                )
            else:
                values["disabled_reason"] = reason or "disabled by an administrator"
            await repo.update_by_id(conn, webhook_endpoints, endpoint_id, values)
            row = await self._load(conn, endpoint_id)
            endpoint = endpoint_from_row(row, now)
            evs = []
            if bool(before["enabled"]) != enabled:
                name = "webhook_endpoint.enabled" if enabled else "webhook_endpoint.disabled"
                evs.append(
                    await self._events.record(
                        conn, name, {"webhook_endpoint": endpoint.to_dict()}, row["organization_id"]
                    )
                )
        await self._events.dispatch(evs)
        return endpoint

    async def delete(self, endpoint_id: str) -> None:
        async with self._rt.transaction() as conn:
            row = await self._load(conn, endpoint_id)
            await repo.delete_by_id(conn, webhook_endpoints, endpoint_id)
            await self._audit(
                conn, "webhook_endpoint.deleted", endpoint_from_row(row, self._rt.clock())
            )

    async def rotate_secret(self, endpoint_id: str, *, grace: int | None = None) -> str:
        """A new secret; the previous one keeps signing (beside it) for ``grace`` seconds."""
        grace_s = self._rt.settings.webhook_secret_grace if grace is None else grace
        if not 0 <= grace_s <= 365 * 24 * 3600:
            raise ValidationError("grace must be between 0 seconds and one year", field="grace")
        secret = generate_secret()
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            row = await self._load(conn, endpoint_id)
            await repo.update_by_id(
                conn,
                webhook_endpoints,
                endpoint_id,
                {
                    "secret_enc": self._rt.box.encrypt(secret, endpoint_id),
                    "secret_hint": secret[-4:],
                    "previous_secret_enc": row["secret_enc"] if grace_s else None,
                    "previous_secret_expires_at": now + timedelta(seconds=grace_s)
                    if grace_s
                    else None,
                    "updated_at": now,
                },
            )
            await self._audit(
                conn,
                "webhook_endpoint.secret_rotated",
                endpoint_from_row(row, now),
                grace_seconds=grace_s,
            )
        return secret

    # -- deliveries ----------------------------------------------------------------------------

    async def redeliver(
        self,
        endpoint_id: str,
        *,
        event_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Queue one event (``event_id``) or every event of a time range (``since``/``until``)
        that the endpoint subscribes to, for delivery now. The ``webhook-id`` stays the event
        id, so a receiver that already has an event can skip it. Returns how many were queued."""
        if (event_id is None) == (since is None and until is None):
            raise ValidationError("give event_id, or since and/or until", field="event_id")
        if since is not None and until is not None and since > until:
            raise ValidationError("since must be before until", field="since")
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            endpoint = await self._load(conn, endpoint_id)
            conds: list[sa.ColumnElement[bool]] = []
            if event_id is not None:
                conds.append(events.c.id == event_id)
            if since is not None:
                conds.append(events.c.created_at >= since)
            if until is not None:
                conds.append(events.c.created_at <= until)
            if endpoint["organization_id"] is not None:
                conds.append(events.c.organization_id == endpoint["organization_id"])
            rows = (
                await conn.execute(
                    sa.select(events.c.id, events.c.event)
                    .where(*conds)
                    .order_by(events.c.id)
                    .limit(_MAX_REDELIVER + 1)
                )
            ).all()
            if event_id is not None and not rows:
                raise NotFoundError(f"event {event_id!r} not found", code="event_not_found")
            if len(rows) > _MAX_REDELIVER:
                raise ValidationError(
                    f"more than {_MAX_REDELIVER} events in that range; narrow it", field="since"
                )
            patterns = endpoint["events"]
            wanted = [r.id for r in rows if matches(patterns, r.event)]
            if event_id is not None and not wanted:
                raise ValidationError(
                    f"webhook endpoint {endpoint_id} does not subscribe to {rows[0].event}",
                    field="event_id",
                )
            for chunk_start in range(0, len(wanted), 500):
                chunk = wanted[chunk_start : chunk_start + 500]
                existing = {
                    r.event_id: r.id
                    for r in (
                        await conn.execute(
                            sa.select(webhook_deliveries.c.id, webhook_deliveries.c.event_id).where(
                                webhook_deliveries.c.endpoint_id == endpoint_id,
                                webhook_deliveries.c.event_id.in_(chunk),
                            )
                        )
                    ).all()
                }
                if existing:
                    await conn.execute(
                        sa.update(webhook_deliveries)
                        .where(webhook_deliveries.c.id.in_(list(existing.values())))
                        .values(status="pending", next_attempt_at=now, claim=None, updated_at=now)
                    )
                fresh = [e for e in chunk if e not in existing]
                if fresh:
                    await conn.execute(
                        sa.insert(webhook_deliveries),
                        [new_delivery(endpoint_id, e, now) for e in fresh],
                    )
        return len(wanted)

    async def list_deliveries(
        self,
        endpoint_id: str,
        *,
        status: str | None = None,
        event_id: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
    ) -> ListPage:
        if status is not None and status not in ("pending", "succeeded", "failed"):
            raise ValidationError("status must be pending, succeeded or failed", field="status")
        where: list[sa.ColumnElement[bool]] = [webhook_deliveries.c.endpoint_id == endpoint_id]
        if status is not None:
            where.append(webhook_deliveries.c.status == status)
        if event_id is not None:
            where.append(webhook_deliveries.c.event_id == event_id)
        async with self._rt.read() as conn:
            await self._load(conn, endpoint_id)
            rows, b, a = await repo.paginate(
                conn, webhook_deliveries, where, limit=limit, before=before, after=after
            )
        return ListPage(tuple(delivery_from_row(r) for r in rows), b, a)

    async def list_attempts(
        self,
        endpoint_id: str,
        *,
        delivery_id: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
    ) -> ListPage:
        where: list[sa.ColumnElement[bool]] = [webhook_attempts.c.endpoint_id == endpoint_id]
        if delivery_id is not None:
            where.append(webhook_attempts.c.delivery_id == delivery_id)
        async with self._rt.read() as conn:
            await self._load(conn, endpoint_id)
            rows, b, a = await repo.paginate(
                conn, webhook_attempts, where, limit=limit, before=before, after=after
            )
        return ListPage(tuple(attempt_from_row(r) for r in rows), b, a)
