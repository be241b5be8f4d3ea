"""One exception tree for sso_gate.

Every error carries a stable machine-readable ``code`` and the ``http_status`` the web layer
answers with. Messages say what failed and why; they never contain secrets (tokens, keys, client
secrets, cookie values). Only ``sso_gate.web`` turns these into responses.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SSOGateError",
    "ConfigurationError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "AuthenticationError",
    "SSOFlowError",
    "TokenValidationError",
    "IdPError",
    "IdPUnavailableError",
    "StorageUnavailableError",
    "PermissionDeniedError",
    "RateLimitedError",
]


class SSOGateError(Exception):
    """Root of every error sso_gate raises on purpose."""

    code: str = "sso_gate_error"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ConfigurationError(SSOGateError):
    """A setting is missing, malformed, or combined with another in a way that cannot work."""

    code = "configuration_error"
    http_status = 500


class ValidationError(SSOGateError):
    """Input to the Python or REST API is invalid. ``field`` names the offending field."""

    code = "invalid_request"
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field

    def to_dict(self) -> dict[str, str]:
        data = super().to_dict()
        if self.field is not None:
            data["field"] = self.field
        return data


class NotFoundError(SSOGateError):
    code = "not_found"
    http_status = 404


class ConflictError(SSOGateError):
    code = "conflict"
    http_status = 409


class PayloadTooLargeError(SSOGateError):
    code = "payload_too_large"
    http_status = 413


class PermissionDeniedError(SSOGateError):
    code = "forbidden"
    http_status = 403


class AuthenticationError(SSOGateError):
    """A credential (API key, session cookie) is missing or not valid."""

    code = "unauthorized"
    http_status = 401


class SSOFlowError(SSOGateError):
    """An SSO sign-in was refused: bad state, replay, wrong browser, wrong connection…"""

    code = "sso_failed"
    http_status = 400


class TokenValidationError(SSOFlowError):
    """An ID token or assertion failed a check (signature, issuer, audience, time, nonce)."""

    code = "invalid_token"


class IdPError(SSOFlowError):
    """The identity provider answered with an error (e.g. ``error=access_denied``)."""

    code = "idp_error"


class IdPUnavailableError(SSOGateError):
    """The identity provider could not be reached or answered garbage in time."""

    code = "idp_unavailable"
    http_status = 502


class StorageUnavailableError(SSOGateError):
    code = "storage_unavailable"
    http_status = 503


class RateLimitedError(SSOGateError):
    """Too many requests from one client (IP, organization, directory or API key) for a while.
    ``retry_after``: whole seconds until one more request will be accepted (``Retry-After``)."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": self.retry_after}
