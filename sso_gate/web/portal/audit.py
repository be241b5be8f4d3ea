"""Audit log viewer of the admin portal (intent ``audit_logs``).

* ``GET /audit-logs`` — the organization's audit events, newest first, 50 a page. The filters
  (``action``, ``actor``, ``target``: comma-separated values; ``from``/``to``: dates, ``to``
  inclusive) are a plain GET form, so a filtered view works without JavaScript and can be
  bookmarked; "Newer"/"Older" links carry the filters and a cursor (``before``/``after``).
* ``GET /audit-logs/export`` — the same filters as a CSV download (streamed in constant memory
  by ``gate.audit.export``).
* ``GET /audit-logs/{event_id}`` — one event in full; 404 unless it belongs to the session's
  organization.

Bad filter values answer 422 with the page and a plain message, never a stack trace.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sso_gate._time import isoformat
from sso_gate.audit_schema import ACTION_RE, AUDIT_ONLY_ACTIONS, AuditEvent
from sso_gate.exceptions import NotFoundError, ValidationError
from sso_gate.models import EVENT_NAMES
from sso_gate.services.portal import PortalSession
from sso_gate.web.portal._base import Portal, PortalPage, guarded

__all__ = ["audit_routes", "AuditQuery", "parse_query"]

PAGE_SIZE = 50
_FILTERS = ("action", "actor", "target", "from", "to")
_LABELS = {"action": "Action", "actor": "Actor ID", "target": "Target ID"}
_MAX_VALUES = 20
_MAX_VALUE = 255
_MAX_FIELD = 4000
_CURSOR = re.compile(r"^[A-Za-z0-9_]{1,100}$")
#: suggestions for the action filter (the gate's own actions; the app's are free-form)
_KNOWN_ACTIONS = sorted(
    EVENT_NAMES
    | AUDIT_ONLY_ACTIONS
    | {"audit_stream.created", "audit_stream.updated", "audit_stream.deleted"}
)


@dataclass
class AuditQuery:
    """A parsed filter: what ``gate.audit.list``/``export`` take, plus the raw form values (to
    refill the form and build links)."""

    actions: list[str] = field(default_factory=list)
    actor_ids: list[str] = field(default_factory=list)
    target_ids: list[str] = field(default_factory=list)
    start: datetime | None = None
    end: datetime | None = None
    before: str | None = None
    after: str | None = None
    values: dict[str, str] = field(default_factory=dict)

    def service_kwargs(self) -> dict[str, Any]:
        return {
            "actions": self.actions or None,
            "actor_ids": self.actor_ids or None,
            "target_ids": self.target_ids or None,
            "range_start": self.start,
            "range_end": self.end,
        }

    def query_string(self, **cursor: str | None) -> str:
        """The filters (and ``cursor``) as a URL query, ``""`` when there are none."""
        items = [(k, v) for k, v in self.values.items() if v]
        items += [(k, v) for k, v in cursor.items() if v]
        return "?" + urlencode(items) if items else ""

    @property
    def filtered(self) -> bool:
        return any(self.values.values())


def _split(values: dict[str, str], name: str) -> list[str]:
    items = [x.strip() for x in values[name].split(",") if x.strip()]
    label = _LABELS[name]
    if len(items) > _MAX_VALUES:
        raise ValidationError(f"{label}: at most {_MAX_VALUES} values, separated by commas.")
    for item in items:
        if len(item) > _MAX_VALUE:
            raise ValidationError(f"{label}: each value must be at most {_MAX_VALUE} characters.")
    return items


def _moment(text: str, label: str, *, end: bool) -> datetime | None:
    """A ``YYYY-MM-DD`` date (``end``: the day is included) or an ISO-8601 date-time (UTC when
    it has no offset)."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"“{label}” must be a date such as 2026-05-31 (or a date and time such as "
            f"2026-05-31T14:00:00Z); “{text[:40]}” is not."
        ) from None


def parse_query(params: QueryParams) -> AuditQuery:
    """The viewer's filters from the query string; ValidationError with a plain message."""
    values = {k: params.get(k, "").strip() for k in _FILTERS}
    for key, value in values.items():
        if len(value) > _MAX_FIELD:
            raise ValidationError(f"The “{_LABELS.get(key, key)}” filter is too long.")
    q = AuditQuery(values=values)
    q.actions = _split(values, "action")
    for action in q.actions:
        if not ACTION_RE.match(action):
            raise ValidationError(
                f"“{action[:60]}” is not an action name: actions look like user.signed_in "
                "(lowercase words joined by dots)."
            )
    q.actor_ids = _split(values, "actor")
    q.target_ids = _split(values, "target")
    q.start = _moment(values["from"], "From", end=False)
    q.end = _moment(values["to"], "To", end=True)
    if q.start and q.end and q.start >= q.end:
        raise ValidationError("“From” must be on or before “To”.")
    before, after = params.get("before") or None, params.get("after") or None
    for cursor in (before, after):
        if cursor is not None and not _CURSOR.match(cursor):
            raise ValidationError("This page link is not valid; start again from the first page.")
    if before and after:
        raise ValidationError("This page link is not valid; start again from the first page.")
    q.before, q.after = before, after
    return q


