"""OpenAPI paths and schemas of the audit log routes (merged into
:func:`sso_gate.web.openapi.openapi_document`)."""

from __future__ import annotations

from typing import Any

from sso_gate.services.audit import CSV_COLUMNS
from sso_gate.web.openapi import _ID, NOT_BLANK, _resp
from sso_gate.web.openapi_audit_streams import audit_stream_paths, audit_stream_schemas
from sso_gate.web.routes_audit import MAX_BATCH, MAX_RETENTION_DAYS

__all__ = ["audit_paths", "audit_schemas"]

_S = "#/components/schemas/"
_ERR = {"application/json": {"schema": {"$ref": _S + "Error"}}}
_TIME = {"type": "string", "format": "date-time"}
_NULL_STR = {"type": ["string", "null"]}
_LIST_HELP = "comma-separated or repeated; name[]= is accepted too (its value taken whole)"
_ORG = {
    "name": "organization_id",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": 'an organization id (its log outlives it), or "gate" for the gate\'s own '
    "organization-less entries",
}


def _q(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if description:
        out["description"] = description
    return out


_STRINGS = {"type": "array", "items": {"type": "string"}}
_FILTERS = [
    _ORG,
    _q("actions", _STRINGS, _LIST_HELP),
    _q("actor_ids", _STRINGS, _LIST_HELP),
    _q("target_ids", _STRINGS, _LIST_HELP),
    _q("target_types", _STRINGS, _LIST_HELP),
    _q("range_start", _TIME, "occurred_at from (inclusive); ISO-8601, UTC when no offset"),
    _q("range_end", _TIME, "occurred_at until (exclusive); ISO-8601, UTC when no offset"),
]
_LIST_PARAMS = [
    *_FILTERS,
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}),
    _q("before", {"type": "string"}, "list_metadata.before of a page: the newer page"),
    _q("after", {"type": "string"}, "list_metadata.after of a page: the older page"),
]
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "a repeat within 24 h (same organization) returns the first answer and "
    "writes nothing; the same key with a different event is a 409",
}


def _not_found(responses: dict[str, Any], what: str = "no such organization") -> dict[str, Any]:
    responses["404"] = {"description": what, "content": _ERR}
    return responses


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _S + ref}}}}


def _create(operation_id: str) -> dict[str, Any]:
    responses = _not_found(_resp({"$ref": _S + "AuditLogEvent"}, "201"))
    responses["409"] = {"description": "Idempotency-Key reused with another event", "content": _ERR}
    responses["413"] = {"description": "body larger than SSO_GATE_MAX_API_BODY", "content": _ERR}
    return {
        "operationId": operation_id,
        "description": "Record one event of the app (WorkOS Create Event). The answer is the "
        "stored event.",
        "parameters": [_IDEMPOTENCY],
        "requestBody": _body("AuditLogEventCreate"),
        "responses": responses,
    }


def _list(operation_id: str) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "description": "Events of one organization, newest first.",
        "parameters": _LIST_PARAMS,
        "responses": _not_found(_resp({"$ref": _S + "AuditLogEventList"})),
    }


def _retention(name: str) -> dict[str, Any]:
    return {
        "parameters": _ID,
        "get": {
            "operationId": f"get{name}",
            "responses": _not_found(_resp({"$ref": _S + "AuditLogRetention"})),
        },
        "put": {
            "operationId": f"set{name}",
            "description": "Events older than this are purged by the worker (the purge is "
            "itself audited, and a signed checkpoint keeps the chain verifiable).",
            "requestBody": _body("AuditLogRetentionUpdate"),
            "responses": _not_found(_resp({"$ref": _S + "AuditLogRetention"})),
        },
    }


def audit_paths() -> dict[str, Any]:
    batch = _not_found(_resp({"$ref": _S + "AuditLogEventBatchResult"}, "201"))
    export = _not_found(_resp(None))
    export["200"] = {
        "description": "streamed attachment, newest first",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(CSV_COLUMNS) + "\r\n",
            },
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "one AuditLogEvent per line"}
            },
        },
    }
    return {
        "/audit_logs/events": {
            "post": _create("createAuditLogEvent"),
            "get": _list("listAuditLogEvents"),
        },
        "/audit_logs/events/batch": {
            "post": {
                "operationId": "createAuditLogEvents",
                "description": f"Up to {MAX_BATCH} events in one transaction: all are stored or "
                "none (the first invalid one is named by its index).",
                "requestBody": _body("AuditLogEventBatch"),
                "responses": batch,
            }
        },
        "/audit_logs/events/{id}": {
            "parameters": _ID,
            "get": {
                "operationId": "getAuditLogEvent",
                "responses": _not_found(
                    _resp({"$ref": _S + "AuditLogEvent"}), "no such audit log event"
                ),
            },
        },
        "/audit_logs/export": {
            "get": {
                "operationId": "exportAuditLogEvents",
                "description": "Every matching event as CSV (columns "
                + ", ".join(CSV_COLUMNS)
                + "; targets and metadata as JSON) or NDJSON, streamed in constant memory. "
                "Bad parameters are answered as JSON errors before anything is streamed.",
                "parameters": [
                    *_FILTERS,
                    {**_q("format", {"enum": ["csv", "ndjson"]}), "required": True},
                ],
                "responses": export,
            }
        },
        "/audit_logs/verify": {
            "get": {
                "operationId": "verifyAuditLog",
                "description": "Walk the organization's hash chain: ok is false, and each "
                "problem names the edited, deleted, inserted or reordered row.",
                "parameters": [_ORG],
                "responses": _not_found(_resp({"$ref": _S + "AuditLogVerification"})),
            }
        },
        "/audit/events": {
            "post": _create("createAuditEvent"),
            "get": _list("listAuditEvents"),
        },
        "/organizations/{id}/audit_log_retention": _retention("AuditLogRetention"),
        "/organizations/{id}/audit_logs_retention": _retention("AuditLogsRetention"),
        **audit_stream_paths(),
    }


