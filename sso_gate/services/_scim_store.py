"""Rows <-> SCIM resources for directory users and groups (RFC 7643 §3.1 common attributes)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sso_gate._time import isoformat
from sso_gate.scim.errors import SCIMError
from sso_gate.store import repositories as repo
from sso_gate.store.tables import directory_groups, directory_users

__all__ = [
    "USER_SCHEMA",
    "GROUP_SCHEMA",
    "ENTERPRISE",
    "user_columns",
    "group_columns",
    "user_resource",
    "group_resource",
    "etag",
    "sort_resources",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def etag(version: int) -> str:
    return f'W/"{version}"'


def _primary_email(resource: dict[str, Any]) -> str | None:
    emails = resource.get("emails")
    if not isinstance(emails, list):
        return None
    items = [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
    chosen = (
        next((e for e in items if e.get("primary") is True), None)
        or next((e for e in items if str(e.get("type", "")).lower() == "work"), None)
        or (items[0] if items else None)
    )
    return (str(chosen["value"]).strip().lower() or None) if chosen else None


def _limits(table: sa.Table) -> dict[str, int]:
    out = {}
    for column in table.c:
        length = getattr(getattr(column.type, "impl", column.type), "length", None)
        if isinstance(length, int):
            out[column.name] = length
    return out


_USER_LIMITS = _limits(directory_users)
_GROUP_LIMITS = _limits(directory_groups)
_USER_ATTRIBUTES = {
    "user_name": "userName",
    "user_name_lower": "userName (lower-cased)",
    "external_id": "externalId",
    "email": "the primary email (emails[].value, or userName)",
    "first_name": "name.givenName",
    "last_name": "name.familyName",
}
_GROUP_ATTRIBUTES = {
    "display_name": "displayName",
    "display_name_lower": "displayName (lower-cased)",
    "external_id": "externalId",
}


def _fit(
    columns: dict[str, Any], limits: Mapping[str, int], names: Mapping[str, str]
) -> dict[str, Any]:
    """The columns, if each fits its column's length; else a 400 ``invalidValue`` naming the
    attribute. PostgreSQL refuses a longer value (SQLite would store it): both refuse it here,
    before anything is written."""
    for column, value in columns.items():
        limit = limits.get(column)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            raise SCIMError(
                f"{names.get(column, column)} is longer than {limit} characters",
                scim_type="invalidValue",
            )
    return columns


def user_columns(resource: dict[str, Any]) -> dict[str, Any]:
    """The indexed columns derived from a validated SCIM User."""
    name = resource.get("name") if isinstance(resource.get("name"), dict) else {}
    user_name = str(resource["userName"])
    email = _primary_email(resource)
    if email is None and "@" in user_name:
        email = user_name.strip().lower()
    active = resource.get("active", True)
    columns = {
        "user_name": user_name,
        "user_name_lower": user_name.lower(),
        "external_id": resource.get("externalId"),
        "email": email,
        "first_name": (name or {}).get("givenName"),
        "last_name": (name or {}).get("familyName"),
        "state": "active" if active is not False else "inactive",
    }
    return _fit(columns, _USER_LIMITS, _USER_ATTRIBUTES)


def group_columns(resource: dict[str, Any]) -> dict[str, Any]:
    display = str(resource["displayName"])
    columns = {
        "display_name": display,
        "display_name_lower": display.lower(),
        "external_id": resource.get("externalId"),
    }
    return _fit(columns, _GROUP_LIMITS, _GROUP_ATTRIBUTES)


def _meta(
    resource_type: str, location: str, created: datetime, updated: datetime, version: int
) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": isoformat(created),
        "lastModified": isoformat(updated),
        "location": location,
        "version": etag(version),
    }


def user_resource(
    row: repo.Row, base_url: str, groups: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The SCIM representation: stored attributes + id, meta, read-only ``groups``."""
    stored = dict(row["resource"] or {})
    schemas = [USER_SCHEMA] + [s for s in stored.get("schemas", []) if s != USER_SCHEMA]
    out: dict[str, Any] = {"schemas": schemas, "id": row["id"]}
    # An unassigned ``active`` stays unassigned (RFC 7644 §3.5.2.2); the user's state still
    # counts it as active (see ``user_columns``).
    out.update({k: v for k, v in stored.items() if k not in ("schemas", "id", "meta", "groups")})
    if groups is not None:
        out["groups"] = [
            {"value": gid, "display": name, "$ref": f"{base_url}/Groups/{gid}", "type": "direct"}
            for gid, name in groups
        ]
    out["meta"] = _meta(
        "User",
        f"{base_url}/Users/{row['id']}",
        row["created_at"],
        row["updated_at"],
        row["version"],
    )
    return out


def group_resource(
    row: repo.Row, base_url: str, members: list[tuple[str, str | None]] | None
) -> dict[str, Any]:
    """The SCIM representation; a member whose name is None (not loaded) has no ``display``."""
    stored = dict(row["resource"] or {})
    out: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": row["id"]}
    out.update({k: v for k, v in stored.items() if k not in ("schemas", "id", "meta", "members")})
    if members is not None:
        out["members"] = [
            {"value": uid, "display": name, "$ref": f"{base_url}/Users/{uid}", "type": "User"}
            if name is not None
            else {"value": uid, "$ref": f"{base_url}/Users/{uid}", "type": "User"}
            for uid, name in members
        ]
    out["meta"] = _meta(
        "Group",
        f"{base_url}/Groups/{row['id']}",
        row["created_at"],
        row["updated_at"],
        row["version"],
    )
    return out


def _sort_value(resource: dict[str, Any], path: str) -> Any:
    """The value ``sortBy`` names (RFC 7644 §3.4.2.3): for multi-valued attributes the primary
    (else first) element's ``value``; strings compared case-insensitively."""
    if ":" in path:
        urn, _, path = path.rpartition(":")
        node: Any = resource.get(urn, {})
    else:
        node = resource
    for part in path.split("."):
        if isinstance(node, list):
            pick = next((x for x in node if isinstance(x, dict) and x.get("primary")), None)
            node = pick or (node[0] if node else None)
        if not isinstance(node, dict):
            return None
        key = next((k for k in node if k.lower() == part.lower()), None)
        node = node.get(key) if key else None
    if isinstance(node, list):
        pick = next((x for x in node if isinstance(x, dict) and x.get("primary")), None)
        node = pick or (node[0] if node else None)
        if isinstance(node, dict):
            node = node.get("value")
    return node.lower() if isinstance(node, str) else node


def sort_resources(
    resources: list[dict[str, Any]], sort_by: str, order: str
) -> list[dict[str, Any]]:
    """Stable sort; resources without the attribute go last in either order."""
    present = [(r, _sort_value(r, sort_by)) for r in resources]
    have = [p for p in present if p[1] is not None]
    missing = [r for r, v in present if v is None]
    try:
        have.sort(key=lambda p: p[1], reverse=order == "descending")
    except TypeError:
        have.sort(key=lambda p: str(p[1]), reverse=order == "descending")
    return [r for r, _ in have] + missing
