"""Frozen dataclasses shared by every layer. ``to_dict`` gives the WorkOS-shaped JSON object."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from sso_gate._time import isoformat
from sso_gate.settings import Secret

__all__ = [
    "SSOPolicy",
    "ConnectionState",
    "ConnectionType",
    "DomainState",
    "OrganizationDomain",
    "Organization",
    "OIDCConfig",
    "Connection",
    "Profile",
    "Session",
    "Event",
    "ListPage",
    "RoutingDecision",
    "SSO_POLICIES",
    "CONNECTION_STATES",
    "OIDC_CONNECTION_TYPES",
    "SAML_CONNECTION_TYPES",
    "SAMLConfig",
    "DIRECTORY_TYPES",
    "Directory",
    "DirectoryUser",
    "DirectoryGroup",
    "EVENT_NAMES",
    "WebhookEndpoint",
    "WebhookDelivery",
    "WebhookAttempt",
]

SSOPolicy = Literal["required", "optional"]
ConnectionState = Literal["draft", "active", "inactive"]
ConnectionType = str  # WorkOS names: "GenericOIDC", "OktaOIDC", "GenericSAML", …
DomainState = Literal["pending", "verified", "failed"]

SSO_POLICIES: tuple[str, ...] = ("required", "optional")
CONNECTION_STATES: tuple[str, ...] = ("draft", "active", "inactive")
OIDC_CONNECTION_TYPES: tuple[str, ...] = (
    "GenericOIDC",
    "OktaOIDC",
    "EntraIdOIDC",
    "GoogleOIDC",
    "Auth0OIDC",
    "KeycloakOIDC",
    "PingOneOIDC",
    "OneLoginOIDC",
    "JumpCloudOIDC",
)


@dataclasses.dataclass(frozen=True, slots=True)
class OrganizationDomain:
    id: str
    organization_id: str
    domain: str
    state: DomainState
    created_at: datetime
    verification_token: str | None = None
    verified_at: datetime | None = None
    last_checked_at: datetime | None = None
    verification_error: str | None = None

    @property
    def txt_record(self) -> str | None:
        """The TXT record value to publish at the domain (``sso-gate-verification=…``)."""
        if self.verification_token is None:
            return None
        return f"sso-gate-verification={self.verification_token}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "organization_domain",
            "id": self.id,
            "organization_id": self.organization_id,
            "domain": self.domain,
            "state": self.state,
            "verification_strategy": "dns" if self.verification_token else "manual",
            "verification_token": self.verification_token,
            "verification_txt_record": self.txt_record,
            "verified_at": isoformat(self.verified_at) if self.verified_at else None,
            "last_checked_at": isoformat(self.last_checked_at) if self.last_checked_at else None,
            "verification_error": self.verification_error,
            "created_at": isoformat(self.created_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    sso_policy: SSOPolicy
    domains: tuple[OrganizationDomain, ...]
    created_at: datetime
    updated_at: datetime
    external_id: str | None = None
    # group -> role, in priority order (first match is the primary role); and the fallback role
    role_mapping: tuple[tuple[str, str], ...] = ()
    default_role: str | None = None
    # SSO routing applies only to DNS-verified domains
    require_verified_domains: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "organization",
            "id": self.id,
            "name": self.name,
            "sso_policy": self.sso_policy,
            "require_verified_domains": self.require_verified_domains,
            "role_mapping": [{"group": g, "role": r} for g, r in self.role_mapping],
            "default_role": self.default_role,
            "external_id": self.external_id,
            "domains": [d.to_dict() for d in self.domains],
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class OIDCConfig:
    """Relying-party settings of an OIDC connection.

    ``allowed_algorithms`` is pinned here and never taken from the provider's discovery
    document (which may list ``none`` or HS*).
    """

    issuer: str
    client_id: str
    client_secret: Secret
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"
    )
    allowed_algorithms: tuple[str, ...] = ("RS256",)
    use_userinfo: bool = False
    additional_trusted_audiences: tuple[str, ...] = ()
    require_email_domain_match: bool = True

    def public_dict(self) -> dict[str, Any]:
        """Settings without the client secret (safe for API responses and logs)."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scopes": list(self.scopes),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "allowed_algorithms": list(self.allowed_algorithms),
            "use_userinfo": self.use_userinfo,
            "additional_trusted_audiences": list(self.additional_trusted_audiences),
            "require_email_domain_match": self.require_email_domain_match,
        }


