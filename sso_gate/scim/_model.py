"""The schema data model (RFC 7643 §7): attribute and schema definitions, resource types, the
common attributes (RFC 7643 §3.1) and attribute-path resolution.

Everything here is immutable and built once at import; lookups are dict hits on lower-cased
names because attribute names are case-insensitive (RFC 7643 §2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, TypeVar, cast

from sso_gate.scim._paths import AttrPath
from sso_gate.scim.errors import SCIMError

__all__ = [
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMA_SCHEMA",
    "Attribute",
    "ResourceSchema",
    "ResourceType",
    "COMMON_ATTRIBUTES",
    "common_attribute",
    "find_attribute",
    "is_uri",
    "memo",
    "ro",
    "rw",
    "clone",
    "normalize_item",
    "normalize_value",
    "parse_bool",
    "parse_datetime",
    "same_value",
]

RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

T = TypeVar("T")

AttrType = Literal[
    "string", "boolean", "decimal", "integer", "dateTime", "reference", "complex", "binary"
]
Mutability = Literal["readOnly", "readWrite", "immutable", "writeOnly"]
Returned = Literal["always", "never", "default", "request"]
Uniqueness = Literal["none", "server", "global"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute definition, with the RFC 7643 §7 characteristics."""

    name: str
    type: AttrType = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = "readWrite"
    returned: Returned = "default"
    uniqueness: Uniqueness = "none"
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    description: str = ""
    _subs: dict[str, Attribute] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subs", {a.name.lower(): a for a in self.sub_attributes})

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), if any."""
        return self._subs.get(name.lower())

    def to_scim(self) -> dict[str, Any]:
        """The RFC 7643 §7 attribute definition."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
        }
        if self.type in ("string", "reference", "binary"):
            out["caseExact"] = self.case_exact
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [a.to_scim() for a in self.sub_attributes]
        out["mutability"] = self.mutability
        out["returned"] = self.returned
        if self.type != "complex":
            out["uniqueness"] = self.uniqueness
        return out