def audit_schemas() -> dict[str, Any]:
    meta = {
        "type": ["object", "null"],
        "maxProperties": 50,
        "propertyNames": {"type": "string", "minLength": 1, "maxLength": 40},
        "additionalProperties": {"type": ["string", "number", "boolean", "null"], "maxLength": 500},
    }

    def entity() -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["type", "id"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "maxLength": 100, "pattern": NOT_BLANK},
                "id": {"type": "string", "maxLength": 255, "pattern": NOT_BLANK},
                "name": {"type": ["string", "null"], "maxLength": 500},
                "metadata": meta,
            },
        }

    text = {"type": ["string", "null"], "maxLength": 500}
    context = {
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {
            "location": {**text, "description": "IP address or place"},
            "user_agent": text,
        },
    }
    event_in = {
        "type": "object",
        "required": ["action", "actor"],
        "additionalProperties": False,
        "properties": {
            "action": {
                "type": "string",
                "maxLength": 100,
                "pattern": r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$",
                "description": "<target>.<verb>, e.g. invoice.paid",
            },
            "occurred_at": {**_TIME, "type": ["string", "null"], "description": "default: now"},
            "actor": entity(),
            "targets": {"type": "array", "maxItems": 50, "items": entity()},
            "context": context,
            "metadata": meta,
            "version": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
        },
    }
    days = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_RETENTION_DAYS}
    return {
        "AuditLogEventInput": event_in,
        "AuditLogEventCreate": {
            "type": "object",
            "required": ["organization_id", "event"],
            "additionalProperties": False,
            "properties": {
                "organization_id": {"type": "string", "minLength": 1},
                "event": {"$ref": _S + "AuditLogEventInput"},
            },
        },
        "AuditLogEventBatch": {
            "type": "object",
            "required": ["organization_id", "events"],
            "additionalProperties": False,
            "properties": {
                "organization_id": {"type": "string", "minLength": 1},
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": {"$ref": _S + "AuditLogEventInput"},
                },
            },
        },
        "AuditLogEvent": {
            "type": "object",
            "required": ["object", "id", "organization_id", "action", "occurred_at", "actor"],
            "properties": {
                "object": {"const": "audit_log_event"},
                "id": {"type": "string"},
                "organization_id": {"type": "string"},
                "action": {"type": "string"},
                "occurred_at": _TIME,
                "actor": entity(),
                "targets": {"type": "array", "items": entity()},
                "context": context,
                "metadata": {"type": "object"},
                "version": {"type": "integer"},
                "created_at": _TIME,
            },
        },
        "AuditLogEventBatchResult": {
            "type": "object",
            "required": ["object", "data"],
            "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": {"$ref": _S + "AuditLogEvent"}},
            },
        },
        "AuditLogEventList": {
            "type": "object",
            "required": ["object", "data", "list_metadata"],
            "properties": {
                "object": {"const": "list"},
                "data": {"type": "array", "items": {"$ref": _S + "AuditLogEvent"}},
                "list_metadata": {
                    "type": "object",
                    "properties": {"before": _NULL_STR, "after": _NULL_STR},
                },
            },
        },
        "AuditLogVerification": {
            "type": "object",
            "required": ["object", "organization_id", "ok", "checked", "problems"],
            "properties": {
                "object": {"const": "audit_log_verification"},
                "organization_id": {"type": "string"},
                "ok": {"type": "boolean"},
                "checked": {"type": "integer", "description": "rows walked"},
                "first_seq": {"type": ["integer", "null"]},
                "last_seq": {"type": ["integer", "null"]},
                "unchained": {"type": "integer"},
                "problems": {
                    "type": "array",
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "properties": {
                            "kind": {
                                "enum": [
                                    "edited",
                                    "deleted",
                                    "inserted",
                                    "reordered",
                                    "checkpoint",
                                    "head",
                                ]
                            },
                            "seq": {"type": ["integer", "null"], "description": "chain position"},
                            "id": {**_NULL_STR, "description": "the audit event's id"},
                            "detail": {"type": "string"},
                        },
                    },
                },
                "more_problems": {"type": "integer", "description": "beyond the first 100"},
            },
        },
        "AuditLogRetention": {
            "type": "object",
            "properties": {
                "object": {"const": "audit_log_retention"},
                "organization_id": {"type": "string"},
                "retention_days": {**days, "description": "null: kept forever"},
                "retention_period_in_days": {**days, "description": "WorkOS's name"},
            },
        },
        "AuditLogRetentionUpdate": {
            "type": "object",
            "description": "one of retention_days or retention_period_in_days (WorkOS)",
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {"retention_days": days, "retention_period_in_days": days},
        },
        **audit_stream_schemas(),
    }
