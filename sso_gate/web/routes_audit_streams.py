"""Audit log streams in the management API (``{prefix}/api/audit_logs/streams``).

WorkOS configures log streams in its dashboard only, so these paths are sso_gate's own, shaped
like ``/webhook_endpoints``. Secrets (``token``, ``signing_secret``, ``api_key``) go in inside
``config`` and never come back out: answers show ``secret_hints``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, cast, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sso_gate._audit_scope import check_audit_scope
from sso_gate.exceptions import ValidationError
from sso_gate.services.audit_streams import StreamType
from sso_gate.web.responses import json_response
from sso_gate.web.routes_api import _json_body, _page_args
from sso_gate.web.routes_webhooks import _bool, _only

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["audit_stream_routes", "STREAM_TYPES"]

Handler = Callable[[Request], Awaitable[Response]]

STREAM_TYPES: tuple[str, ...] = get_args(StreamType)
_CREATE_FIELDS = ("organization_id", "type", "config", "name", "enabled", "start")
_UPDATE_FIELDS = ("name", "enabled", "config", "cursor")


def audit_stream_routes(gate: SSOGate, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
    """The routes, each behind ``guard`` (the management API's bearer-key check)."""
    s = gate.settings
    streams = gate.audit_streams

    async def list_streams(request: Request) -> Response:
        page_args = _page_args(request)
        org = await check_audit_scope(gate, request.query_params.get("organization_id"))
        return json_response((await streams.list(org, **page_args)).to_dict())

    async def create_stream(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, _CREATE_FIELDS)
        org = data.get("organization_id")
        if not isinstance(org, str) or not org:
            raise ValidationError(
                'organization_id is required (an organization id, or "gate")',
                field="organization_id",
            )
        if "type" not in data:
            raise ValidationError(
                f"type is required: one of {', '.join(STREAM_TYPES)}", field="type"
            )
        if not isinstance(data.get("config"), dict):
            raise ValidationError(
                "config is required: an object with the destination's settings and secrets "
                '(e.g. {"url": "https://…", "token": "…"})',
                field="config",
            )
        start = data.get("start", "now")
        if start not in ("now", "beginning"):
            raise ValidationError(
                "start must be now (events from now on) or beginning (the retained log first)",
                field="start",
            )
        enabled = _bool(data, "enabled")
        stream = await streams.create(
            org,
            cast(StreamType, data["type"]),  # the service checks it against the known types
            data["config"],
            name=data.get("name"),
            enabled=True if enabled is None else enabled,
            start=start,
        )
        return json_response(stream.to_dict(), 201)

    async def get_stream(request: Request) -> Response:
        return json_response((await streams.get(request.path_params["id"])).to_dict())

    async def update_stream(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, _UPDATE_FIELDS)
        return json_response((await streams.update(request.path_params["id"], data)).to_dict())

    async def delete_stream(request: Request) -> Response:
        await streams.delete(request.path_params["id"])
        return Response(status_code=204)

    async def test_stream(request: Request) -> Response:
        # a failed send is a successful test: the answer says what the destination did
        return json_response((await streams.test(request.path_params["id"])).to_dict())

    base = "/audit_logs/streams/{id}"
    return [
        Route("/audit_logs/streams", guard(list_streams), methods=["GET"]),
        Route("/audit_logs/streams", guard(create_stream), methods=["POST"]),
        Route(base, guard(get_stream), methods=["GET"]),
        Route(base, guard(update_stream), methods=["PATCH"]),
        Route(base, guard(delete_stream), methods=["DELETE"]),
        Route(f"{base}/test", guard(test_stream), methods=["POST"]),
    ]
