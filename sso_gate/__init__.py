"""sso_gate: enterprise SSO (OIDC, SAML), SCIM and audit logs for any ASGI app, self-hosted."""

from sso_gate.exceptions import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    IdPError,
    IdPUnavailableError,
    NotFoundError,
    SSOFlowError,
    SSOGateError,
    TokenValidationError,
    ValidationError,
)
from sso_gate.gate import SSOGate
from sso_gate.models import Connection, Organization, Profile, Session
from sso_gate.settings import Secret, Settings
from sso_gate.web.context import SSOContext
from sso_gate.web.guards import RequireSSO, check_access, requires_sso

__all__ = [
    "SSOGate",
    "Settings",
    "Secret",
    "Profile",
    "Session",
    "Organization",
    "Connection",
    "SSOContext",
    "requires_sso",
    "RequireSSO",
    "check_access",
    "SSOGateError",
    "ConfigurationError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "AuthenticationError",
    "SSOFlowError",
    "TokenValidationError",
    "IdPError",
    "IdPUnavailableError",
]

__version__ = "0.1.0.dev0"
