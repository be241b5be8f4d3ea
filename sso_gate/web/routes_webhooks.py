"""Webhook endpoints and the Events feed in the management API (``{prefix}/api``).

``/webhook_endpoints`` manages receivers of signed deliveries; the signing secret is in the
answers of ``POST /webhook_endpoints`` and ``POST /webhook_endpoints/{id}/rotate_secret`` and
nowhere else. ``/events`` is the ordered feed (WorkOS Events API shape) a consumer pages through
with ``after`` to reconcile after downtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sso_gate._time import parse_timestamp
from sso_gate.exceptions import ValidationError
from sso_gate.models import WebhookEndpoint
from sso_gate.web.responses import json_response
from sso_gate.web.routes_api import _json_body, _page_args, _str

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["webhook_routes", "MAX_GRACE_SECONDS"]

Handler = Callable[[Request], Awaitable[Response]]

# A rotation keeps the old secret signing for at most this long (longer is a forgotten secret).
MAX_GRACE_SECONDS = 30 * 24 * 3600
_CREATE_FIELDS = ("url", "events", "organization_id", "description", "enabled")
_UPDATE_FIELDS = ("url", "events", "description", "enabled")
_MAX_EVENT_FILTERS = 100


def _only(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError(
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(allowed)}",
            field=unknown[0],
        )


def _events_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(
            "events must be a list of event names or patterns, e.g. "
            '["dsync.*", "connection.activated"] (["*"] for every event)',
            field="events",
        )
    return value


def _description(value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 500):
        raise ValidationError(
            "description must be text of at most 500 characters", field="description"
        )
    return value


def _bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValidationError(f"{key} must be true or false", field=key)
    return value


def _cursor_args(request: Request) -> dict[str, Any]:
    """``limit``, ``before``, ``after`` for lists that are always newest first."""
    args = _page_args(request)
    if args.pop("order") != "desc":
        raise ValidationError(
            "this list is newest first; order=asc is not supported", field="order"
        )
    return args


def _query_time(request: Request, name: str) -> Any:
    value = request.query_params.get(name)
    return None if value is None else parse_timestamp(value, name)


def _body_time(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be an ISO-8601 date-time string", field=name)
    return parse_timestamp(value, name)


def _event_filter(request: Request) -> list[str] | None:
    """``events=a,b``, ``events=a&events=b`` and WorkOS's ``events[]=a&events[]=b``."""
    q = request.query_params
    names: list[str] = []
    for raw in (*q.getlist("events"), *q.getlist("events[]")):
        for name in raw.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    if len(names) > _MAX_EVENT_FILTERS:
        raise ValidationError(
            f"at most {_MAX_EVENT_FILTERS} event names per request", field="events"
        )
    return names or None


def _events_limit(request: Request) -> int:
    raw = request.query_params.get("limit", "10")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
        raise ValidationError("limit must be an integer from 1 to 100", field="limit")
    return int(raw)