def _when(value: datetime) -> dict[str, str]:
    return {"iso": isoformat(value), "text": value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")}


def _entity_text(entity: dict[str, Any]) -> str:
    name, ident = entity.get("name"), str(entity.get("id", ""))
    return f"{name} ({ident})" if name and name != ident else ident


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "when": _when(event.occurred_at),
        "action": event.action,
        "actor": _entity_text(event.actor),
        "actor_type": str(event.actor.get("type", "")),
        "targets": [
            {"type": str(t.get("type", "")), "text": _entity_text(t)} for t in event.targets
        ],
    }


def _display(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def audit_routes(portal: Portal) -> list[BaseRoute]:
    gate = portal.gate

    async def page(
        request: Request, session: PortalSession, q: AuditQuery | None, error: str = ""
    ) -> Response:
        rows: list[dict[str, Any]] = []
        newer = older = ""
        if q is not None:
            result = await gate.audit.list(
                session.organization_id,
                limit=PAGE_SIZE,
                before=q.before,
                after=q.after,
                **q.service_kwargs(),
            )
            rows = [_row(e) for e in result.data]
            if result.before:
                newer = q.query_string(before=result.before)
            if result.after:
                older = q.query_string(after=result.after)
        values = (
            q.values
            if q is not None
            else {k: request.query_params.get(k, "")[:_MAX_FIELD] for k in _FILTERS}
        )
        back = q.query_string(before=q.before, after=q.after) if q is not None else ""
        return portal.render(
            request,
            "audit_logs.html",
            session,
            status=422 if error else 200,
            title="Audit logs",
            f=values,
            error=error,
            rows=rows,
            newer=newer,
            older=older,
            paged=bool(q and (q.before or q.after)),
            filtered=bool(q and q.filtered),
            export=(q.query_string() if q is not None else ""),
            back=back,
            known_actions=_KNOWN_ACTIONS,
            page_size=PAGE_SIZE,
        )

    async def index(request: Request) -> Response:
        session = await portal.session(request, "audit_logs")
        try:
            q = parse_query(request.query_params)
        except ValidationError as exc:
            return await page(request, session, None, exc.message)
        return await page(request, session, q)

    async def export(request: Request) -> Response:
        session = await portal.session(request, "audit_logs")
        try:
            q = parse_query(request.query_params)
        except ValidationError as exc:
            return await page(request, session, None, exc.message)
        chunks = await gate.audit.export(session.organization_id, "csv", **q.service_kwargs())
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        filename = f"audit-log-{session.organization_id}-{today}.csv"
        response = StreamingResponse(
            chunks,
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )
        return portal._finish(response, request, session)

    async def detail(request: Request) -> Response:
        session = await portal.session(request, "audit_logs")
        event_id = request.path_params["event_id"]
        event = None
        if _CURSOR.match(event_id):
            try:
                event = await gate.audit.get(event_id)
            except NotFoundError:
                event = None
        if event is None or event.organization_id != session.organization_id:
            raise PortalPage(404, "Event not found", "This audit event does not exist.")
        try:
            back = parse_query(request.query_params)
            back_query = back.query_string(before=back.before, after=back.after)
        except ValidationError:
            back_query = ""
        return portal.render(
            request,
            "audit_event.html",
            session,
            title=f"Audit event {event.action}",
            event=event,
            when=_when(event.occurred_at),
            recorded=_when(event.created_at),
            actor=[(k, _display(v)) for k, v in event.actor.items()],
            targets=[[(k, _display(v)) for k, v in t.items()] for t in event.targets],
            context=[(k, _display(v)) for k, v in event.context.items()],
            metadata=[(k, _display(v)) for k, v in sorted(event.metadata.items())],
            back=back_query,
        )

    return [
        Route("/audit-logs", guarded(portal, index), methods=["GET"]),
        Route("/audit-logs/export", guarded(portal, export), methods=["GET"]),
        Route("/audit-logs/{event_id}", guarded(portal, detail), methods=["GET"]),
    ]
