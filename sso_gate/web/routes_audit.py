"""Audit logs in the management API (``{prefix}/api``).

WorkOS paths where WorkOS has them — ``POST /audit_logs/events`` (``{"organization_id",
"event"}``, ``Idempotency-Key`` honoured) and ``GET|PUT /organizations/{id}/audit_logs_retention``
— and beside them what WorkOS lacks: a batch, a newest-first query, a streamed CSV/NDJSON export,
chain verification, ``/organizations/{id}/audit_log_retention``, DESIGN's ``/audit/events``
alias, and the log streams (``routes_audit_streams``). Everything is validated before an answer
starts, so a bad export is a 4xx JSON error, never a truncated download.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sso_gate._audit_scope import check_audit_scope
from sso_gate._time import isoformat, utcnow
from sso_gate.audit_schema import ACTION_RE, validate_event
from sso_gate.exceptions import ValidationError
from sso_gate.services.audit import ExportFormat
from sso_gate.web.responses import json_response
from sso_gate.web.routes_api import _json_body
from sso_gate.web.routes_audit_streams import audit_stream_routes
from sso_gate.web.routes_webhooks import _cursor_args, _only, _query_time

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["audit_routes", "MAX_BATCH", "MAX_RETENTION_DAYS", "FILTERS"]

Handler = Callable[[Request], Awaitable[Response]]

MAX_BATCH = 1000
#: 100 years: enough for any policy, and far from the dates Python can represent
MAX_RETENTION_DAYS = 36500
#: list and export filters: query parameter -> keyword of ``gate.audit.list``/``export``
FILTERS = ("actions", "actor_ids", "target_ids", "target_types")
_MAX_FILTER_VALUES = 100
_MEDIA = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")


def _values(request: Request, name: str) -> list[str] | None:
    """``name=a,b``, repeated ``name=a&name=b``, and ``name[]=a`` (taken whole, so an id that
    contains a comma can still be asked for)."""
    q = request.query_params
    found: list[str] = []
    for raw in q.getlist(name):
        found.extend(v.strip() for v in raw.split(","))
    found.extend(v.strip() for v in q.getlist(f"{name}[]"))
    values = list(dict.fromkeys(v for v in found if v))
    if len(values) > _MAX_FILTER_VALUES:
        raise ValidationError(f"at most {_MAX_FILTER_VALUES} {name} per request", field=name)
    if name == "actions":
        for action in values:
            if len(action) > 100 or not ACTION_RE.match(action):
                raise ValidationError(
                    f"actions: {action[:100]!r} is not an action name (<target>.<verb>, "
                    "lowercase, e.g. user.signed_in)",
                    field="actions",
                )
    return values or None


async def _filters(gate: SSOGate, request: Request) -> dict[str, Any]:
    """``organization_id`` (checked to exist) and the filters shared by the list and export."""
    q = request.query_params
    args: dict[str, Any] = {name: _values(request, name) for name in FILTERS}
    args["range_start"] = _query_time(request, "range_start")
    args["range_end"] = _query_time(request, "range_end")
    if args["range_start"] and args["range_end"] and args["range_start"] >= args["range_end"]:
        raise ValidationError("range_start must be before range_end", field="range_start")
    args["organization_id"] = await check_audit_scope(gate, q.get("organization_id"))
    return args


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ValidationError("Idempotency-Key must be 1-255 characters", field="Idempotency-Key")
    return key


def _organization_id(data: dict[str, Any]) -> str:
    org = data.get("organization_id")
    if not isinstance(org, str) or not org:
        raise ValidationError(
            "organization_id is required: the organization the event belongs to",
            field="organization_id",
        )
    return org


def _check_event(raw: object, where: str) -> None:
    """Validate one event, naming the field from the body's root (``event.actor.id``,
    ``events[3].action``); the service validates again and stores."""
    try:
        validate_event(raw, utcnow())
    except ValidationError as exc:
        field = f"{where}.{exc.field}" if exc.field else where
        raise ValidationError(f"{where}: {exc.message}", field=field) from None


def _retention_days(data: dict[str, Any]) -> int | None:
    # retention_days (sso_gate) or retention_period_in_days (WorkOS), on either path
    _only(data, ("retention_days", "retention_period_in_days"))
    given = [k for k in ("retention_days", "retention_period_in_days") if k in data]
    if len(given) != 1:
        raise ValidationError(
            "give retention_days: a number of days (e.g. 30 or 365) or null to keep the "
            "audit log forever",
            field="retention_days",
        )
    days = data[given[0]]
    if days is not None and (
        not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RETENTION_DAYS
    ):
        raise ValidationError(
            f"{given[0]} must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, or null "
            "(keep forever)",
            field=given[0],
        )
    return days


def audit_routes(gate: SSOGate, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
    """The routes, each behind ``guard`` (the management API's bearer-key check)."""
    s = gate.settings
    audit = gate.audit

    async def create_event(request: Request) -> Response:
        key = _idempotency_key(request)
        data = await _json_body(request, s.max_api_body)
        _only(data, ("organization_id", "event"))
        org = _organization_id(data)
        if "event" not in data:
            raise ValidationError(
                "event is required: {action, occurred_at, actor, targets, context, metadata}",
                field="event",
            )
        _check_event(data["event"], "event")
        # a repeated key returns the first event: same status, same body, nothing written
        stored = await audit.emit(org, data["event"], idempotency_key=key)
        return json_response(stored.to_dict(), 201)

    async def create_batch(request: Request) -> Response:
        if request.headers.get("idempotency-key") is not None:
            raise ValidationError(
                "Idempotency-Key is not supported for batches; a batch is all or nothing, so "
                "retry it only after an error answer, or send events one by one with a key",
                field="Idempotency-Key",
            )
        data = await _json_body(request, s.max_api_body)
        _only(data, ("organization_id", "events"))
        org = _organization_id(data)
        events = data.get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
            raise ValidationError(
                f"events must be a list of 1 to {MAX_BATCH} audit events", field="events"
            )
        for i, raw in enumerate(events):
            _check_event(raw, f"events[{i}]")
        stored = await audit.emit_many(org, events)
        return json_response({"object": "list", "data": [e.to_dict() for e in stored]}, 201)

    async def list_events(request: Request) -> Response:
        page_args = _cursor_args(request)
        page = await audit.list(**await _filters(gate, request), **page_args)
        return json_response(page.to_dict())

    async def get_event(request: Request) -> Response:
        return json_response((await audit.get(request.path_params["id"])).to_dict())

    async def export(request: Request) -> Response:
        raw_format = request.query_params.get("format")
        if raw_format not in _MEDIA:
            raise ValidationError("format must be csv or ndjson", field="format")
        fmt: ExportFormat = "csv" if raw_format == "csv" else "ndjson"
        for name in ("limit", "before", "after"):
            if name in request.query_params:
                raise ValidationError(
                    f"{name} does not apply to an export (it streams every matching event)",
                    field=name,
                )
        args = await _filters(gate, request)
        org = args.pop("organization_id")
        # awaiting export() validates; the body is produced only as the client reads it
        chunks = await audit.export(org, fmt, **args)
        stamp = isoformat(utcnow()).replace(":", "").replace("-", "")[:15]
        filename = _UNSAFE_FILENAME.sub("_", f"audit_log_{org}_{stamp}Z.{fmt}")
        return StreamingResponse(
            chunks,
            media_type=_MEDIA[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def verify(request: Request) -> Response:
        org = await check_audit_scope(gate, request.query_params.get("organization_id"))
        return json_response((await audit.verify(org)).to_dict())

    def retention_out(org: str, days: int | None) -> dict[str, Any]:
        return {
            "object": "audit_log_retention",
            "organization_id": org,
            "retention_days": days,
            "retention_period_in_days": days,  # WorkOS's name for it
        }

    async def get_retention(request: Request) -> Response:
        org = request.path_params["id"]
        return json_response(retention_out(org, await audit.retention(org)))

    async def set_retention(request: Request) -> Response:
        org = request.path_params["id"]
        data = await _json_body(request, s.max_api_body)
        days = _retention_days(data)
        await audit.set_retention(org, days)
        return json_response(retention_out(org, days))

    return [
        Route("/audit_logs/events", guard(create_event), methods=["POST"]),
        Route("/audit_logs/events", guard(list_events), methods=["GET"]),
        Route("/audit_logs/events/batch", guard(create_batch), methods=["POST"]),
        Route("/audit_logs/events/{id}", guard(get_event), methods=["GET"]),
        Route("/audit_logs/export", guard(export), methods=["GET"]),
        Route("/audit_logs/verify", guard(verify), methods=["GET"]),
        # DESIGN's original path: the same handlers
        Route("/audit/events", guard(create_event), methods=["POST"]),
        Route("/audit/events", guard(list_events), methods=["GET"]),
        *(
            Route(f"/organizations/{{id}}/{name}", guard(fn), methods=[method])
            for name in ("audit_log_retention", "audit_logs_retention")
            for fn, method in ((get_retention, "GET"), (set_retention, "PUT"))
        ),
        *audit_stream_routes(gate, guard),
    ]
