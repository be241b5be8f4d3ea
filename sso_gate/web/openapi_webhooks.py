"""OpenAPI paths and schemas of the webhook endpoints and the Events feed (merged into
:func:`sso_gate.web.openapi.openapi_document`)."""

from __future__ import annotations

from typing import Any

from sso_gate.models import EVENT_NAMES
from sso_gate.web.openapi import _ID, _PAGE_PARAMS, _list_of, _resp
from sso_gate.web.routes_webhooks import MAX_GRACE_SECONDS

__all__ = ["webhook_paths", "webhook_schemas"]

_S = "#/components/schemas/"
_ENDPOINT = {"$ref": _S + "WebhookEndpoint"}
_WITH_SECRET = {"$ref": _S + "WebhookEndpointWithSecret"}
_NULL_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_CURSOR_PARAMS = [p for p in _PAGE_PARAMS if p["name"] != "order"]


def _q(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        out["description"] = description
    return out


def _body(ref: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": {"$ref": _S + ref}}}}


def _not_found(responses: dict[str, Any]) -> dict[str, Any]:
    responses["404"] = {
        "description": "no such webhook endpoint or event",
        "content": {"application/json": {"schema": {"$ref": _S + "Error"}}},
    }
    return responses


def webhook_paths() -> dict[str, Any]:
    return {
        "/webhook_endpoints": {
            "get": {
                "operationId": "listWebhookEndpoints",
                "parameters": _PAGE_PARAMS,
                "responses": _resp(_list_of(_S + "WebhookEndpoint")),
            },
            "post": {
                "operationId": "createWebhookEndpoint",
                "description": "The answer carries the signing secret: it is shown this once.",
                "requestBody": _body("WebhookEndpointCreate"),
                "responses": _not_found(_resp(_WITH_SECRET, "201")),
            },
        },
        "/webhook_endpoints/{id}": {
            "parameters": _ID,
            "get": {
                "operationId": "getWebhookEndpoint",
                "responses": _not_found(_resp(_ENDPOINT)),
            },
            "patch": {
                "operationId": "updateWebhookEndpoint",
                "requestBody": _body("WebhookEndpointUpdate"),
                "responses": _not_found(_resp(_ENDPOINT)),
            },
            "delete": {
                "operationId": "deleteWebhookEndpoint",
                "responses": _not_found(_resp(None, "204")),
            },
        },
        "/webhook_endpoints/{id}/enable": {
            "parameters": _ID,
            "post": {
                "operationId": "enableWebhookEndpoint",
                "description": "Resets the failure count; pending retries are attempted now.",
                "responses": _not_found(_resp(_ENDPOINT)),
            },
        },
        "/webhook_endpoints/{id}/disable": {
            "parameters": _ID,
            "post": {
                "operationId": "disableWebhookEndpoint",
                "responses": _not_found(_resp(_ENDPOINT)),
            },
        },
        "/webhook_endpoints/{id}/rotate_secret": {
            "parameters": _ID,
            "post": {
                "operationId": "rotateWebhookSecret",
                "description": "A new signing secret, shown this once; the previous one keeps "
                "signing beside it for grace_seconds (default SSO_GATE_WEBHOOK_SECRET_GRACE).",
                "requestBody": _body("RotateWebhookSecret", required=False),
                "responses": _not_found(_resp(_WITH_SECRET)),
            },
        },
        "/webhook_endpoints/{id}/redeliver": {
            "parameters": _ID,
            "post": {
                "operationId": "redeliverWebhookEvents",
                "description": "Queue one event, or every subscribed event of a time range, "
                "for delivery now (the webhook-id stays the event id).",
                "requestBody": _body("Redeliver"),
                "responses": _not_found(_resp({"$ref": _S + "Queued"}, "202")),
            },
        },
        "/webhook_endpoints/{id}/deliveries": {
            "parameters": _ID,
            "get": {
                "operationId": "listWebhookDeliveries",
                "parameters": [
                    *_CURSOR_PARAMS,
                    _q("status", {"enum": ["pending", "succeeded", "failed"]}),
                    _q("event_id", {"type": "string"}),
                ],
                "responses": _not_found(_resp(_list_of(_S + "WebhookDelivery"))),
            },
        },
        "/webhook_endpoints/{id}/attempts": {
            "parameters": _ID,
            "get": {
                "operationId": "listWebhookAttempts",
                "parameters": [*_CURSOR_PARAMS, _q("delivery_id", {"type": "string"})],
                "responses": _not_found(_resp(_list_of(_S + "WebhookAttempt"))),
            },
        },
        "/events": {
            "get": {
                "operationId": "listEvents",
                "description": "Events in commit order, oldest first. Pass list_metadata.after "
                "back as after to continue; an unknown or purged cursor is a 422 "
                "(invalid_cursor).",
                "parameters": [
                    _q("after", {"type": "string"}, "id of the last event already seen"),
                    _q(
                        "events",
                        {"type": "array", "items": {"enum": sorted(EVENT_NAMES)}},
                        "comma-separated or repeated (events[] is accepted too)",
                    ),
                    _q("organization_id", {"type": "string"}),
                    _q("range_start", _TIME, "inclusive; ISO-8601, UTC when no offset"),
                    _q("range_end", _TIME, "exclusive; ISO-8601, UTC when no offset"),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}),
                ],
                "responses": _resp({"$ref": _S + "EventList"}),
            },
        },
        "/events/{id}": {
            "parameters": _ID,
            "get": {
                "operationId": "getEvent",
                "responses": _not_found(_resp({"$ref": _S + "Event"})),
            },
        },
    }


