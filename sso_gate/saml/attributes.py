"""Attribute mapping: from the IdP's attribute names to Profile fields.

Presets list, per field, the names each provider really sends (in priority order). A
connection may override any field with its own attribute name and add ``custom`` attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

__all__ = ["PRESETS", "FIELDS", "MappedAttributes", "map_attributes"]

_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_MS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/"
_ENTRA = "http://schemas.microsoft.com/identity/claims/"

FIELDS = ("email", "first_name", "last_name", "groups", "roles", "idp_id")

_GENERIC: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "mail",
        "emailAddress",
        "Email",
        "user.email",
        _CLAIMS + "emailaddress",
        "urn:oid:0.9.2342.19200300.100.1.3",
        _CLAIMS + "upn",
        "upn",
    ),
    "first_name": (
        "firstName",
        "first_name",
        "givenName",
        "given_name",
        "FirstName",
        "user.firstName",
        _CLAIMS + "givenname",
        "urn:oid:2.5.4.42",
    ),
    "last_name": (
        "lastName",
        "last_name",
        "sn",
        "surname",
        "family_name",
        "LastName",
        "user.lastName",
        _CLAIMS + "surname",
        "urn:oid:2.5.4.4",
    ),
    "groups": (
        "groups",
        "memberOf",
        "Groups",
        _MS + "groups",
        "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
        "isMemberOf",
    ),
    "roles": (
        "roles",
        "role",
        "Role",
        _MS + "role",
        _CLAIMS + "role",
        "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
        "eduPersonAffiliation",
    ),
    "idp_id": (),
}


def _prefer(**first: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    out = dict(_GENERIC)
    for field, names in first.items():
        out[field] = names + tuple(n for n in _GENERIC[field] if n not in names)
    return out


PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    "generic": _GENERIC,
    "okta": _prefer(email=("email",), first_name=("firstName",), last_name=("lastName",)),
    "entra_id": _prefer(
        email=(_CLAIMS + "emailaddress", _CLAIMS + "name", _CLAIMS + "upn"),
        first_name=(_CLAIMS + "givenname",),
        last_name=(_CLAIMS + "surname",),
        groups=(_MS + "groups",),
        roles=(_MS + "role",),
        idp_id=(_ENTRA + "objectidentifier",),
    ),
    "adfs": _prefer(
        email=(_CLAIMS + "emailaddress", _CLAIMS + "upn"),
        first_name=(_CLAIMS + "givenname",),
        last_name=(_CLAIMS + "surname",),
        groups=(_MS + "groups", _CLAIMS + "Group"),
        roles=(_MS + "role",),
    ),
    "google": _prefer(
        email=("email",),
        first_name=("first_name", "firstName"),
        last_name=("last_name", "lastName"),
        groups=("groups",),
    ),
    "shibboleth": _prefer(
        email=("urn:oid:0.9.2342.19200300.100.1.3",),
        first_name=("urn:oid:2.5.4.42",),
        last_name=("urn:oid:2.5.4.4",),
        groups=("urn:oid:1.3.6.1.4.1.5923.1.5.1.1",),
        roles=("urn:oid:1.3.6.1.4.1.5923.1.1.1.1",),
        idp_id=("urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "urn:oid:1.3.6.1.4.1.5923.1.1.1.10"),
    ),
    "onelogin": _prefer(
        email=("User.email",),
        first_name=("User.FirstName",),
        last_name=("User.LastName",),
        groups=("memberOf",),
    ),
    "jumpcloud": _prefer(
        email=("email",), first_name=("firstname",), last_name=("lastname",), groups=("memberOf",)
    ),
    "pingone": _prefer(
        email=("email", "mail"),
        first_name=("given_name", "firstName"),
        last_name=("family_name", "lastName"),
        groups=("memberOf", "groups"),
    ),
    "auth0": _prefer(
        email=(_CLAIMS + "emailaddress",),
        first_name=(_CLAIMS + "givenname",),
        last_name=(_CLAIMS + "surname",),
        groups=("http://schemas.auth0.com/groups",),
    ),
    "keycloak": _prefer(
        email=("email",),
        first_name=("firstName", "givenName"),
        last_name=("lastName", "surname"),
        groups=("groups", "Role"),
    ),
    "simplesamlphp": _prefer(
        email=("email", "mail"),
        first_name=("givenName",),
        last_name=("sn",),
        groups=("groups", "eduPersonAffiliation"),
    ),
}


@dataclasses.dataclass(frozen=True, slots=True)
class MappedAttributes:
    email: str | None
    first_name: str | None
    last_name: str | None
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    idp_id: str
    custom: dict[str, str | list[str]]


def _first(attrs: Mapping[str, list[str]], names: tuple[str, ...]) -> list[str] | None:
    for n in names:
        values = attrs.get(n)
        if values:
            return values
    return None


def map_attributes(
    attrs: Mapping[str, list[str]],
    *,
    name_id: str,
    preset: str = "generic",
    overrides: Mapping[str, str] | None = None,
    custom: Mapping[str, str] | None = None,
) -> MappedAttributes:
    table = dict(PRESETS.get(preset, _GENERIC))
    for field, name in (overrides or {}).items():
        if field in table:
            table[field] = (name,)

    def one(field: str) -> str | None:
        values = _first(attrs, table[field])
        return values[0].strip() if values and values[0].strip() else None

    def many(field: str) -> tuple[str, ...]:
        values = _first(attrs, table[field]) or []
        return tuple(v.strip() for v in values if v.strip())

    email = one("email")
    if email is None and "@" in name_id:
        email = name_id
    out_custom: dict[str, str | list[str]] = {}
    for key, attr_name in (custom or {}).items():
        values = attrs.get(attr_name)
        if values:
            out_custom[key] = values[0] if len(values) == 1 else list(values)
    return MappedAttributes(
        email=email,
        first_name=one("first_name"),
        last_name=one("last_name"),
        groups=many("groups"),
        roles=many("roles"),
        idp_id=one("idp_id") or name_id,
        custom=out_custom,
    )
