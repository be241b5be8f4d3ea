"""Audit log events in the WorkOS schema, their validation and canonical serialization.

An event as given by the app (``gate.audit.emit`` / ``POST {prefix}/api/audit/events``)::

    {"action": "invoice.paid", "occurred_at": "2026-11-28T10:00:00Z", "version": 1,
     "actor": {"type": "user", "id": "user_1", "name": "Alice", "metadata": {}},
     "targets": [{"type": "invoice", "id": "inv_1", "name": "Invoice 1", "metadata": {}}],
     "context": {"location": "203.0.113.7", "user_agent": "Mozilla/5.0 …"},
     "metadata": {"amount": 42}}

Rules (clear :class:`ValidationError` for each): ``action`` is ``<target>.<verb>`` — lowercase
words of letters, digits and ``_`` joined by dots (at least two), ≤ 100 characters;
``occurred_at`` an ISO-8601 date-time (default: now); ``actor`` needs ``type`` and ``id``;
``targets`` is a list (≤ 50) of objects with ``type`` and ``id``; ``context.location`` (an IP
address or a place) and ``context.user_agent`` are optional strings; every ``metadata`` object
(event, actor, targets) has ≤ 50 keys, keys ≤ 40 characters, string values ≤ 500 characters,
values that are strings, numbers, booleans or null.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sso_gate._nul import NUL_MESSAGE
from sso_gate._time import isoformat, parse_timestamp
from sso_gate.exceptions import ValidationError

__all__ = [
    "AuditEvent",
    "validate_event",
    "canonical_bytes",
    "ACTION_RE",
    "GATE_SCOPE",
    "AUDIT_ONLY_ACTIONS",
]

ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: the audit scope of gate-wide actions that belong to no organization (e.g. webhook endpoints
#: without an organization); query it with ``organization_id="gate"``
GATE_SCOPE = "gate"
#: actions the gate audits that are not also events (every gate event is audited too, under
#: its own name)
AUDIT_ONLY_ACTIONS: frozenset[str] = frozenset(
    {
        "dsync.token.rotated",
        "dsync.token.revoked",
        "audit_log.retention_changed",
        "organization.domain_verification_required",
        "organization.domain_verification_not_required",
        "portal.link_created",
        "portal.link_used",
        "portal.session_started",
        "audit_stream.created",
        "audit_stream.updated",
        "audit_stream.deleted",
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.deleted",
        "webhook_endpoint.secret_rotated",
        "audit_log.purged",
    }
)
_MAX_KEYS = 50
_MAX_KEY = 40
_MAX_STRING = 500
_MAX_TARGETS = 50
_MAX_ID = 255


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEvent:
    """A stored audit log event (``object: "audit_log_event"``)."""

    id: str
    organization_id: str
    action: str
    occurred_at: datetime
    actor: dict[str, Any]
    targets: tuple[dict[str, Any], ...]
    context: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "audit_log_event",
            "id": self.id,
            "organization_id": self.organization_id,
            "action": self.action,
            "occurred_at": isoformat(self.occurred_at),
            "actor": self.actor,
            "targets": list(self.targets),
            "context": self.context,
            "metadata": self.metadata,
            "version": self.version,
            "created_at": isoformat(self.created_at),
        }


def _metadata(value: object, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be an object", field=field)
    if len(value) > _MAX_KEYS:
        raise ValidationError(
            f"{field} has {len(value)} keys; at most {_MAX_KEYS} are allowed", field=field
        )
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"{field} keys must be non-empty strings", field=field)
        if len(key) > _MAX_KEY:
            raise ValidationError(
                f"{field} key {key[:50]!r} is longer than {_MAX_KEY} characters", field=field
            )
        if "\x00" in key:
            raise ValidationError(f"a key of {field} {NUL_MESSAGE}", field=field)
        if isinstance(item, str):
            if len(item) > _MAX_STRING:
                raise ValidationError(
                    f"{field}.{key} is longer than {_MAX_STRING} characters", field=field
                )
            if "\x00" in item:
                raise ValidationError(f"{field}.{key} {NUL_MESSAGE}", field=field)
        elif not (item is None or isinstance(item, bool | int | float)):
            raise ValidationError(
                f"{field}.{key} must be a string, number, boolean or null", field=field
            )
        out[key] = item
    return out


def _text(value: object, field: str, *, required: bool, limit: int = _MAX_ID) -> str | None:
    if value is None:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    if len(value) > limit:
        raise ValidationError(f"{field} is longer than {limit} characters", field=field)
    if "\x00" in value:
        raise ValidationError(f"{field} {NUL_MESSAGE}", field=field)
    return value


def _entity(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be an object with type and id", field=field)
    unknown = set(value) - {"type", "id", "name", "metadata"}
    if unknown:
        raise ValidationError(
            f"{field} has unknown field(s) {', '.join(sorted(map(str, unknown)))}", field=field
        )
    out: dict[str, Any] = {
        "type": _text(value.get("type"), f"{field}.type", required=True, limit=100),
        "id": _text(value.get("id"), f"{field}.id", required=True),
    }
    name = _text(value.get("name"), f"{field}.name", required=False, limit=_MAX_STRING)
    if name is not None:
        out["name"] = name
    meta = _metadata(value.get("metadata"), f"{field}.metadata")
    if meta:
        out["metadata"] = meta
    return out


_ENTITY_KEYS = frozenset({"type", "id", "name", "metadata"})
_EVENT_KEYS = frozenset(
    {"action", "occurred_at", "actor", "targets", "context", "metadata", "version"}
)
_SCALARS = (type(None), bool, int, float)


def _metadata_fast(value: object) -> dict[str, Any] | None:
    """A plain dict that is certainly valid metadata, copied; ``None`` when the full check
    (which names the problem) has to decide."""
    if type(value) is not dict or len(value) > _MAX_KEYS:
        return None
    for key, item in value.items():
        if type(key) is not str or not 0 < len(key) <= _MAX_KEY or "\x00" in key:
            return None
        kind = type(item)
        if kind is str:
            if len(item) > _MAX_STRING or "\x00" in item:
                return None
        elif kind not in _SCALARS:
            return None
    return dict(value)


def _entity_fast(value: object) -> dict[str, Any] | None:
    """The common case of :func:`_entity` without building field names: a plain dict that
    is certainly valid, normalized; ``None`` when the full check has to decide."""
    if type(value) is not dict or not value.keys() <= _ENTITY_KEYS:
        return None
    kind, ident, name = value.get("type"), value.get("id"), value.get("name")
    if not (
        type(kind) is str
        and 0 < len(kind) <= 100
        and type(ident) is str
        and 0 < len(ident) <= _MAX_ID
        and kind.strip()
        and ident.strip()
        and "\x00" not in kind
        and "\x00" not in ident
    ):
        return None
    out: dict[str, Any] = {"type": kind, "id": ident}
    if name is not None:
        if type(name) is not str or len(name) > _MAX_STRING or "\x00" in name:
            return None
        out["name"] = name
    if "metadata" in value and value["metadata"] is not None:
        meta = _metadata_fast(value["metadata"])
        if meta is None:
            return None
        if meta:
            out["metadata"] = meta
    return out


def validate_event(raw: object, now: datetime) -> dict[str, Any]:
    """Check an incoming event and return its normalized fields (``occurred_at`` a datetime).
    Raises :class:`ValidationError` naming the field."""
    if not isinstance(raw, Mapping):
        raise ValidationError("an audit event must be a JSON object")
    if not raw.keys() <= _EVENT_KEYS:
        unknown = set(raw) - _EVENT_KEYS
        raise ValidationError(
            f"unknown field(s) {', '.join(sorted(map(str, unknown)))}; allowed: "
            f"{', '.join(sorted(_EVENT_KEYS))}",
            field=sorted(map(str, unknown))[0],
        )
    action = raw.get("action")
    if not isinstance(action, str) or not action:
        raise ValidationError("action is required", field="action")
    if len(action) > 100 or not ACTION_RE.match(action):
        raise ValidationError(
            f"action {action[:100]!r} must look like <target>.<verb> (lowercase letters, digits "
            "and _, words joined by dots), e.g. user.signed_in",
            field="action",
        )
    occurred = raw.get("occurred_at")
    if occurred is None:
        occurred_at = now
    elif isinstance(occurred, datetime):
        if occurred.tzinfo is None or occurred.utcoffset() is None:
            raise ValidationError(
                "occurred_at must carry a time zone (a naive datetime is ambiguous)",
                field="occurred_at",
            )
        occurred_at = occurred
    elif isinstance(occurred, str):
        occurred_at = parse_timestamp(occurred, "occurred_at")
    else:
        raise ValidationError("occurred_at must be an ISO-8601 date-time", field="occurred_at")
    if "actor" not in raw:
        raise ValidationError("actor is required (an object with type and id)", field="actor")
    actor = _entity_fast(raw["actor"]) or _entity(raw["actor"], "actor")
    targets_raw = raw.get("targets", [])
    if not isinstance(targets_raw, list):
        raise ValidationError("targets must be a list of objects with type and id", field="targets")
    if len(targets_raw) > _MAX_TARGETS:
        raise ValidationError(f"at most {_MAX_TARGETS} targets are allowed", field="targets")
    targets = [_entity_fast(t) or _entity(t, f"targets[{i}]") for i, t in enumerate(targets_raw)]
    context_raw = raw.get("context")
    if context_raw is None:
        context_raw = {}
    if not isinstance(context_raw, Mapping):
        raise ValidationError("context must be an object", field="context")
    unknown_ctx = set(context_raw) - {"location", "user_agent"}
    if unknown_ctx:
        raise ValidationError(
            f"context has unknown field(s) {', '.join(sorted(map(str, unknown_ctx)))}",
            field="context",
        )
    context: dict[str, Any] = {}
    for key in ("location", "user_agent"):
        text = _text(context_raw.get(key), f"context.{key}", required=False, limit=_MAX_STRING)
        if text is not None:
            context[key] = text
    metadata = raw.get("metadata")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 1000:
        raise ValidationError("version must be a positive integer", field="version")
    return {
        "action": action,
        "occurred_at": occurred_at,
        "actor": actor,
        "targets": targets,
        "context": context,
        "metadata": _metadata_fast(metadata) or _metadata(metadata, "metadata"),
        "version": version,
    }


def canonical_bytes(seq: int, event: Mapping[str, Any]) -> bytes:
    """The bytes the hash chain covers: the event's position and every stored field, as JSON
    with sorted keys and no whitespace (so any edit, insertion or reordering changes them)."""
    body = {
        "seq": seq,
        "id": event["id"],
        "organization_id": event["organization_id"],
        "action": event["action"],
        "occurred_at": event["occurred_at"].astimezone(UTC).isoformat(),
        "actor": event["actor"],
        "targets": list(event["targets"]),
        "context": event["context"],
        "metadata": event["metadata"],
        "version": event["version"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