async def _optional_body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object of a POST whose body may be left out entirely."""
    length = request.headers.get("content-length")
    if (length is None or length == "0") and "transfer-encoding" not in request.headers:
        return {}
    return await _json_body(request, limit)


def webhook_routes(gate: SSOGate, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
    """The routes, each behind ``guard`` (the management API's bearer-key check)."""
    s = gate.settings
    hooks = gate.webhooks

    def with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
        # the only two answers that carry the secret: creation and rotation
        return {**endpoint.to_dict(), "secret": secret}

    # -- endpoints -------------------------------------------------------------------------------

    async def list_endpoints(request: Request) -> Response:
        return json_response((await hooks.list(**_page_args(request))).to_dict())

    async def create_endpoint(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, _CREATE_FIELDS)
        if "events" not in data:
            raise ValidationError(
                'events is required: a list such as ["dsync.*"] (["*"] for every event)',
                field="events",
            )
        enabled = _bool(data, "enabled")
        endpoint, secret = await hooks.create(
            _str(data, "url"),
            _events_list(data["events"]),
            organization_id=_str(data, "organization_id", required=False),
            description=_description(data.get("description")),
            enabled=True if enabled is None else enabled,
        )
        return json_response(with_secret(endpoint, secret), 201)

    async def get_endpoint(request: Request) -> Response:
        return json_response((await hooks.get(request.path_params["id"])).to_dict())

    async def update_endpoint(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, _UPDATE_FIELDS)
        if "url" in data:
            _str(data, "url")
        if "events" in data:
            _events_list(data["events"])
        if "description" in data:
            _description(data["description"])
        if "enabled" in data and data["enabled"] is None:
            raise ValidationError("enabled must be true or false", field="enabled")
        endpoint = await hooks.update(request.path_params["id"], data)
        return json_response(endpoint.to_dict())

    async def delete_endpoint(request: Request) -> Response:
        await hooks.delete(request.path_params["id"])
        return Response(status_code=204)

    async def enable(request: Request) -> Response:
        return json_response((await hooks.set_enabled(request.path_params["id"], True)).to_dict())

    async def disable(request: Request) -> Response:
        return json_response((await hooks.set_enabled(request.path_params["id"], False)).to_dict())

    async def rotate_secret(request: Request) -> Response:
        data = await _optional_body(request, s.max_api_body)
        _only(data, ("grace_seconds",))
        grace = data.get("grace_seconds")
        if grace is not None and (
            not isinstance(grace, int)
            or isinstance(grace, bool)
            or not 0 <= grace <= MAX_GRACE_SECONDS
        ):
            raise ValidationError(
                f"grace_seconds must be an integer from 0 to {MAX_GRACE_SECONDS} (30 days)",
                field="grace_seconds",
            )
        endpoint_id = request.path_params["id"]
        secret = await hooks.rotate_secret(endpoint_id, grace=grace)
        return json_response(with_secret(await hooks.get(endpoint_id), secret))

    async def redeliver(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, ("event_id", "since", "until"))
        queued = await hooks.redeliver(
            request.path_params["id"],
            event_id=_str(data, "event_id", required=False),
            since=_body_time(data, "since"),
            until=_body_time(data, "until"),
        )
        return json_response({"queued": queued}, 202)

    async def list_deliveries(request: Request) -> Response:
        q = request.query_params
        page = await hooks.list_deliveries(
            request.path_params["id"],
            status=q.get("status"),  # "" is refused like any other unknown status
            event_id=q.get("event_id") or None,
            **_cursor_args(request),
        )
        return json_response(page.to_dict())

    async def list_attempts(request: Request) -> Response:
        page = await hooks.list_attempts(
            request.path_params["id"],
            delivery_id=request.query_params.get("delivery_id") or None,
            **_cursor_args(request),
        )
        return json_response(page.to_dict())

    # -- the Events feed -------------------------------------------------------------------------

    async def list_events(request: Request) -> Response:
        q = request.query_params
        if q.get("before"):
            raise ValidationError(
                "the events feed pages forward only: pass list_metadata.after as after",
                field="before",
            )
        page = await gate.events.list(
            after=q.get("after") or None,
            events=_event_filter(request),
            organization_id=q.get("organization_id") or None,
            range_start=_query_time(request, "range_start"),
            range_end=_query_time(request, "range_end"),
            limit=_events_limit(request),
        )
        return json_response(
            {
                "object": "list",
                "data": [e.to_dict() for e in page.data],
                "list_metadata": {"after": page.after},
            }
        )

    async def get_event(request: Request) -> Response:
        return json_response((await gate.events.get(request.path_params["id"])).to_dict())

    base = "/webhook_endpoints/{id}"
    return [
        Route("/webhook_endpoints", guard(list_endpoints), methods=["GET"]),
        Route("/webhook_endpoints", guard(create_endpoint), methods=["POST"]),
        Route(base, guard(get_endpoint), methods=["GET"]),
        Route(base, guard(update_endpoint), methods=["PATCH"]),
        Route(base, guard(delete_endpoint), methods=["DELETE"]),
        Route(f"{base}/enable", guard(enable), methods=["POST"]),
        Route(f"{base}/disable", guard(disable), methods=["POST"]),
        Route(f"{base}/rotate_secret", guard(rotate_secret), methods=["POST"]),
        Route(f"{base}/redeliver", guard(redeliver), methods=["POST"]),
        Route(f"{base}/deliveries", guard(list_deliveries), methods=["GET"]),
        Route(f"{base}/attempts", guard(list_attempts), methods=["GET"]),
        Route("/events", guard(list_events), methods=["GET"]),
        Route("/events/{id}", guard(get_event), methods=["GET"]),
    ]