@dataclass(frozen=True, slots=True)
class ResourceSchema:
    """A schema (core or extension) identified by its URN."""

    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]
    _by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {a.name.lower(): a for a in self.attributes})

    def attr(self, name: str) -> Attribute | None:
        """The top-level attribute called ``name`` (case-insensitive), if any."""
        return self._by_name.get(name.lower())

    def to_scim(self, location: str) -> dict[str, Any]:
        """The RFC 7643 §7 Schema resource, as served under ``/Schemas/{id}``."""
        return {
            "schemas": [SCHEMA_SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_scim() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": location},
        }


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type (RFC 7643 §6): its endpoint, core schema and schema extensions."""

    name: str
    endpoint: str
    schema: ResourceSchema
    extensions: tuple[tuple[ResourceSchema, bool], ...] = ()
    _schemas: dict[str, ResourceSchema] = field(init=False, repr=False, compare=False, hash=False)
    # Per-type memo of resolved paths and projection plans (bounded; see _memo).
    _memo: dict[Hashable, Any] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        schemas = {self.schema.id.lower(): self.schema}
        schemas.update((ext.id.lower(), ext) for ext, _ in self.extensions)
        object.__setattr__(self, "_schemas", schemas)
        object.__setattr__(self, "_memo", {})

    def schema_for(self, urn: str) -> ResourceSchema | None:
        """The core or extension schema with this URN (case-insensitive), if any."""
        return self._schemas.get(urn.lower())

    def to_scim(self, location: str) -> dict[str, Any]:
        """The RFC 7643 §6 ResourceType resource, as served under ``/ResourceTypes/{name}``."""
        return {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.schema.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": ext.id, "required": required} for ext, required in self.extensions
            ],
            "meta": {"resourceType": "ResourceType", "location": location},
        }


def memo(rtype: ResourceType, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` cached per resource type; bounded because keys come from clients."""
    cache = rtype._memo
    try:
        return cast(T, cache[key])
    except KeyError:
        value = compute()
        if len(cache) < 4096:
            cache[key] = value
        return value


def rw(name: str, description: str, type: AttrType = "string", **kw: Any) -> Attribute:
    return Attribute(name, type, description=description, **kw)


def ro(name: str, description: str, type: AttrType = "string", **kw: Any) -> Attribute:
    return Attribute(name, type, mutability="readOnly", description=description, **kw)


# RFC 7643 §3.1 common attributes: part of every resource, listed in no schema.
COMMON_ATTRIBUTES: tuple[Attribute, ...] = (
    ro(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
        case_exact=True,
        returned="always",
        uniqueness="server",
    ),
    rw(
        "externalId",
        "A String that is an identifier for the resource as defined by the provisioning client.",
        case_exact=True,
    ),
    ro(
        "meta",
        "A complex attribute containing resource metadata.",
        "complex",
        sub_attributes=(
            ro("resourceType", "The name of the resource type of the resource.", case_exact=True),
            ro("created", "The DateTime that the resource was added.", "dateTime"),
            ro("lastModified", "The most recent DateTime of a change.", "dateTime"),
            ro("location", "The URI of the resource.", "reference", case_exact=True),
            ro("version", "The version (ETag) of the resource.", case_exact=True),
        ),
    ),
    # RFC 7643 §3: "schemas" is filterable (RFC 7644 §3.4.2.2 example) and always returned.
    # readOnly here because the server derives it from the extension data a resource carries.
    ro(
        "schemas",
        "The schema URIs used in the resource.",
        "reference",
        multi_valued=True,
        returned="always",
        reference_types=("uri",),
    ),
)
_COMMON = {a.name.lower(): a for a in COMMON_ATTRIBUTES}

# --- path resolution --------------------------------------------------------------------------


def find_attribute(
    rtype: ResourceType, path: AttrPath
) -> tuple[ResourceSchema, Attribute, Attribute | None] | None:
    """Resolve ``path`` to (schema, attribute, sub-attribute), or None when it names nothing.

    A path without a URN refers to the core schema (RFC 7644 §3.10); extension attributes need
    their full URN prefix. Common attributes (id, externalId, meta, schemas) resolve under the
    core schema.
    """
    return memo(rtype, path, lambda: _find(rtype, path))


def _find(
    rtype: ResourceType, path: AttrPath
) -> tuple[ResourceSchema, Attribute, Attribute | None] | None:
    schema = rtype.schema if path.schema is None else rtype.schema_for(path.schema)
    if schema is None:
        return None
    attr = schema.attr(path.attr)
    if attr is None and schema is rtype.schema:
        attr = _COMMON.get(path.attr.lower())
    if attr is None:
        return None
    if path.sub is None:
        return schema, attr, None
    sub = attr.sub(path.sub)
    return None if sub is None else (schema, attr, sub)


def common_attribute(name: str) -> Attribute | None:
    return _COMMON.get(name.lower())


def is_uri(key: str) -> bool:
    """Top-level keys holding schema extensions are URIs (``urn:…``, ``http://…``)."""
    return ":" in key


# --- values (RFC 7643 §2.3 data types, §2.4 multi-valued attributes) ----------------------------

_BOOLS = {"true": True, "false": False}


def invalid_value(detail: str) -> SCIMError:
    return SCIMError(detail, scim_type="invalidValue")


def parse_bool(value: Any) -> bool | None:
    """JSON booleans, and the strings "true"/"false" in any case.

    Microsoft Entra ID sends ``"active": "False"`` unless the tenant URL carries the
    ``aadOptscim062020`` flag, and ``"primary": "True"`` inside roles; both mean the boolean.
    """
    if value is True or value is False:
        return bool(value)
    if isinstance(value, str):
        return _BOOLS.get(value.lower())
    return None


@lru_cache(maxsize=4096)
def parse_datetime(text: str) -> datetime | None:
    """xsd:dateTime (RFC 7643 §2.3.5) as an aware datetime; naive values are taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def clone(value: Any) -> Any:
    """A copy of a JSON tree (much faster than ``copy.deepcopy`` for dicts of lists)."""
    if type(value) is dict:
        return {k: clone(v) for k, v in value.items()}
    if type(value) is list:
        return [clone(v) for v in value]
    return value


def same_value(attr: Attribute, a: Any, b: Any) -> bool:
    """Equality as the attribute defines it: strings fold case unless ``caseExact``."""
    if not attr.case_exact and isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def normalize_value(attr: Attribute, value: Any, where: str) -> Any:
    """``value`` checked against ``attr`` and normalized; None when it leaves the attribute
    unassigned (null, an empty list or an empty complex value: RFC 7643 §2.5).

    Sub-attribute names take their canonical spelling, booleans written as strings become
    booleans, readOnly sub-attributes are dropped (RFC 7644 §3.5.1: "any values provided SHALL
    be ignored"). Raises ``invalidValue`` for a wrong type and ``invalidSyntax`` for an
    unknown sub-attribute.
    """
    if value is None:
        return None
    if not attr.multi_valued:
        return _single(attr, value, where)
    if not isinstance(value, list):
        raise invalid_value(f"'{where}' is multi-valued and must be a JSON array")
    items = []
    primaries = 0
    for i, item in enumerate(value):
        if item is None:
            continue
        norm = _single(attr, item, f"{where}[{i}]")
        if norm is None:
            continue
        if attr.type == "complex" and norm.get("primary") is True:
            primaries += 1
        items.append(norm)
    # RFC 7643 §2.4: the primary attribute value "true" MUST appear no more than once.
    if primaries > 1:
        raise invalid_value(f"'{where}' has more than one value with primary true")
    return items or None


def normalize_item(attr: Attribute, value: Any, where: str) -> Any:
    """One value of ``attr`` (one element when it is multi-valued), checked and normalized."""
    return _single(attr, value, where) if value is not None else None


def _single(attr: Attribute, value: Any, where: str) -> Any:
    kind = attr.type
    if kind == "string" or kind == "reference" or kind == "binary":
        if isinstance(value, str):
            return value
        raise invalid_value(f"'{where}' must be a string")
    if kind == "complex":
        return _complex(attr, value, where)
    if kind == "boolean":
        flag = parse_bool(value)
        if flag is None:
            raise invalid_value(f"'{where}' must be a boolean")
        return flag
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise invalid_value(f"'{where}' must be an integer")
    if kind == "decimal":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise invalid_value(f"'{where}' must be a number")
    if kind == "dateTime":
        if isinstance(value, str) and parse_datetime(value) is not None:
            return value
        raise invalid_value(f"'{where}' must be an ISO 8601 dateTime")
    raise invalid_value(f"'{where}' has unsupported type {kind}")  # pragma: no cover


def _complex(attr: Attribute, value: Any, where: str) -> dict[str, Any] | None:
    if isinstance(value, str) and not attr.multi_valued and attr.sub("value") is not None:
        # Entra ID writes the enterprise "manager" as the manager's id string
        # ({"op": "Add", "path": "...:manager", "value": "<id>"}) instead of {"value": "<id>"}.
        value = {"value": value}
    if not isinstance(value, dict):
        raise invalid_value(f"'{where}' must be a JSON object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key)
        if sub is None:
            raise SCIMError(f"unknown attribute '{where}.{key}'", scim_type="invalidSyntax")
        if sub.mutability == "readOnly" or item is None:
            continue
        if sub.name in out:
            raise SCIMError(f"'{where}.{sub.name}' is given twice", scim_type="invalidSyntax")
        norm = normalize_value(sub, item, f"{where}.{sub.name}")
        if norm is not None:
            out[sub.name] = norm
    for sub in attr.sub_attributes:
        if sub.required and sub.name not in out:
            raise invalid_value(f"'{where}.{sub.name}' is required")
    return out or None