def webhook_schemas() -> dict[str, Any]:
    patterns = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "maxLength": 100},
        "description": "event names or wildcard patterns (dsync.*, *)",
    }
    url = {"type": "string", "format": "uri", "maxLength": 2048}
    description = {"type": ["string", "null"], "maxLength": 500}
    return {
        "WebhookEndpoint": {
            "type": "object",
            "required": ["object", "id", "url", "events", "enabled", "secret_hint"],
            "properties": {
                "object": {"const": "webhook_endpoint"},
                "id": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
                "events": {"type": "array", "items": {"type": "string"}},
                "organization_id": _NULL_STR,
                "description": _NULL_STR,
                "enabled": {"type": "boolean"},
                "state": {"enum": ["enabled", "disabled"]},
                "disabled_reason": _NULL_STR,
                "secret_hint": {"type": "string", "description": "last 4 characters"},
                "secret_rotating_until": _NULL_TIME,
                "consecutive_failures": {"type": "integer"},
                "failing_since": _NULL_TIME,
                "created_at": _TIME,
                "updated_at": _TIME,
            },
        },
        "WebhookEndpointWithSecret": {
            "allOf": [
                _ENDPOINT,
                {
                    "type": "object",
                    "required": ["secret"],
                    "properties": {
                        "secret": {
                            "type": "string",
                            "description": "whsec_… signing secret, shown only in this answer",
                        }
                    },
                },
            ]
        },
        "WebhookEndpointCreate": {
            "type": "object",
            "required": ["url", "events"],
            "additionalProperties": False,
            "properties": {
                "url": url,
                "events": patterns,
                "organization_id": {
                    "type": "string",
                    "description": "only this organization's events",
                },
                "description": description,
                "enabled": {"type": "boolean", "default": True},
            },
        },
        "WebhookEndpointUpdate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "url": url,
                "events": patterns,
                "description": description,
                "enabled": {"type": "boolean"},
            },
        },
        "RotateWebhookSecret": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "grace_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_GRACE_SECONDS}
            },
        },
        "Redeliver": {
            "type": "object",
            "additionalProperties": False,
            "description": "event_id, or since and/or until",
            "properties": {"event_id": {"type": "string"}, "since": _TIME, "until": _TIME},
        },
        "Queued": {
            "type": "object",
            "required": ["queued"],
            "properties": {"queued": {"type": "integer", "minimum": 0}},
        },
        "WebhookDelivery": {
            "type": "object",
            "properties": {
                "object": {"const": "webhook_delivery"},
                "id": {"type": "string"},
                "endpoint_id": {"type": "string"},
                "event_id": {"type": "string"},
                "status": {"enum": ["pending", "succeeded", "failed"]},
                "attempts": {"type": "integer"},
                "next_attempt_at": _NULL_TIME,
                "last_status_code": {"type": ["integer", "null"]},
                "last_error": _NULL_STR,
                "created_at": _TIME,
                "updated_at": _TIME,
            },
        },
        "WebhookAttempt": {
            "type": "object",
            "properties": {
                "object": {"const": "webhook_attempt"},
                "id": {"type": "string"},
                "delivery_id": {"type": "string"},
                "endpoint_id": {"type": "string"},
                "event_id": {"type": "string"},
                "attempt": {"type": "integer", "minimum": 1},
                "started_at": _TIME,
                "succeeded": {"type": "boolean"},
                "status_code": {"type": ["integer", "null"]},
                "latency_ms": {"type": "number"},
                "response_excerpt": _NULL_STR,
                "error": _NULL_STR,
            },
        },
        "Event": {
            "type": "object",
            "required": ["object", "id", "event", "data", "created_at"],
            "properties": {
                "object": {"const": "event"},
                "id": {"type": "string"},
                "event": {"enum": sorted(EVENT_NAMES)},
                "data": {"type": "object"},
                "organization_id": _NULL_STR,
                "created_at": _TIME,
            },
        },
        "EventList": {
            "type": "object",
            "required": ["object", "data", "list_metadata"],
            "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": {"$ref": _S + "Event"}},
                "list_metadata": {
                    "type": "object",
                    "properties": {"after": _NULL_STR},
                },
            },
        },
    }
