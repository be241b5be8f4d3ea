"""OpenAPI paths and schemas of the audit log stream routes (merged into
:func:`sso_gate.web.openapi.openapi_document`)."""

from __future__ import annotations

from typing import Any

from sso_gate.web.openapi import _ID, _PAGE_PARAMS, _list_of, _resp
from sso_gate.web.routes_audit_streams import STREAM_TYPES

__all__ = ["audit_stream_paths", "audit_stream_schemas"]

_S = "#/components/schemas/"
_STREAM = {"$ref": _S + "AuditLogStream"}
_NULL_STR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_CONFIG_HELP = (
    "per type (secrets included; stored encrypted, never returned): https: url, token?, "
    "signing_secret? (whsec_…); splunk_hec: url (HEC base URL), token, index?, source?, "
    "sourcetype?; datadog: api_key, site?, url?, service?, tags?; syslog: host, port, "
    "transport? (tls|tcp), facility? (0-23), ca_pem?. All: batch_size? (1-1000), hostname?"
)


def _not_found(responses: dict[str, Any]) -> dict[str, Any]:
    responses["404"] = {
        "description": "no such audit log stream or organization",
        "content": {"application/json": {"schema": {"$ref": _S + "Error"}}},
    }
    return responses


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _S + ref}}}}


def audit_stream_paths() -> dict[str, Any]:
    org = {
        "name": "organization_id",
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "/audit_logs/streams": {
            "get": {
                "operationId": "listAuditLogStreams",
                "parameters": [org, *_PAGE_PARAMS],
                "responses": _not_found(_resp(_list_of(_S + "AuditLogStream"))),
            },
            "post": {
                "operationId": "createAuditLogStream",
                "description": "Push an organization's audit log to a SIEM, in chain order, "
                "from now on (start=now) or from the oldest retained event (start=beginning).",
                "requestBody": _body("AuditLogStreamCreate"),
                "responses": _not_found(_resp(_STREAM, "201")),
            },
        },
        "/audit_logs/streams/{id}": {
            "parameters": _ID,
            "get": {"operationId": "getAuditLogStream", "responses": _not_found(_resp(_STREAM))},
            "patch": {
                "operationId": "updateAuditLogStream",
                "description": "config is merged into the current one (null removes a key or "
                "a secret; secrets not given are kept); cursor rewinds or skips ahead.",
                "requestBody": _body("AuditLogStreamUpdate"),
                "responses": _not_found(_resp(_STREAM)),
            },
            "delete": {
                "operationId": "deleteAuditLogStream",
                "responses": _not_found(_resp(None, "204")),
            },
        },
        "/audit_logs/streams/{id}/test": {
            "parameters": _ID,
            "post": {
                "operationId": "testAuditLogStream",
                "description": "Send one synthetic event (audit_stream.tested) now; the cursor "
                "does not move. A failed send is a 200 with success false.",
                "responses": _not_found(_resp({"$ref": _S + "AuditLogStreamTestResult"})),
            },
        },
    }


def audit_stream_schemas() -> dict[str, Any]:
    config = {"type": "object", "description": _CONFIG_HELP}
    name = {"type": ["string", "null"], "maxLength": 200}
    return {
        "AuditLogStream": {
            "type": "object",
            "required": ["object", "id", "organization_id", "type", "config", "enabled"],
            "properties": {
                "object": {"const": "audit_log_stream"},
                "id": {"type": "string"},
                "organization_id": {"type": "string"},
                "type": {"enum": list(STREAM_TYPES)},
                "name": _NULL_STR,
                "config": {"type": "object", "description": "settings only, no secret"},
                "secret_hints": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "each set secret's last 4 characters",
                },
                "enabled": {"type": "boolean"},
                "state": {"enum": ["active", "failing", "disabled"]},
                "cursor": {"type": "integer", "description": "last chain position delivered"},
                "lag": {"type": ["integer", "null"], "description": "chained events waiting"},
                "next_attempt_at": _NULL_TIME,
                "consecutive_failures": {"type": "integer"},
                "last_error": _NULL_STR,
                "last_success_at": _NULL_TIME,
                "created_at": _TIME,
                "updated_at": _TIME,
            },
        },
        "AuditLogStreamCreate": {
            "type": "object",
            "required": ["organization_id", "type", "config"],
            "additionalProperties": False,
            "properties": {
                "organization_id": {"type": "string"},
                "type": {"enum": list(STREAM_TYPES)},
                "config": config,
                "name": name,
                "enabled": {"type": "boolean", "default": True},
                "start": {"enum": ["now", "beginning"], "default": "now"},
            },
        },
        "AuditLogStreamUpdate": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": name,
                "enabled": {"type": "boolean"},
                "config": config,
                "cursor": {"type": "integer", "minimum": 0},
            },
        },
        "AuditLogStreamTestResult": {
            "type": "object",
            "required": ["success", "latency_ms"],
            "properties": {
                "success": {"type": "boolean"},
                "status_code": {"type": ["integer", "null"]},
                "latency_ms": {"type": "number"},
                "error": {**_NULL_STR, "description": "never contains a secret"},
            },
        },
    }
