"""Audit log streams: an organization's audit events pushed to its SIEM, in chain order.

Types (payload shapes in ``_stream_formats``): ``https`` (JSON batches, optional bearer token and
Standard Webhooks signature), ``splunk_hec`` (HTTP Event Collector), ``datadog`` (logs intake
API v2) and ``syslog`` (RFC 5424, octet-counted, over TCP or TLS).

**Guarantees.** A stream sends its organization's *chained* audit events (each has a chain
position ``seq`` shortly after commit) in chain order, in batches of at most ``batch_size``
(default 100) and ~1 MiB. Its ``cursor`` is the last position the destination accepted; it moves
only after the destination accepted a batch (a 2xx answer; for syslog see ``_stream_transport``:
written and not reset). A failed batch is retried with exponential backoff and jitter (5 s,
doubling, at most 1 h), recording ``last_error`` and ``consecutive_failures``; while a
destination is down nothing is lost: the cursor waits, and the retention purge keeps every
event an *enabled* stream has not delivered yet (disable or delete a stream to release them).
Delivery is at least once: a batch is sent again if the worker dies or loses its lease after
sending and before recording; receivers can de-duplicate on the event ``id``.

**Workers.** The delivery worker calls :meth:`AuditStreamsService.deliver_due` on every pass.
A stream is claimed in a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite
one worker runs at a time) with a lease (``claim``, ``next_attempt_at`` past the send timeout):
any number of workers never send a stream's batches concurrently, and a dead worker's stream is
picked up when the lease runs out. A database outage part-way through a pass does not wait for
the lease: the next pass first records the batches that were sent (a record that did commit,
its answer lost, no longer holds the claim and changes nothing) and releases the streams that
were claimed, or may have been, but not sent.

Secrets (``token``, ``signing_secret``, ``api_key``) are given inside ``config``, stored
encrypted with the gate's secret box and never returned: :class:`AuditStream` shows
``secret_hints`` (the last 4 characters). Destination hosts must be public unless
``SSO_GATE_ALLOW_PRIVATE_URLS``; https (or syslog over TLS) is required outside development.
Creating, changing and deleting a stream is itself audited (``audit_stream.created|updated|
deleted``).
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate._time import isoformat
from sso_gate.audit_schema import GATE_SCOPE, AuditEvent
from sso_gate.exceptions import ConfigurationError, NotFoundError, ValidationError
from sso_gate.models import ListPage
from sso_gate.services import _fetch
from sso_gate.services import _stream_formats as fmt
from sso_gate.services import _stream_transport as transport
from sso_gate.services._interrupted import Interrupted
from sso_gate.services._runtime import Runtime
from sso_gate.services.audit import AuditService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import audit_chains, audit_events, audit_streams, organizations

__all__ = ["AuditStreamsService", "AuditStream", "StreamTestResult", "StreamType"]

StreamType = fmt.StreamType
_CLAIM_BATCH = 50
_LEASE_SECONDS = 30.0
_MAX_BATCH_BYTES = 1024 * 1024
_MAX_ERROR = 500
_USER_AGENT = "sso-gate-audit-streams/1"


@dataclasses.dataclass(frozen=True, slots=True)
class AuditStream:
    """A log stream (``object: "audit_log_stream"``). ``config`` holds no secret;
    ``secret_hints`` maps each set secret to its last 4 characters. ``cursor`` is the last
    chain position delivered; ``lag`` how many chained events wait (``None`` if unknown)."""

    id: str
    organization_id: str
    type: StreamType
    name: str | None
    config: dict[str, Any]
    secret_hints: dict[str, str]
    enabled: bool
    cursor: int
    lag: int | None
    next_attempt_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def state(self) -> Literal["active", "failing", "disabled"]:
        if not self.enabled:
            return "disabled"
        return "failing" if self.consecutive_failures else "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "audit_log_stream",
            "id": self.id,
            "organization_id": self.organization_id,
            "type": self.type,
            "name": self.name,
            "config": dict(self.config),
            "secret_hints": dict(self.secret_hints),
            "enabled": self.enabled,
            "state": self.state,
            "cursor": self.cursor,
            "lag": self.lag,
            "next_attempt_at": isoformat(self.next_attempt_at) if self.next_attempt_at else None,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_success_at": isoformat(self.last_success_at) if self.last_success_at else None,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class StreamTestResult:
    """The outcome of :meth:`AuditStreamsService.test`: ``status_code`` for the HTTP types,
    ``latency_ms`` of the whole send, ``error`` (never containing a secret) when it failed."""

    success: bool
    status_code: int | None
    latency_ms: float
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class _Batch:
    stream_id: str
    claim: str
    cursor: int
    last_seq: int | None
    outcome: transport.Outcome


class AuditStreamsService:
    """Configure streams (``create``/``get``/``list``/``update``/``delete``/``test``); the
    worker delivers them (``deliver_due``). ``batch_size``, ``retry_base``/``retry_max``
    (seconds) and ``syslog_linger`` are attributes, adjustable per instance."""

    batch_size = 100
    retry_base = 5.0
    retry_max = 3600.0
    syslog_linger = 2.0

    def __init__(
        self, rt: Runtime, audit: AuditService, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self._rt = rt
        self._audit = audit
        self._http = http
        self._owns_http = http is None
        self._sender = transport.Sender(lambda: self.http)
        self._interrupted: Interrupted[_Batch] = Interrupted("audit stream batches")

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                follow_redirects=False, headers={"user-agent": _USER_AGENT}
            )
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- configuration -------------------------------------------------------------------------

    async def _validate(
        self, type_: str, config: Mapping[str, Any], old_secrets: Mapping[str, str] | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        clean, secrets = fmt.split_config(
            type_, config, development=self._rt.settings.is_development, old_secrets=old_secrets
        )
        if not self._rt.settings.allow_private_urls:
            for url, field in fmt.network_targets(type_, clean):
                await _fetch.check_public_url(url, field=field)
        return clean, secrets

    @staticmethod
    def _name(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > 200:
            raise ValidationError("name must be text of at most 200 characters", field="name")
        return value.strip() or None

    def _secrets(self, row: repo.Row) -> dict[str, str]:
        if not row["secret_enc"]:
            return {}
        return cast(dict[str, str], json.loads(self._rt.box.decrypt(row["secret_enc"], row["id"])))

    def _seal(self, stream_id: str, secrets: Mapping[str, str]) -> str | None:
        return self._rt.box.encrypt(json.dumps(dict(secrets)), stream_id) if secrets else None

    def _from_row(self, row: repo.Row, head: int | None) -> AuditStream:
        try:
            hints = {k: fmt.secret_hint(v) for k, v in self._secrets(row).items()}
        except ConfigurationError:
            hints = {k: "?" for k in fmt.SECRET_FIELDS[row["type"]]}
        return AuditStream(
            id=row["id"],
            organization_id=row["organization_id"],
            type=row["type"],
            name=row["name"],
            config=dict(row["config"]),
            secret_hints=hints,
            enabled=bool(row["enabled"]),
            cursor=int(row["cursor"]),
            lag=max(0, head - int(row["cursor"])) if head is not None else None,
            next_attempt_at=row["next_attempt_at"],
            consecutive_failures=row["consecutive_failures"],
            last_error=row["last_error"],
            last_success_at=row["last_success_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @staticmethod
    async def _head(conn: AsyncConnection, organization_id: str) -> int:
        """The organization's last chained position (0 before the first)."""
        stmt = sa.select(audit_chains.c.last_seq).where(
            audit_chains.c.organization_id == organization_id
        )
        return int((await conn.execute(stmt)).scalar() or 0)

    async def _load(self, conn: AsyncConnection, stream_id: str) -> repo.Row:
        row = await repo.get_by_id(conn, audit_streams, stream_id)
        if row is None:
            raise NotFoundError(
                f"audit log stream {stream_id!r} not found", code="audit_stream_not_found"
            )
        return row

    async def _view(self, conn: AsyncConnection, stream_id: str) -> AuditStream:
        row = await self._load(conn, stream_id)
        return self._from_row(row, await self._head(conn, row["organization_id"]))

    async def _record(
        self, conn: AsyncConnection, action: str, row: repo.Row, **extra: Any
    ) -> None:
        target = {"type": "audit_log_stream", "id": row["id"]}
        if row["name"]:
            target["name"] = row["name"]
        await self._audit.record(
            conn,
            row["organization_id"],
            action,
            {"type": row["type"], "name": row["name"], "enabled": bool(row["enabled"]), **extra},
            targets=[target],
        )

    async def create(
        self,
        organization_id: str,
        type: StreamType,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        enabled: bool = True,
        start: Literal["now", "beginning"] = "now",
    ) -> AuditStream:
        """Add a stream. ``config`` per type (secrets included, stored encrypted):

        * ``https``: ``url``; optional ``token`` (bearer), ``signing_secret`` (``whsec_…``).
        * ``splunk_hec``: ``url`` (the HEC base URL, e.g. ``https://splunk:8088``), ``token``;
          optional ``index``, ``source``, ``sourcetype``, ``hostname``.
        * ``datadog``: ``api_key``; optional ``site`` (default ``datadoghq.com``), ``url`` (the
          full intake URL instead), ``service``, ``tags`` (list), ``hostname``.
        * ``syslog``: ``host``, ``port``; optional ``transport`` (``tls`` default, or ``tcp``),
          ``facility`` (0-23, default 13), ``ca_pem`` (trust these CAs instead of the system
          store), ``hostname``.

        Every type also takes ``batch_size`` (1-1000, default 100). ``start="now"`` streams
        events chained from now on; ``"beginning"`` first sends every event still retained."""
        if start not in ("now", "beginning"):
            raise ValidationError("start must be now or beginning", field="start")
        if not isinstance(enabled, bool):
            raise ValidationError("enabled must be true or false", field="enabled")
        clean_name = self._name(name)
        clean, secrets = await self._validate(type, config)
        now = self._rt.clock()
        stream_id = new_id("audit_stream")
        async with self._rt.transaction() as conn:
            if organization_id != GATE_SCOPE and (
                not isinstance(organization_id, str)
                or await repo.get_by_id(conn, organizations, organization_id) is None
            ):
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            head = await self._head(conn, organization_id)
            await repo.insert(
                conn,
                audit_streams,
                {
                    "id": stream_id,
                    "organization_id": organization_id,
                    "type": type,
                    "name": clean_name,
                    "config": clean,
                    "secret_enc": self._seal(stream_id, secrets),
                    "enabled": enabled,
                    "cursor": head if start == "now" else 0,
                    "next_attempt_at": now,
                    "consecutive_failures": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            row = await self._load(conn, stream_id)
            await self._record(conn, "audit_stream.created", row)
            return self._from_row(row, head)

    async def get(self, stream_id: str) -> AuditStream:
        async with self._rt.read() as conn:
            return await self._view(conn, stream_id)

    async def list(
        self,
        organization_id: str,
        *,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        """An organization's streams (cursor pagination by id, newest first by default)."""
        if not 1 <= limit <= 100:
            raise ValidationError("limit must be between 1 and 100", field="limit")
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn,
                audit_streams,
                [audit_streams.c.organization_id == organization_id],
                limit=limit,
                before=before,
                after=after,
                order=order,
            )
            head = await self._head(conn, organization_id)
        return ListPage(tuple(self._from_row(r, head) for r in rows), b, a)

    async def update(self, stream_id: str, changes: Mapping[str, Any]) -> AuditStream:
        """Change ``name``, ``enabled``, ``config`` or ``cursor``.

        ``config`` is merged into the current one: given keys replace, ``None`` removes an
        optional key (or a secret), absent secrets are kept. Changing the config or enabling
        the stream clears the failure count and retries at once. ``cursor`` (a chain position,
        0 to the head) rewinds the stream to resend events, or skips ahead. The type cannot
        change (create another stream)."""
        allowed = {"name", "enabled", "config", "cursor"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(
                f"cannot change {', '.join(sorted(unknown))}; changeable: "
                f"{', '.join(sorted(allowed))}",
                field=sorted(unknown)[0],
            )
        if "enabled" in changes and not isinstance(changes["enabled"], bool):
            raise ValidationError("enabled must be true or false", field="enabled")
        async with self._rt.read() as conn:
            before = await self._load(conn, stream_id)
        values: dict[str, Any] = {}
        if "name" in changes:
            values["name"] = self._name(changes["name"])
        if "config" in changes:
            if not isinstance(changes["config"], Mapping):
                raise ValidationError("config must be an object", field="config")
            secret_keys = fmt.SECRET_FIELDS[before["type"]]
            given = dict(changes["config"])
            merged = {
                **before["config"],
                **{k: v for k, v in given.items() if k not in secret_keys},
            }
            merged.update({k: v for k, v in given.items() if k in secret_keys})
            clean, secrets = await self._validate(before["type"], merged, self._secrets(before))
            values.update(config=clean, secret_enc=self._seal(stream_id, secrets))
        if "enabled" in changes:
            values["enabled"] = changes["enabled"]
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            row = await self._load(conn, stream_id)
            head = await self._head(conn, row["organization_id"])
            if "cursor" in changes:
                c = changes["cursor"]
                if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= head:
                    raise ValidationError(
                        f"cursor must be a chain position from 0 to {head}", field="cursor"
                    )
                values["cursor"] = c
            if "config" in values or values.get("enabled") is True or "cursor" in values:
                values["consecutive_failures"] = 0
                # retry at once, unless a worker holds the stream (its lease keeps it)
                values["next_attempt_at"] = sa.case(
                    (audit_streams.c.claim.is_(None), now), else_=audit_streams.c.next_attempt_at
                )
            values["updated_at"] = now
            await repo.update_by_id(conn, audit_streams, stream_id, values)
            row = await self._load(conn, stream_id)
            await self._record(conn, "audit_stream.updated", row, changed=",".join(sorted(changes)))
            return self._from_row(row, head)

    async def delete(self, stream_id: str) -> None:
        async with self._rt.transaction() as conn:
            row = await self._load(conn, stream_id)
            await repo.delete_by_id(conn, audit_streams, stream_id)
            await self._record(conn, "audit_stream.deleted", row)

    async def test(self, stream_id: str) -> StreamTestResult:
        """Send one synthetic event (action ``audit_stream.tested``, id ``audit_event_test_…``)
        now, whatever the stream's state; the cursor and failure count do not change."""
        async with self._rt.read() as conn:
            row = await self._load(conn, stream_id)
        now = self._rt.clock()
        event = AuditEvent(
            id=new_id("audit_event_test"),
            organization_id=row["organization_id"],
            action="audit_stream.tested",
            occurred_at=now,
            actor={"type": "system", "id": "sso_gate", "name": "sso_gate"},
            targets=({"type": "audit_log_stream", "id": stream_id},),
            context={},
            metadata={"test": True},
            version=1,
            created_at=now,
        ).to_dict()
        outcome = await self._send(row, [event], f"{stream_id}_test_{event['id']}")
        return StreamTestResult(outcome.ok, outcome.status_code, outcome.latency_ms, outcome.error)

    # -- delivery (the worker) -----------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim due streams, send one batch each, record the outcomes; returns how many
        batches were attempted (0 = nothing to do)."""
        await self._interrupted.settle(self._finish, self._release)
        claim = self._interrupted.claim()
        claimed = await self._claim(claim)
        if not claimed:
            await self._interrupted.record(claim, (), self._finish)
            return 0
        sem = asyncio.Semaphore(self._rt.settings.webhook_concurrency)

        async def one(row: repo.Row, claim: str) -> _Batch:
            async with sem:
                return await self._deliver(row, claim)

        batches = await asyncio.gather(*(one(r, c) for r, c in claimed))
        await self._interrupted.record(claim, batches, self._finish)
        return len(batches)

    async def _release(self, claims: Sequence[str]) -> None:
        """Make the streams of claims an interrupted pass did not send due at once (module
        docstring, "Workers"). Recording again needs nothing special: :meth:`_finish` only
        changes a stream that still holds the claim."""
        s = audit_streams
        async with self._rt.transaction() as conn:
            await conn.execute(
                sa.update(s)
                .where(s.c.claim.in_(claims))
                .values(claim=None, next_attempt_at=self._rt.clock())
            )

    async def _claim(self, claim: str) -> builtins.list[tuple[repo.Row, str]]:
        now = self._rt.clock()
        s, t = audit_streams, audit_events
        lease = now + timedelta(seconds=self._rt.settings.webhook_timeout + _LEASE_SECONDS)
        pending = sa.exists().where(
            t.c.organization_id == s.c.organization_id, t.c.seq > s.c.cursor
        )
        async with self._rt.transaction() as conn:
            rows = (
                await conn.execute(
                    sa.select(s)
                    .where(
                        s.c.enabled.is_(True),
                        sa.or_(s.c.next_attempt_at.is_(None), s.c.next_attempt_at <= now),
                        pending,
                    )
                    .order_by(s.c.next_attempt_at)
                    .limit(_CLAIM_BATCH)
                    .with_for_update(of=s, skip_locked=True)
                )
            ).all()
            if not rows:
                return []
            await conn.execute(
                sa.update(s)
                .where(s.c.id.in_([r.id for r in rows]))
                .values(claim=claim, next_attempt_at=lease)
            )
        return [(r._mapping, claim) for r in rows]

    async def _deliver(self, row: repo.Row, claim: str) -> _Batch:
        limit = int(row["config"].get("batch_size") or self.batch_size)
        async with self._rt.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(audit_events)
                    .where(
                        audit_events.c.organization_id == row["organization_id"],
                        audit_events.c.seq > row["cursor"],
                    )
                    .order_by(audit_events.c.seq)
                    .limit(limit)
                )
            ).all()
        events = [fmt.event_dict(r._mapping) for r in rows]
        seqs = [int(r.seq) for r in rows]
        if not events:  # purged or rewound meanwhile
            return _Batch(
                row["id"], claim, row["cursor"], None, transport.Outcome(True, None, 0, None)
            )
        try:
            outcome, count = await self._send_batch(row, events, seqs)
        except Exception as exc:  # a bug or a broken stored secret must not stop other streams
            outcome, count = transport.Outcome(False, None, 0.0, _unexpected(exc)), 0
        return _Batch(row["id"], claim, row["cursor"], seqs[count - 1] if count else None, outcome)

    async def _send_batch(
        self, row: repo.Row, events: Sequence[dict[str, Any]], seqs: Sequence[int]
    ) -> tuple[transport.Outcome, int]:
        """Send as many of ``events`` as fit ``_MAX_BATCH_BYTES`` (at least one)."""
        pieces = fmt.encode_events(row["type"], row["config"], events, self._hostname())
        size, count = 0, 0
        for piece in pieces:
            if count and size + len(piece) > _MAX_BATCH_BYTES:
                break
            size += len(piece) + 1
            count += 1
        message_id = f"{row['id']}_{seqs[0]}_{seqs[count - 1]}"
        outcome = await self._send(row, events[:count], message_id, pieces[:count])
        return outcome, count if outcome.ok else 0

    async def _send(
        self,
        row: repo.Row,
        events: Sequence[dict[str, Any]],
        message_id: str,
        pieces: Sequence[bytes] | None = None,
    ) -> transport.Outcome:
        try:
            secrets = self._secrets(row)
        except ConfigurationError as exc:
            return transport.Outcome(False, None, 0.0, exc.message)
        if pieces is None:
            pieces = fmt.encode_events(row["type"], row["config"], events, self._hostname())
        timeout = self._rt.settings.webhook_timeout
        return await self._sender.send(
            row["type"],
            row["config"],
            secrets,
            pieces,
            stream_id=row["id"],
            message_id=message_id,
            timeout=timeout,
            linger=min(self.syslog_linger, timeout / 2),
        )

    def _hostname(self) -> str:
        return urlsplit(self._rt.settings.base_url).hostname or "sso_gate"

    def _backoff(self, failures: int) -> float:
        delay = min(self.retry_max, self.retry_base * 2.0 ** min(failures - 1, 30))
        return float(delay * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not security

    async def _finish(self, batches: Sequence[_Batch]) -> None:
        now = self._rt.clock()
        s = audit_streams
        async with self._rt.transaction() as conn:
            for b in batches:
                mine = (s.c.id == b.stream_id, s.c.claim == b.claim)
                if b.outcome.ok:
                    values: dict[str, Any] = {
                        "claim": None,
                        "next_attempt_at": now,
                        "consecutive_failures": 0,
                        "last_error": None,
                    }
                    if b.last_seq is not None:
                        values.update(cursor=b.last_seq, last_success_at=now)
                    # the cursor only moves if nobody rewound it meanwhile (update(cursor=…))
                    done = await conn.execute(
                        sa.update(s).where(*mine, s.c.cursor == b.cursor).values(values)
                    )
                    if not done.rowcount:
                        await conn.execute(
                            sa.update(s).where(*mine).values(claim=None, next_attempt_at=now)
                        )
                    continue
                failures = (
                    await conn.execute(sa.select(s.c.consecutive_failures).where(*mine))
                ).scalar()
                if failures is None:  # deleted, or the lease ran out and another worker took it
                    continue
                await conn.execute(
                    sa.update(s)
                    .where(*mine)
                    .values(
                        claim=None,
                        consecutive_failures=failures + 1,
                        last_error=(b.outcome.error or "failed")[:_MAX_ERROR],
                        next_attempt_at=now + timedelta(seconds=self._backoff(failures + 1)),
                    )
                )


def _unexpected(exc: Exception) -> str:
    if isinstance(exc, ConfigurationError | ValidationError):
        return exc.message
    return f"internal error while sending ({type(exc).__name__})"
