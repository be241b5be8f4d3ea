"""Per-provider setup guides of the portal's SSO page, as data.

Each guide is the numbered steps an IT admin follows in that identity provider's own admin
console, using the console's labels, with the exact values to enter (the shape:
``_guide_model.py``; the cloud providers: ``_guides_cloud.py``; here AD FS, Keycloak, the
generic SAML and OIDC guides, and the registry).
"""

from __future__ import annotations

from sso_gate.web.portal._guide_model import (
    ASSIGN,
    CLAIMS,
    NAME_ID_EMAIL,
    OIDC_CLAIMS,
    VALUE_NAMES,
    Field,
    Guide,
    Provider,
    Step,
    attrs,
)
from sso_gate.web.portal._guides_cloud import (
    AUTH0,
    ENTRA,
    GOOGLE,
    JUMPCLOUD,
    OKTA,
    ONELOGIN,
    PINGONE,
)

__all__ = [
    "Field",
    "Step",
    "Guide",
    "Provider",
    "PROVIDERS",
    "VALUE_NAMES",
    "NAME_ID_EMAIL",
    "provider_of",
]

ADFS = Provider(
    "adfs",
    "Microsoft AD FS",
    saml=Guide(
        "ADFSSAML",
        (
            Step(
                "In AD FS Management, right-click Relying Party Trusts → Add Relying Party "
                "Trust…, choose Claims aware and Start."
            ),
            Step(
                "Choose “Import data about the relying party published online or on a local "
                "network” and enter:",
                (Field("Federation metadata address", "$sp_metadata_url"),),
                note="If AD FS cannot reach it, choose “Enter data about the relying party "
                "manually”: enable the SAML 2.0 WebSSO protocol with the ACS URL and add the SP "
                "entity ID as relying party trust identifier.",
            ),
            Step(
                "Choose an access control policy (for example Permit everyone) and finish with "
                "“Configure claims issuance policy for this application” checked."
            ),
            Step(
                "In Edit Claim Issuance Policy, Add Rule → Send LDAP Attributes as Claims, "
                "attribute store Active Directory, and map these LDAP attributes (type groups as "
                "the outgoing claim type for Token-Groups):",
                attributes=attrs(
                    (
                        "E-Mail-Addresses",
                        "Given-Name",
                        "Surname",
                        "Token-Groups - Unqualified Names",
                    ),
                    (
                        CLAIMS + "emailaddress",
                        CLAIMS + "givenname",
                        CLAIMS + "surname",
                        "groups",
                    ),
                ),
            ),
            Step(
                "Add Rule → Transform an Incoming Claim: incoming E-Mail Address, outgoing Name "
                "ID, outgoing name ID format Email."
            ),
        ),
        "AD FS publishes its metadata at /FederationMetadata/2007-06/FederationMetadata.xml on "
        "your AD FS host.",
        example="https://adfs.example.com/FederationMetadata/2007-06/FederationMetadata.xml",
    ),
)


KEYCLOAK = Provider(
    "keycloak",
    "Keycloak",
    saml=Guide(
        "KeycloakSAML",
        (
            Step(
                "In the Keycloak admin console, choose your realm, open Clients and click "
                "Create client. Choose Client type SAML and enter:",
                (Field("Client ID", "$sp_entity_id"),),
            ),
            Step(
                "Under Login settings, enter:",
                (
                    Field("Valid redirect URIs", "$acs_url"),
                    Field("Master SAML Processing URL", "$acs_url"),
                ),
                note="Click Save.",
            ),
            Step(
                "On the Settings tab set Name ID format to email (turn Force name ID format on) "
                "and turn Sign assertions on. On the Keys tab turn Client signature required off."
            ),
            Step(
                "On the Client scopes tab open the dedicated scope → Add mapper → By "
                "configuration: a User Property mapper per row (SAML Attribute Name as shown) "
                "and a Group list mapper named groups (Full group path off):",
                attributes=attrs(("email", "firstName", "lastName", "Group list")),
            ),
        ),
        "Realm settings → General → Endpoints → SAML 2.0 Identity Provider Metadata.",
        example="https://keycloak.example.com/realms/<realm>/protocol/saml/descriptor",
    ),
    oidc=Guide(
        "KeycloakOIDC",
        (
            Step(
                "In the Keycloak admin console, choose your realm, open Clients and click "
                "Create client. Choose OpenID Connect, enter a Client ID, then turn Client "
                "authentication on and keep Standard flow."
            ),
            Step("Under Login settings, enter:", (Field("Valid redirect URIs", "$redirect_uri"),)),
            Step(
                "To send groups: Client scopes → the dedicated scope → Add mapper → By "
                "configuration → Group Membership, Token Claim Name groups, Full group path off."
            ),
        ),
        "Copy the Client ID, and the Client secret from the Credentials tab.",
        example="https://keycloak.example.com/realms/<realm>",
    ),
)

GENERIC_SAML = Provider(
    "generic_saml",
    "Other SAML provider",
    saml=Guide(
        "GenericSAML",
        (
            Step(
                "In your identity provider, create a SAML 2.0 application (service provider) "
                "with these values, or import the SP metadata URL:",
                (
                    Field("Assertion Consumer Service (ACS) URL, HTTP-POST", "$acs_url"),
                    Field("SP entity ID / Audience", "$sp_entity_id"),
                    Field("SP metadata URL", "$sp_metadata_url"),
                    Field("NameID format", NAME_ID_EMAIL),
                ),
            ),
            Step("Sign the assertion (or the whole response) with RSA-SHA256."),
            Step(
                "Send these attributes:",
                attributes=attrs(("user's email", "first name", "last name", "group names")),
            ),
            Step(ASSIGN),
        ),
        "Use the IdP's metadata URL if it publishes one; otherwise upload or paste its metadata "
        "XML.",
    ),
)

GENERIC_OIDC = Provider(
    "generic_oidc",
    "Other OpenID Connect provider",
    oidc=Guide(
        "GenericOIDC",
        (
            Step(
                "In your identity provider, register a confidential web application using the "
                "authorization code flow:",
                (
                    Field("Redirect URI", "$redirect_uri"),
                    Field("Scopes", "$scopes"),
                    Field("Token endpoint authentication", "client_secret_basic"),
                ),
            ),
            Step(
                "Make sure the ID token carries these claims (groups optional):",
                attributes=(*OIDC_CLAIMS, ("groups", "groups", "optional")),
            ),
            Step(ASSIGN),
        ),
        "The issuer is the URL whose /.well-known/openid-configuration is the provider's "
        "discovery document.",
        example="https://idp.example.com",
    ),
)

PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        OKTA,
        ENTRA,
        GOOGLE,
        ONELOGIN,
        JUMPCLOUD,
        PINGONE,
        ADFS,
        AUTH0,
        KEYCLOAK,
        GENERIC_SAML,
        GENERIC_OIDC,
    )
}


def provider_of(connection_type: str) -> tuple[Provider, str] | None:
    """The provider and protocol of a connection type (None for types without a guide)."""
    for provider in PROVIDERS.values():
        for protocol in provider.protocols:
            guide = getattr(provider, protocol)
            if guide.connection_type == connection_type:
                return provider, protocol
    return None