# WorkOS connection types -> attribute-mapping preset (sso_gate.saml.attributes.PRESETS).
SAML_CONNECTION_TYPES: dict[str, str] = {
    "GenericSAML": "generic",
    "OktaSAML": "okta",
    "AzureSAML": "entra_id",
    "GoogleSAML": "google",
    "OneLoginSAML": "onelogin",
    "JumpCloudSAML": "jumpcloud",
    "PingOneSAML": "pingone",
    "PingFederateSAML": "pingone",
    "ADFSSAML": "adfs",
    "Auth0SAML": "auth0",
    "KeycloakSAML": "keycloak",
    "ShibbolethSAML": "shibboleth",
    "ShibbolethGenericSAML": "shibboleth",
    "SimpleSamlPhpSAML": "simplesamlphp",
}


@dataclasses.dataclass(frozen=True, slots=True)
class SAMLConfig:
    """Per-connection SAML settings: the IdP (from metadata or fields) and this connection's
    own service provider (entity ID, key pair). The SP private key is a :class:`Secret`."""

    idp_entity_id: str
    sso_url: str
    sso_binding: Literal["redirect", "post"]
    idp_certificates: tuple[str, ...]
    sp_entity_id: str
    sp_certificate: str
    sp_private_key: Secret
    slo_url: str | None = None
    metadata_url: str | None = None
    metadata_refreshed_at: str | None = None
    sign_requests: bool = False
    encrypt_assertions: bool = False
    allow_idp_initiated: bool = False
    idp_initiated_landing: str = "/"
    attribute_preset: str = "generic"
    attribute_overrides: tuple[tuple[str, str], ...] = ()
    custom_attributes: tuple[tuple[str, str], ...] = ()
    allow_sha1: bool = False
    require_email_domain_match: bool = True
    notified_certificates: tuple[str, ...] = ()

    def public_dict(self) -> dict[str, Any]:
        return {
            "idp_entity_id": self.idp_entity_id,
            "sso_url": self.sso_url,
            "sso_binding": self.sso_binding,
            "slo_url": self.slo_url,
            "idp_certificates": list(self.idp_certificates),
            "metadata_url": self.metadata_url,
            "metadata_refreshed_at": self.metadata_refreshed_at,
            "sp_entity_id": self.sp_entity_id,
            "sp_certificate": self.sp_certificate,
            "sign_requests": self.sign_requests,
            "encrypt_assertions": self.encrypt_assertions,
            "allow_idp_initiated": self.allow_idp_initiated,
            "idp_initiated_landing": self.idp_initiated_landing,
            "attribute_preset": self.attribute_preset,
            "attribute_overrides": dict(self.attribute_overrides),
            "custom_attributes": dict(self.custom_attributes),
            "allow_sha1": self.allow_sha1,
            "require_email_domain_match": self.require_email_domain_match,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    id: str
    organization_id: str
    connection_type: ConnectionType
    name: str
    state: ConnectionState
    created_at: datetime
    updated_at: datetime
    oidc: OIDCConfig | None = None
    saml: SAMLConfig | None = None

    @property
    def protocol(self) -> Literal["oidc", "saml"]:
        return "saml" if self.saml is not None else "oidc"

    def to_dict(
        self, redirect_uri: str | None = None, saml_urls: dict[str, str] | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "object": "connection",
            "id": self.id,
            "organization_id": self.organization_id,
            "connection_type": self.connection_type,
            "name": self.name,
            "state": self.state,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if self.oidc is not None:
            oidc = self.oidc.public_dict()
            if redirect_uri is not None:
                oidc["redirect_uri"] = redirect_uri
            data["oidc"] = oidc
        if self.saml is not None:
            data["saml"] = {**self.saml.public_dict(), **(saml_urls or {})}
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """The normalized identity of a verified SSO login (WorkOS field names)."""

    id: str
    idp_id: str
    email: str
    first_name: str | None
    last_name: str | None
    organization_id: str
    connection_id: str
    connection_type: str
    groups: tuple[str, ...] = ()
    role: str | None = None
    roles: tuple[str, ...] = ()
    raw_attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    custom_attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    directory_user_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "profile",
            "directory_user_id": self.directory_user_id,
            "id": self.id,
            "idp_id": self.idp_id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "organization_id": self.organization_id,
            "connection_id": self.connection_id,
            "connection_type": self.connection_type,
            "groups": list(self.groups),
            "role": {"slug": self.role} if self.role else None,
            "roles": [{"slug": r} for r in self.roles],
            "raw_attributes": self.raw_attributes,
            "custom_attributes": self.custom_attributes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        role = data.get("role")
        return cls(
            id=data["id"],
            idp_id=data["idp_id"],
            email=data["email"],
            first_name=data.get("first_name"),
            last_name=data.get("last_name"),
            organization_id=data["organization_id"],
            connection_id=data["connection_id"],
            connection_type=data["connection_type"],
            groups=tuple(data.get("groups") or ()),
            role=role["slug"] if isinstance(role, dict) else role,
            roles=tuple(r["slug"] if isinstance(r, dict) else r for r in data.get("roles") or ()),
            raw_attributes=dict(data.get("raw_attributes") or {}),
            custom_attributes=dict(data.get("custom_attributes") or {}),
            directory_user_id=data.get("directory_user_id"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A signed-in SSO session. ``id`` is the public session id (``session_…``)."""

    id: str
    profile: Profile
    created_at: datetime
    expires_at: datetime

    @property
    def organization_id(self) -> str:
        return self.profile.organization_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "session",
            "id": self.id,
            "created_at": isoformat(self.created_at),
            "expires_at": isoformat(self.expires_at),
            "profile": self.profile.to_dict(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    id: str
    event: str
    data: dict[str, Any]
    organization_id: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "event",
            "id": self.id,
            "event": self.event,
            "data": self.data,
            "organization_id": self.organization_id,
            "created_at": isoformat(self.created_at),
        }


# Every event the gate emits (WorkOS names where WorkOS has one). Webhook subscriptions are
# checked against this list; tests/test_events_registry.py checks the code emits nothing else.
EVENT_NAMES: frozenset[str] = frozenset(
    {
        "authentication.sso_succeeded",
        "authentication.sso_failed",
        "connection.created",
        "connection.updated",
        "connection.activated",
        "connection.deactivated",
        "connection.deleted",
        "connection.saml_certificate_renewal_required",
        "dsync.activated",
        "dsync.deleted",
        "dsync.user.created",
        "dsync.user.updated",
        "dsync.user.deleted",
        "dsync.group.created",
        "dsync.group.updated",
        "dsync.group.deleted",
        "dsync.group.user_added",
        "dsync.group.user_removed",
        "organization.created",
        "organization.updated",
        "organization.deleted",
        "organization_domain.created",
        "organization_domain.deleted",
        "organization_domain.verified",
        "organization_domain.verification_failed",
        "session.revoked",
        "webhook_endpoint.disabled",
        "webhook_endpoint.enabled",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A receiver of signed event deliveries. The secret is never part of this object: it is
    returned once by ``create``/``rotate_secret``; ``secret_hint`` shows its last characters."""

    id: str
    url: str
    events: tuple[str, ...]
    organization_id: str | None
    description: str | None
    enabled: bool
    disabled_reason: str | None
    secret_hint: str
    secret_rotating_until: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "webhook_endpoint",
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "organization_id": self.organization_id,
            "description": self.description,
            "enabled": self.enabled,
            "state": "enabled" if self.enabled else "disabled",
            "disabled_reason": self.disabled_reason,
            "secret_hint": self.secret_hint,
            "secret_rotating_until": isoformat(self.secret_rotating_until)
            if self.secret_rotating_until
            else None,
            "consecutive_failures": self.consecutive_failures,
            "failing_since": isoformat(self.failing_since) if self.failing_since else None,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event for one endpoint. ``status``: pending, succeeded, failed (retries exhausted)."""

    id: str
    endpoint_id: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "webhook_delivery",
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": isoformat(self.next_attempt_at) if self.next_attempt_at else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One HTTP request of a delivery: outcome, status, latency and the start of the answer."""

    id: str
    delivery_id: str
    endpoint_id: str
    event_id: str
    attempt: int
    started_at: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: float
    response_excerpt: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "webhook_attempt",
            "id": self.id,
            "delivery_id": self.delivery_id,
            "endpoint_id": self.endpoint_id,
            "event_id": self.event_id,
            "attempt": self.attempt,
            "started_at": isoformat(self.started_at),
            "succeeded": self.succeeded,
            "status_code": self.status_code,
            "latency_ms": round(self.latency_ms, 2),
            "response_excerpt": self.response_excerpt,
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a cursor-paginated list (WorkOS ``list_metadata``)."""

    data: tuple[Any, ...]
    before: str | None
    after: str | None

    def to_dict(self, **kw: Any) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [item.to_dict(**kw) for item in self.data],
            "list_metadata": {"before": self.before, "after": self.after},
        }


@dataclasses.dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Where a login for an email domain goes. ``connection_id`` is None when SSO is not set up."""

    domain: str
    organization_id: str | None
    sso_policy: SSOPolicy | None
    connection_id: str | None

    @property
    def sso_required(self) -> bool:
        return self.sso_policy == "required" and self.connection_id is not None


# WorkOS directory types served over SCIM.
DIRECTORY_TYPES: tuple[str, ...] = (
    "generic scim v2.0",
    "okta scim v2.0",
    "azure scim v2.0",
    "onelogin scim v2.0",
    "jump cloud scim v2.0",
    "pingfederate scim v2.0",
    "rippling scim v2.0",
    "cyberark scim v2.0",
    "jumpcloud scim v2.0",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Directory:
    """A SCIM directory of an organization. The bearer token is never part of it."""

    id: str
    organization_id: str
    name: str
    type: str
    state: Literal["linked", "unlinked"]
    token_hint: str | None
    created_at: datetime
    updated_at: datetime
    deprovision_blocks_sso: bool = True

    def to_dict(self, scim_base_url: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "object": "directory",
            "id": self.id,
            "organization_id": self.organization_id,
            "name": self.name,
            "type": self.type,
            "state": self.state,
            "token_hint": self.token_hint,
            "deprovision_blocks_sso": self.deprovision_blocks_sso,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if scim_base_url is not None:
            data["scim_base_url"] = scim_base_url
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryGroup:
    id: str
    directory_id: str
    organization_id: str
    idp_id: str | None
    name: str
    raw_attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "directory_group",
            "id": self.id,
            "idp_id": self.idp_id,
            "directory_id": self.directory_id,
            "organization_id": self.organization_id,
            "name": self.name,
            "raw_attributes": self.raw_attributes,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: str
    directory_id: str
    organization_id: str
    idp_id: str | None
    username: str
    email: str | None
    first_name: str | None
    last_name: str | None
    state: Literal["active", "inactive"]
    custom_attributes: dict[str, Any]
    raw_attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    groups: tuple[DirectoryGroup, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "directory_user",
            "id": self.id,
            "idp_id": self.idp_id,
            "directory_id": self.directory_id,
            "organization_id": self.organization_id,
            "username": self.username,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "state": self.state,
            "custom_attributes": self.custom_attributes,
            "raw_attributes": self.raw_attributes,
            "groups": [g.to_dict() for g in self.groups],
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
