"""Audit logs (WorkOS schema): the gate's own actions and the app's, per organization.

* **The gate's actions** are recorded in the transaction of the change: every event the gate
  emits (``connection.created``, ``dsync.user.updated``, ``authentication.sso_failed``, …)
  becomes an audit entry of its organization with the same name as action, plus audit-only
  actions (directory token rotated/revoked). The actor and context (IP, user agent) come from
  the request being served (:func:`request_context`): the management API key, a SCIM
  directory, the signed-in user; ``{"type": "system", "id": "sso_gate"}`` otherwise.
* **The app's events**: :meth:`AuditService.emit` / :meth:`emit_many`, with an optional
  idempotency key (a repeat within 24 h returns the first result and writes nothing).
* **Query** newest first with cursor pagination; **export** as CSV or NDJSON in constant
  memory; **retention** per organization; **tamper evidence** (``_audit_chain``).
"""

from __future__ import annotations

import builtins
import contextvars
import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate._time import isoformat
from sso_gate.audit_schema import GATE_SCOPE, AuditEvent, validate_event
from sso_gate.exceptions import ConflictError, NotFoundError, ValidationError
from sso_gate.models import Event, ListPage
from sso_gate.services import _audit_chain as achain
from sso_gate.services._runtime import Runtime
from sso_gate.store import repositories as repo
from sso_gate.store.tables import (
    audit_chains,
    audit_checkpoints,
    audit_event_targets,
    audit_events,
    audit_idempotency,
    audit_streams,
    organizations,
    sqlite_datetime,
)

__all__ = ["AuditService", "request_context", "ExportFormat"]

ExportFormat = Literal["csv", "ndjson"]
_ACTOR: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sso_gate_audit_actor", default=None
)
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "sso_gate_audit_context", default=None
)
_SYSTEM = {"type": "system", "id": "sso_gate", "name": "sso_gate"}
_IDEMPOTENCY_TTL = timedelta(hours=24)
_EXPORT_CHUNK = 1000
# the columns an audit entry is inserted with (the rest are set by the chainer)
ENTRY_COLUMNS = (
    "id",
    "organization_id",
    "action",
    "occurred_at",
    "actor_id",
    "actor_type",
    "actor",
    "targets",
    "context",
    "metadata",
    "version",
    "created_at",
)
_INSERT_SQLITE = (
    f"INSERT INTO audit_events ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
)
_INSERT_POSTGRES = (
    f"INSERT INTO audit_events ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(ENTRY_COLUMNS) + 1))})"
)
_json = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: lone surrogates stay escaped


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


CSV_COLUMNS = (
    "id",
    "occurred_at",
    "action",
    "actor_type",
    "actor_id",
    "actor_name",
    "targets",
    "location",
    "user_agent",
    "metadata",
    "organization_id",
    "created_at",
)


