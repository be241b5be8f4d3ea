"""OpenAPI paths and schemas of portal links and domain verification (merged into
:func:`sso_gate.web.openapi.openapi_document`)."""

from __future__ import annotations

from typing import Any

from sso_gate.services.portal import INTENTS
from sso_gate.web.openapi import _resp

__all__ = ["portal_paths", "portal_schemas"]

_S = "#/components/schemas/"
_ORG_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_DOMAIN = {"name": "domain", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": _S + ref}}}}


def _not_found(responses: dict[str, Any]) -> dict[str, Any]:
    responses["404"] = {
        "description": "no such organization or domain",
        "content": {"application/json": {"schema": {"$ref": _S + "Error"}}},
    }
    return responses


def portal_paths() -> dict[str, Any]:
    return {
        "/portal/links": {
            "post": {
                "operationId": "createPortalLink",
                "description": "A single-use admin-portal link, valid for 5 minutes.",
                "requestBody": _body("PortalLinkCreate"),
                "responses": _not_found(_resp({"$ref": _S + "PortalLink"}, "201")),
            }
        },
        "/portal/generate_link": {
            "post": {
                "operationId": "generatePortalLink",
                "description": "WorkOS-compatible form of createPortalLink.",
                "requestBody": _body("PortalGenerateLink"),
                "responses": _not_found(
                    _resp(
                        {
                            "type": "object",
                            "required": ["link"],
                            "properties": {"link": {"type": "string", "format": "uri"}},
                        }
                    )
                ),
            }
        },
        "/organizations/{id}/domain_verifications": {
            "parameters": [_ORG_ID],
            "post": {
                "operationId": "addDomainToVerify",
                "description": "Adds a pending domain and the TXT record to publish.",
                "requestBody": _body("DomainVerificationCreate"),
                "responses": _not_found(_resp({"$ref": _S + "OrganizationDomain"}, "201")),
            },
        },
        "/organizations/{id}/domain_verifications/{domain}/verify": {
            "parameters": [_ORG_ID, _DOMAIN],
            "post": {
                "operationId": "verifyDomain",
                "description": "Looks the TXT record up now: verified, or failed with a reason.",
                "responses": _not_found(_resp({"$ref": _S + "OrganizationDomain"})),
            },
        },
        "/organizations/{id}/domain_verification_policy": {
            "parameters": [_ORG_ID],
            "put": {
                "operationId": "setDomainVerificationPolicy",
                "requestBody": _body("DomainVerificationPolicy"),
                "responses": _not_found(_resp({"$ref": _S + "Organization"})),
            },
        },
    }


def portal_schemas() -> dict[str, Any]:
    intent = {"enum": list(INTENTS)}
    url = {"type": "string", "format": "uri", "maxLength": 2048}
    return {
        "PortalLinkCreate": {
            "type": "object",
            "required": ["organization_id", "intent"],
            "additionalProperties": False,
            "properties": {
                "organization_id": {"type": "string"},
                "intent": intent,
                "return_url": url,
            },
        },
        "PortalGenerateLink": {
            "type": "object",
            "required": ["organization", "intent"],
            "additionalProperties": False,
            "properties": {
                "organization": {"type": "string"},
                "intent": intent,
                "return_url": url,
                "success_url": url,
            },
        },
        "PortalLink": {
            "type": "object",
            "required": ["object", "id", "organization_id", "intent", "link", "expires_at"],
            "properties": {
                "object": {"const": "portal_link"},
                "id": {"type": "string"},
                "organization_id": {"type": "string"},
                "intent": intent,
                "link": {"type": "string", "format": "uri"},
                "return_url": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "DomainVerificationCreate": {
            "type": "object",
            "required": ["domain"],
            "additionalProperties": False,
            "properties": {"domain": {"type": "string", "maxLength": 253}},
        },
        "DomainVerificationPolicy": {
            "type": "object",
            "required": ["require_verified_domains"],
            "additionalProperties": False,
            "properties": {"require_verified_domains": {"type": "boolean"}},
        },
    }
