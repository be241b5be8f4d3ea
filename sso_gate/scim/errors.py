"""SCIM errors in RFC 7644 §3.12 form: ``{"schemas": [...Error], "status": "400",
"scimType": "invalidFilter", "detail": "..."}``."""

from __future__ import annotations

from typing import Any

from sso_gate.exceptions import SSOGateError

__all__ = ["ERROR_SCHEMA", "SCIMError"]

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class SCIMError(SSOGateError):
    """``scim_type`` is one of RFC 7644 §3.12's (invalidFilter, tooMany, uniqueness, mutability,
    invalidSyntax, invalidPath, noTarget, invalidValue, invalidVers, sensitive) or None."""

    code = "scim_error"

    def __init__(self, detail: str, *, status: int = 400, scim_type: str | None = None) -> None:
        super().__init__(detail, code=scim_type or f"scim_{status}")
        self.http_status = status
        self.scim_type = scim_type

    def to_scim(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": str(self.http_status),
            "detail": self.message,
        }
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body
