"""The shape of the portal's per-provider SSO setup guides (the data: ``_guides.py``).

A field value starting with ``$`` names one of the connection's values (see
:data:`VALUE_NAMES`); anything else is typed as shown. Attribute rows name the attribute this
connection's mapping preset reads first (``sso_gate.saml.attributes.PRESETS``; a test keeps the
two in step).
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "Field",
    "Step",
    "Guide",
    "Provider",
    "VALUE_NAMES",
    "NAME_ID_EMAIL",
    "CLAIMS",
    "OIDC_CLAIMS",
    "ASSIGN",
    "attrs",
]

NAME_ID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"

#: ``$name`` -> what the value is (the portal computes them per connection)
VALUE_NAMES = {
    "acs_url": "ACS URL",
    "sp_entity_id": "SP entity ID",
    "sp_metadata_url": "SP metadata URL",
    "acs_url_regex": "ACS URL validator",
    "auth0_settings": "Auth0 SAML settings",
    "redirect_uri": "Redirect URI",
    "scopes": "Scopes",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Field:
    label: str  # the field's label in the IdP's console
    value: str  # "$name" or a literal


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    text: str
    fields: tuple[Field, ...] = ()
    #: (profile field, attribute or claim name to send, where the IdP takes it from)
    attributes: tuple[tuple[str, str, str], ...] = ()
    note: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Guide:
    connection_type: str
    steps: tuple[Step, ...]
    #: where the admin finds what the next form asks for (metadata, or issuer/client id/secret)
    provider_details: str
    #: SAML: "url" or "file" (what this IdP offers); OIDC: an issuer example
    metadata: str = "url"
    example: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Provider:
    key: str
    name: str
    saml: Guide | None = None
    oidc: Guide | None = None

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(p for p in ("saml", "oidc") if getattr(self, p) is not None)


def attrs(
    source: tuple[str, str, str, str], names: tuple[str, ...] = ()
) -> tuple[tuple[str, str, str], ...]:
    """Rows for email, first name, last name, groups (``source`` in that order)."""
    names = names or ("email", "firstName", "lastName", "groups")
    fields = ("email", "first_name", "last_name", "groups")
    return tuple((f, n, s) for f, n, s in zip(fields, names, source, strict=True) if s)


OIDC_CLAIMS = (
    ("email", "email", "scope email"),
    ("first_name", "given_name", "scope profile"),
    ("last_name", "family_name", "scope profile"),
)
ASSIGN = "Assign the people or groups who should sign in to the application."