@contextmanager
def request_context(
    *, actor: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Attribute the gate's audit entries written inside this block to ``actor`` (``type``,
    ``id``, ``name``) with ``context`` (``location``: the client IP, ``user_agent``)."""
    tokens = []
    if actor is not None:
        tokens.append((_ACTOR, _ACTOR.set(dict(actor))))
    if context is not None:
        tokens.append((_CONTEXT, _CONTEXT.set(dict(context))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_actor(actor: Mapping[str, Any]) -> None:
    """Set the actor for the rest of the current task (the web layer, once authenticated)."""
    _ACTOR.set(dict(actor))


def set_context(context: Mapping[str, Any]) -> None:
    _CONTEXT.set(dict(context))


def _row_to_event(row: RowMapping) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        organization_id=row["organization_id"],
        action=row["action"],
        occurred_at=row["occurred_at"],
        actor=row["actor"],
        targets=tuple(row["targets"]),
        context=row["context"],
        metadata=row["metadata"],
        version=row["version"],
        created_at=row["created_at"],
    )


def _targets_of(data: Mapping[str, Any], action: str) -> list[dict[str, Any]]:
    """Targets of a gate event: its object (``{"object": "connection", "id": …}``) or the
    objects nested one level down (``{"directory": {…}}``)."""
    found: list[dict[str, Any]] = []

    def add(obj: Mapping[str, Any], fallback: str) -> None:
        if isinstance(obj.get("id"), str):
            target: dict[str, Any] = {
                "type": str(obj.get("object") or fallback)[:100],
                "id": obj["id"][:255],
            }
            name = obj.get("name") or obj.get("email") or obj.get("domain")
            if isinstance(name, str):
                target["name"] = name[:500]
            found.append(target)

    add(data, action.rsplit(".", 1)[0])
    if not found:
        for key, value in data.items():
            if isinstance(value, Mapping):
                add(value, key)
    if not found:
        for key in ("connection_id", "directory_id", "session_id"):
            if isinstance(data.get(key), str):
                found.append({"type": key[: -len("_id")], "id": data[key][:255]})
    return found[:50]


def _metadata_of(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if len(out) >= 20 or len(key) > 40:
            return
        if isinstance(value, str):
            out[key] = value[:500]
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value

    for key, value in data.items():
        if key in ("id", "object", "raw_attributes", "custom_attributes"):
            continue
        if isinstance(value, Mapping):  # one level down: {"error": {"code": …}} -> error_code
            for sub_key, sub_value in value.items():
                if isinstance(sub_key, str) and sub_key not in ("object", "raw_attributes"):
                    put(f"{key}_{sub_key}", sub_value)
        else:
            put(key, value)
    return out


class AuditService:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._signer = achain.Signer(rt.settings.secret_keys)
        postgres = rt.engine.dialect.name == "postgresql"
        self._postgres = postgres
        # ORDER BY of id-paged queries: see _scope
        self._leading: tuple[sa.ColumnElement[Any], ...] = (
            (audit_events.c.organization_id,) if postgres else ()
        )

    # -- writing -------------------------------------------------------------------------------

    @staticmethod
    def _rows(organization_id: str, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        actor = fields["actor"]
        return {
            "id": new_id("audit_event"),
            "organization_id": organization_id,
            "action": fields["action"],
            "occurred_at": fields["occurred_at"],
            "actor_id": actor["id"],
            "actor_type": actor["type"],
            "actor": actor,
            "targets": fields["targets"],
            "context": fields["context"],
            "metadata": fields["metadata"],
            "version": fields["version"],
            "created_at": now,
        }

    @staticmethod
    def _params(rows: list[dict[str, Any]], sqlite: bool) -> list[tuple[Any, ...]]:
        """Rows as the driver's parameters, in ``ENTRY_COLUMNS`` order: JSON text, and on SQLite the
        datetime text SQLAlchemy's DateTime stores (handed to the driver as they are)."""
        convert = sqlite_datetime if sqlite else _utc
        seen: dict[datetime, Any] = {}  # created_at is one value per batch

        def when(value: datetime) -> Any:
            out = seen.get(value)
            if out is None:
                out = seen[value] = convert(value)
            return out

        return [
            (
                r["id"],
                r["organization_id"],
                r["action"],
                when(r["occurred_at"]),
                r["actor_id"],
                r["actor_type"],
                _json(r["actor"]),
                _json(r["targets"]),
                _json(r["context"]),
                _json(r["metadata"]),
                r["version"],
                when(r["created_at"]),
            )
            for r in rows
        ]

    @classmethod
    async def _insert(cls, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Insert event rows in one statement. Their target rows and the actor index are
        written by the chainer."""
        sqlite = conn.dialect.name == "sqlite"
        await conn.exec_driver_sql(
            _INSERT_SQLITE if sqlite else _INSERT_POSTGRES, cls._params(rows, sqlite)
        )

    async def _check_org(self, conn: AsyncConnection, organization_id: str) -> None:
        if organization_id == GATE_SCOPE:
            return
        if await repo.get_by_id(conn, organizations, organization_id) is None:
            raise NotFoundError(
                f"organization {organization_id!r} not found", code="organization_not_found"
            )

    async def emit(
        self,
        organization_id: str,
        event: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> AuditEvent:
        """Record one app-defined event. With ``idempotency_key``, a repeat of the same key
        within 24 h returns the first event and writes nothing (a different event under the
        same key is a :class:`ConflictError`)."""
        now = self._rt.clock()
        fields = validate_event(event, now)
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255
        ):
            raise ValidationError("Idempotency-Key must be 1-255 characters", field="key")
        request_hash = hashlib.sha256(
            json.dumps(event, sort_keys=True, default=str).encode()
        ).hexdigest()
        for _ in range(2):  # a concurrent first use of the key: read its result on retry
            try:
                async with self._rt.transaction() as conn:
                    await self._check_org(conn, organization_id)
                    if idempotency_key is not None:
                        first = await self._idempotent(
                            conn, organization_id, idempotency_key, request_hash, now
                        )
                        if first is not None:
                            return first
                    row = self._rows(organization_id, fields, now)
                    await self._insert(conn, [row])
                    if idempotency_key is not None:
                        await conn.execute(
                            sa.insert(audit_idempotency).values(
                                organization_id=organization_id,
                                key=idempotency_key,
                                request_hash=request_hash,
                                event_id=row["id"],
                                created_at=now,
                            )
                        )
                return _row_to_event(row)  # type: ignore[arg-type]
            except IntegrityError:
                if idempotency_key is None:
                    raise
        raise ConflictError("the Idempotency-Key is being used by a concurrent request")

    async def _idempotent(
        self,
        conn: AsyncConnection,
        organization_id: str,
        key: str,
        request_hash: str,
        now: datetime,
    ) -> AuditEvent | None:
        t = audit_idempotency
        row = (
            await conn.execute(
                sa.select(t).where(t.c.organization_id == organization_id, t.c.key == key)
            )
        ).first()
        if row is None:
            return None
        if row.created_at < now - _IDEMPOTENCY_TTL:
            await conn.execute(
                sa.delete(t).where(t.c.organization_id == organization_id, t.c.key == key)
            )
            return None
        if row.request_hash != request_hash:
            raise ConflictError(
                "this Idempotency-Key was already used with a different event",
                code="idempotency_key_reused",
            )
        stored = (
            await conn.execute(sa.select(audit_events).where(audit_events.c.id == row.event_id))
        ).first()
        if stored is None:  # purged since
            return None
        return _row_to_event(stored._mapping)

    async def emit_many(
        self, organization_id: str, events: Sequence[Mapping[str, Any]]
    ) -> list[AuditEvent]:
        """Record a batch in one transaction (all or nothing: one invalid event refuses the
        batch, naming its index)."""
        now = self._rt.clock()
        rows: list[dict[str, Any]] = []
        for i, raw in enumerate(events):
            try:
                fields = validate_event(raw, now)
            except ValidationError as exc:
                raise ValidationError(f"event {i}: {exc.message}", field=exc.field) from None
            rows.append(self._rows(organization_id, fields, now))
        if not rows:
            return []
        async with self._rt.transaction() as conn:
            await self._check_org(conn, organization_id)
            await self._insert(conn, rows)
        return [_row_to_event(r) for r in rows]  # type: ignore[arg-type]

    async def record(
        self,
        conn: AsyncConnection,
        organization_id: str | None,
        action: str,
        data: Mapping[str, Any],
        *,
        targets: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """The gate's own action, in the caller's transaction (actor and context from the
        request being served)."""
        await self._insert(conn, [self._own(organization_id, action, data, targets)])

    def event_entry(self, event: Event, *, sqlite: bool) -> tuple[Any, ...]:
        """The audit entry of a gate event as the driver's parameters (``ENTRY_COLUMNS`` order):
        ``EventsService.record`` writes it with the event in one statement."""
        row = self._own(event.organization_id, event.event, event.data, None)
        return self._params([row], sqlite)[0]

    def _own(
        self,
        organization_id: str | None,
        action: str,
        data: Mapping[str, Any],
        targets: Sequence[Mapping[str, Any]] | None,
    ) -> dict[str, Any]:
        """The row of one of the gate's own actions."""
        actor = _ACTOR.get()
        if action == "session.revoked" and actor is None and isinstance(data.get("email"), str):
            # a user signing out (no other actor is serving this request)
            actor = {
                "type": "user",
                "id": str(data.get("profile_id") or data["email"])[:255],
                "name": data["email"],
            }
        if action.startswith("authentication."):
            profile = data.get("profile") if isinstance(data.get("profile"), Mapping) else data
            assert isinstance(profile, Mapping)
            email = profile.get("email")
            if isinstance(email, str) and email:
                actor = {"type": "user", "id": str(profile.get("id") or email)[:255], "name": email}
        return self._rows(
            organization_id or GATE_SCOPE,
            {
                "action": action,
                "occurred_at": self._rt.clock(),
                "actor": actor or _SYSTEM,
                "targets": list(targets) if targets is not None else _targets_of(data, action),
                "context": _CONTEXT.get() or {},
                "metadata": _metadata_of(data),
                "version": 1,
            },
            self._rt.clock(),
        )

    # -- reading -------------------------------------------------------------------------------

    async def _conditions(
        self,
        organization_id: str,
        actions: Sequence[str] | None,
        actor_ids: Sequence[str] | None,
        target_ids: Sequence[str] | None,
        target_types: Sequence[str] | None,
        range_start: datetime | None,
        range_end: datetime | None,
    ) -> list[sa.ColumnElement[bool]]:
        """Validate the filters and build the WHERE conditions; a filter by actor or target
        first chains the organization's backlog (see _chained)."""
        if not isinstance(organization_id, str) or not organization_id:
            raise ValidationError("organization_id is required", field="organization_id")
        if range_start and range_end and range_start >= range_end:
            raise ValidationError("range_start must be before range_end", field="range_start")
        t, tt = audit_events, audit_event_targets
        conds: list[sa.ColumnElement[bool]] = [self._scope(organization_id)]
        if actions:
            conds.append(t.c.action.in_(list(actions)))
        if actor_ids:
            # the actor index holds chained rows only (see _chained)
            conds.append(t.c.actor_id.in_(list(actor_ids)))
            conds.append(t.c.seq.is_not(None))
        if target_ids or target_types:
            sub = sa.select(tt.c.event_id).where(tt.c.organization_id == organization_id)
            if target_ids:
                sub = sub.where(tt.c.target_id.in_(list(target_ids)))
            if target_types:
                sub = sub.where(tt.c.target_type.in_(list(target_types)))
            conds.append(t.c.id.in_(sub))
        if range_start is not None:
            conds.append(t.c.occurred_at >= range_start)
        if range_end is not None:
            conds.append(t.c.occurred_at < range_end)
        if actor_ids or target_ids or target_types:
            await self._chained(organization_id)
        return conds

    def _scope(self, organization_id: str) -> sa.ColumnElement[bool]:
        """The organization condition of queries that page by id. On PostgreSQL it is written
        as a range and the organization leads the ORDER BY (``self._leading``): with an equality
        the planner may walk the primary key backwards expecting this organization's rows
        among the newest, and when another organization wrote the newest rows it read past
        all of them (100,000 rows: ~180 ms for a first page). With the organization in the
        order only the ``(organization_id, …, id)`` indexes can serve the query. SQLite plans
        the equality well and keeps it (a range there would stop the action index)."""
        col = audit_events.c.organization_id
        if self._postgres:
            return sa.and_(col >= organization_id, col <= organization_id)
        return col == organization_id

    async def list(
        self,
        organization_id: str,
        *,
        actions: Sequence[str] | None = None,
        actor_ids: Sequence[str] | None = None,
        target_ids: Sequence[str] | None = None,
        target_types: Sequence[str] | None = None,
        range_start: datetime | None = None,
        range_end: datetime | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
    ) -> ListPage:
        """Events of one organization, newest first (cursor pagination by id)."""
        if not 1 <= limit <= 100:
            raise ValidationError("limit must be between 1 and 100", field="limit")
        conds = await self._conditions(
            organization_id, actions, actor_ids, target_ids, target_types, range_start, range_end
        )
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn,
                audit_events,
                conds,
                limit=limit,
                before=before,
                after=after,
                order="desc",
                leading=self._leading,
            )
        return ListPage(tuple(_row_to_event(r) for r in rows), b, a)

    async def get(self, event_id: str) -> AuditEvent:
        async with self._rt.read() as conn:
            row = await repo.get_by_id(conn, audit_events, event_id)
        if row is None:
            raise NotFoundError(f"audit event {event_id!r} not found", code="audit_event_not_found")
        return _row_to_event(row)

    async def export(
        self,
        organization_id: str,
        fmt: ExportFormat = "ndjson",
        *,
        actions: Sequence[str] | None = None,
        actor_ids: Sequence[str] | None = None,
        target_ids: Sequence[str] | None = None,
        target_types: Sequence[str] | None = None,
        range_start: datetime | None = None,
        range_end: datetime | None = None,
    ) -> AsyncIterator[bytes]:
        """The matching events, newest first, as CSV or NDJSON chunks: read in keyset pages of
        1,000 rows, so memory stays flat whatever the size. Validates before the first chunk."""
        if fmt not in ("csv", "ndjson"):
            raise ValidationError("format must be csv or ndjson", field="format")
        conds = await self._conditions(
            organization_id, actions, actor_ids, target_ids, target_types, range_start, range_end
        )
        return self._export(conds, fmt)

    async def _chained(self, organization_id: str) -> None:
        """Actor and target filters read what the chainer writes (the actor index and the
        target rows), so chain the backlog first when this organization has unchained events:
        the answer then covers every event committed before the query. With the worker
        running the backlog is a moment's worth of events, usually none."""
        t = audit_events
        async with self._rt.read() as conn:
            pending = (
                await conn.execute(
                    sa.select(t.c.id)
                    .where(t.c.seq.is_(None), t.c.organization_id == organization_id)
                    .limit(1)
                )
            ).first()
        if pending is not None:
            await self.chain()

    async def _export(
        self, conds: Sequence[sa.ColumnElement[bool]], fmt: ExportFormat
    ) -> AsyncIterator[bytes]:
        t = audit_events
        cursor: str | None = None
        if fmt == "csv":
            yield _csv_line(CSV_COLUMNS)
        while True:
            where = list(conds)
            if cursor is not None:
                where.append(t.c.id < cursor)
            async with self._rt.read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(t)
                        .where(*where)
                        .order_by(*(c.desc() for c in (*self._leading, t.c.id)))
                        .limit(_EXPORT_CHUNK)
                    )
                ).all()
            if not rows:
                return
            if fmt == "csv":
                yield b"".join(_csv_line(_csv_values(r._mapping)) for r in rows)
            else:
                yield b"".join(
                    json.dumps(_row_to_event(r._mapping).to_dict(), separators=(",", ":")).encode()
                    + b"\n"
                    for r in rows
                )
            cursor = rows[-1].id
            if len(rows) < _EXPORT_CHUNK:
                return

    # -- chain, verification, retention -------------------------------------------------------

    async def chain(self) -> int:
        """Chain every committed, unchained event (the worker does this continuously)."""
        total = 0
        while True:
            async with self._rt.transaction() as conn:
                n = await achain.chain_pending(conn, self._signer, self._rt.clock())
            total += n
            if n == 0:
                return total

    async def verify(self, organization_id: str) -> achain.VerifyReport:
        """Walk the organization's chain; the report names every row that does not fit."""
        await self.chain()
        report = achain.VerifyReport(organization_id)
        t = audit_events
        async with self._rt.read() as conn:
            head = (
                await conn.execute(
                    sa.select(audit_chains).where(audit_chains.c.organization_id == organization_id)
                )
            ).first()
            checkpoints = (
                await conn.execute(
                    sa.select(audit_checkpoints)
                    .where(audit_checkpoints.c.organization_id == organization_id)
                    .order_by(audit_checkpoints.c.seq)
                )
            ).all()
            first = (
                await conn.execute(
                    sa.select(sa.func.min(t.c.seq)).where(t.c.organization_id == organization_id)
                )
            ).scalar()
        if head is None:
            return report
        head_ok = self._signer.valid(organization_id, head.last_seq, head.last_hash, head.signature)
        if not head_ok:
            report.add(
                achain.Problem("head", head.last_seq, None, "the chain head's signature is invalid")
            )
        marks: dict[int, str] = {}
        for cp in checkpoints:
            if not self._signer.valid(organization_id, cp.seq, cp.hash, cp.signature):
                report.add(
                    achain.Problem(
                        "checkpoint", cp.seq, cp.id, "the checkpoint's signature is invalid"
                    )
                )
            else:
                marks[cp.seq] = cp.hash
        prev_seq, prev_hash = 0, achain.GENESIS
        trusted_start = True
        if first is not None and first > 1:
            if first - 1 in marks:
                prev_seq, prev_hash = first - 1, marks[first - 1]
            else:
                report.add(
                    achain.Problem(
                        "deleted",
                        1,
                        None,
                        f"events 1-{first - 1} are missing and no signed checkpoint covers them",
                    )
                )
                trusted_start = False
        cursor = first - 1 if first else 0
        carry: builtins.list[Any] = []
        while True:
            async with self._rt.read() as conn:
                rows = (
                    await conn.execute(
                        sa.select(t)
                        .where(t.c.organization_id == organization_id, t.c.seq > cursor)
                        .order_by(t.c.seq, t.c.id)
                        .limit(_EXPORT_CHUNK)
                    )
                ).all()
            batch = carry + [r._mapping for r in rows]
            done = len(rows) < _EXPORT_CHUNK
            if rows:
                cursor = rows[-1].seq
            carry = [] if done or not batch else [batch.pop()]
            if batch and not trusted_start:
                r0 = batch.pop(0)  # no trusted predecessor: start from the first row as it is
                report.checked += 1
                report.first_seq = report.last_seq = r0["seq"]
                prev_seq, prev_hash, trusted_start = r0["seq"], r0["hash"], True
            for r in batch:
                mark = marks.get(r["seq"])
                if mark is not None and r["hash"] != mark:
                    report.add(
                        achain.Problem(
                            "edited",
                            r["seq"],
                            r["id"],
                            "the event's hash differs from its signed checkpoint",
                        )
                    )
            prev_seq, prev_hash = achain.verify_rows(
                report,
                batch,
                prev_seq,
                prev_hash,
                (head.last_seq, head.last_hash) if done else None,
            )
            if done:
                break
        if head_ok and report.last_seq is not None:
            if report.last_seq > head.last_seq:
                report.add(
                    achain.Problem(
                        "inserted",
                        head.last_seq + 1,
                        None,
                        f"{report.last_seq - head.last_seq} event(s) beyond the signed chain head",
                    )
                )
            elif report.last_seq < head.last_seq:
                report.add(
                    achain.Problem(
                        "deleted",
                        report.last_seq + 1,
                        None,
                        f"the newest {head.last_seq - report.last_seq} event(s) are missing "
                        f"(the signed head is at position {head.last_seq})",
                    )
                )
        async with self._rt.read() as conn:
            report.unchained = int(
                (
                    await conn.execute(
                        sa.select(sa.func.count()).where(
                            t.c.organization_id == organization_id, t.c.seq.is_(None)
                        )
                    )
                ).scalar()
                or 0
            )
        return report

    async def set_retention(self, organization_id: str, days: int | None) -> None:
        """Keep this organization's audit events ``days`` days (None = forever)."""
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36_500
        ):
            raise ValidationError(
                "retention must be a whole number of days from 1 to 36,500, or null", field="days"
            )
        async with self._rt.transaction() as conn:
            row = await repo.get_by_id(conn, organizations, organization_id)
            if row is None:
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            settings = dict(row["settings"] or {})
            settings["audit_retention_days"] = days
            await repo.update_by_id(conn, organizations, organization_id, {"settings": settings})
            await self.record(
                conn,
                organization_id,
                "audit_log.retention_changed",
                {"audit_retention_days": days},
                targets=[{"type": "organization", "id": organization_id}],
            )

    async def retention(self, organization_id: str) -> int | None:
        async with self._rt.read() as conn:
            row = await repo.get_by_id(conn, organizations, organization_id)
        if row is None:
            raise NotFoundError(
                f"organization {organization_id!r} not found", code="organization_not_found"
            )
        value = (row["settings"] or {}).get("audit_retention_days")
        return int(value) if value is not None else None

    async def purge(self) -> int:
        """Delete events older than each organization's retention. A signed checkpoint at the
        last deleted position keeps the rest of the chain verifiable; the purge is recorded.
        Events that an enabled log stream of the organization has not delivered yet are kept
        until it has (``AuditStreamsService``)."""
        await self.chain()
        now = self._rt.clock()
        async with self._rt.read() as conn:
            orgs = (
                await conn.execute(sa.select(organizations.c.id, organizations.c.settings))
            ).all()
        total = 0
        t = audit_events
        for org in orgs:
            days = (org.settings or {}).get("audit_retention_days")
            if not days:
                continue
            cutoff = now - timedelta(days=int(days))
            async with self._rt.transaction() as conn:
                # events an enabled log stream has not delivered yet are kept (nothing is lost
                # while a SIEM is down); disabling or deleting the stream releases them
                held = (
                    await conn.execute(
                        sa.select(sa.func.min(audit_streams.c.cursor)).where(
                            audit_streams.c.organization_id == org.id,
                            audit_streams.c.enabled.is_(True),
                        )
                    )
                ).scalar()
                last = (
                    await conn.execute(
                        sa.select(t.c.seq, t.c.hash)
                        .where(
                            t.c.organization_id == org.id,
                            t.c.created_at < cutoff,
                            t.c.seq.is_not(None),
                            t.c.seq <= held if held is not None else sa.true(),
                        )
                        .order_by(t.c.seq.desc())
                        .limit(1)
                    )
                ).first()
                if last is None:
                    continue
                await achain.checkpoint(
                    conn, self._signer, org.id, last.seq, last.hash, "purge", now
                )
                result = await conn.execute(
                    sa.delete(t).where(t.c.organization_id == org.id, t.c.seq <= last.seq)
                )
                deleted = int(result.rowcount or 0)
                total += deleted
                await self.record(
                    conn,
                    org.id,
                    "audit_log.purged",
                    {
                        "deleted": deleted,
                        "through_position": int(last.seq),
                        "retention_days": int(days),
                    },
                    targets=[{"type": "organization", "id": org.id}],
                )
        async with self._rt.transaction() as conn:
            await conn.execute(
                sa.delete(audit_idempotency).where(
                    audit_idempotency.c.created_at < now - _IDEMPOTENCY_TTL
                )
            )
        return total


def _csv_line(values: Sequence[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerow([_cell(v) for v in values])
    return buf.getvalue().encode()


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): a text cell that starts with = + - @,
    tab or carriage return is prefixed with an apostrophe, as OWASP recommends; attacker-chosen
    actor names and metadata must not run as formulas in the customer's spreadsheet."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_values(row: RowMapping) -> list[Any]:
    actor = row["actor"] or {}
    context = row["context"] or {}
    return [
        row["id"],
        isoformat(row["occurred_at"]),
        row["action"],
        row["actor_type"],
        row["actor_id"],
        actor.get("name", ""),
        json.dumps(row["targets"], separators=(",", ":")),
        context.get("location", ""),
        context.get("user_agent", ""),
        json.dumps(row["metadata"], separators=(",", ":")),
        row["organization_id"],
        isoformat(row["created_at"]),
    ]
