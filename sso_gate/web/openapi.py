"""OpenAPI 3.1 description of the management API (served at ``{prefix}/api/openapi.json``)."""

from __future__ import annotations

import copy
from typing import Any

from sso_gate.models import DIRECTORY_TYPES, OIDC_CONNECTION_TYPES, SAML_CONNECTION_TYPES
from sso_gate.oidc.tokens import ASYMMETRIC_ALGORITHMS
from sso_gate.saml.attributes import FIELDS

__all__ = ["openapi_document"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _resp(schema: dict[str, Any] | None, code: str = "200") -> dict[str, Any]:
    out: dict[str, Any] = {
        "401": {
            "description": "missing or invalid API key",
            "content": {"application/json": {"schema": _ERROR}},
        },
        "422": {
            "description": "invalid request",
            "content": {"application/json": {"schema": _ERROR}},
        },
    }
    if schema is None:
        out[code] = {"description": "done"}
    else:
        out[code] = {"description": "ok", "content": {"application/json": {"schema": schema}}}
    return out


_ALSO = {
    "404": "no such object: the one in the path, or one the request names",
    "409": "conflicts with an existing object",
    "413": "the request body is larger than SSO_GATE_MAX_API_BODY",
    "502": "the identity provider's metadata could not be fetched",
}


def _also(responses: dict[str, Any], *codes: str) -> dict[str, Any]:
    """``responses`` plus the given error statuses, each with the Error body."""
    for code in codes:
        responses[code] = {
            "description": _ALSO[code],
            "content": {"application/json": {"schema": _ERROR}},
        }
    return responses


def _list_of(ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", "list_metadata"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": ref}},
            "list_metadata": {
                "type": "object",
                "properties": {
                    "before": {"type": ["string", "null"]},
                    "after": {"type": ["string", "null"]},
                },
            },
        },
    }


_PAGE_PARAMS = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
    {"name": "before", "in": "query", "schema": {"type": "string"}},
    {"name": "after", "in": "query", "schema": {"type": "string"}},
    {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
]
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
# Not only whitespace: one character Python's str.strip() keeps (the services strip, then
# require something left; ECMA-262's \s, which JSON Schema's "\S" would use, differs).
NOT_BLANK = (
    "[^\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f"
    "\\u205f\\u3000]"
)
# a name the services trim and require non-empty
_NAME = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NOT_BLANK}
_NAME_OR_NULL = {**_NAME, "type": ["string", "null"]}
_DOMAIN = {
    "type": "string",
    "minLength": 1,
    "description": "a DNS name, two labels or more (IDN allowed), not a consumer mail domain",
}


def _not_found_everywhere(paths: dict[str, Any]) -> dict[str, Any]:
    """A path parameter can always name nothing (or hold a ``/`` no route matches): every
    operation of a templated path documents 404."""
    for path, item in paths.items():
        if "{" not in path:
            continue
        for method, operation in item.items():
            if method != "parameters" and "404" not in operation["responses"]:
                _also(operation["responses"], "404")
    return paths


def _forbid_nul(node: Any) -> None:
    """Every free-text string schema says what the API enforces: no U+0000 (PostgreSQL cannot
    store it; the API answers 422 ``invalid_text``, see ``_runtime._outage_as_503``)."""
    if isinstance(node, list):
        for item in node:
            _forbid_nul(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    is_text = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_text and not {"enum", "const", "format"} & node.keys() and "not" not in node:
        node["not"] = {"type": "string", "pattern": "\u0000"}
    if isinstance(node.get("additionalProperties"), dict) and "propertyNames" not in node:
        node["propertyNames"] = {"type": "string"}  # a map's keys are text too (made so below)
    for key, value in node.items():
        if key != "not":
            _forbid_nul(value)


def _forbid_nul_in_requests(document: dict[str, Any]) -> None:
    """Apply :func:`_forbid_nul` to what clients send: parameters and request bodies (with
    the components they name). Responses are left alone: an error message may quote input."""
    schemas = document["components"]["schemas"]
    seen: set[str] = set()

    def follow(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in seen:
                    seen.add(name)
                    schemas[name] = copy.deepcopy(schemas[name])
                    _forbid_nul(schemas[name])
                    follow(schemas[name])
            for value in node.values():
                follow(value)
        elif isinstance(node, list):
            for item in node:
                follow(item)

    def forbid(holder: dict[str, Any], key: str) -> None:
        if key in holder:
            holder[key] = copy.deepcopy(holder[key])  # shared with responses otherwise
            _forbid_nul(holder[key])
            follow(holder[key])

    for item in document["paths"].values():
        forbid(item, "parameters")
        for key, operation in item.items():
            if key != "parameters":
                forbid(operation, "parameters")
                forbid(operation, "requestBody")


def openapi_document(server_url: str) -> dict[str, Any]:
    # imported here: openapi_webhooks and openapi_audit build on this module's helpers
    from sso_gate.web.openapi_audit import audit_paths, audit_schemas
    from sso_gate.web.openapi_portal import portal_paths, portal_schemas
    from sso_gate.web.openapi_webhooks import webhook_paths, webhook_schemas

    org = {"$ref": "#/components/schemas/Organization"}
    conn = {"$ref": "#/components/schemas/Connection"}

    def body(ref: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}

    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "sso_gate management API", "version": "1"},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": {
            "/organizations": {
                "get": {
                    "operationId": "listOrganizations",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "domains", "in": "query", "schema": _DOMAIN},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/Organization")),
                },
                "post": {
                    "operationId": "createOrganization",
                    "requestBody": body("#/components/schemas/OrganizationCreate"),
                    "responses": _also(_resp(org, "201"), "409", "413"),
                },
            },
            "/organizations/{id}": {
                "parameters": _ID,
                "get": {
                    "operationId": "getOrganization",
                    "responses": _also(_resp(org), "404"),
                },
                "put": {
                    "operationId": "updateOrganization",
                    "requestBody": body("#/components/schemas/OrganizationUpdate"),
                    "responses": _also(_resp(org), "404", "409", "413"),
                },
                "delete": {
                    "operationId": "deleteOrganization",
                    "responses": _also(_resp(None, "204"), "404"),
                },
            },
            "/organizations/{id}/domains": {
                "parameters": _ID,
                "post": {
                    "operationId": "addOrganizationDomain",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["domain"],
                                    "properties": {"domain": _DOMAIN},
                                }
                            }
                        },
                    },
                    "responses": _also(_resp(org, "201"), "404", "409", "413"),
                },
            },
            "/organizations/{id}/domains/{domain}": {
                "parameters": [
                    *_ID,
                    {"name": "domain", "in": "path", "required": True, "schema": _DOMAIN},
                ],
                "delete": {
                    "operationId": "removeOrganizationDomain",
                    "responses": _also(_resp(org), "404"),
                },
            },
            "/organizations/{id}/role_mapping": {
                "parameters": _ID,
                "put": {
                    "operationId": "setRoleMapping",
                    "requestBody": body("#/components/schemas/RoleMapping"),
                    "responses": _also(_resp(org), "404", "413"),
                },
            },
            "/directories": {
                "get": {
                    "operationId": "listDirectories",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {
                            "name": "organization_id",
                            "in": "query",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": _resp(_list_of("#/components/schemas/Directory")),
                },
                "post": {
                    "operationId": "createDirectory",
                    "requestBody": body("#/components/schemas/DirectoryCreate"),
                    "responses": _also(
                        _resp({"$ref": "#/components/schemas/Directory"}, "201"), "404", "413"
                    ),
                },
            },
            "/directories/{id}": {
                "parameters": _ID,
                "get": {
                    "operationId": "getDirectory",
                    "responses": _also(_resp({"$ref": "#/components/schemas/Directory"}), "404"),
                },
                "delete": {
                    "operationId": "deleteDirectory",
                    "responses": _also(_resp(None, "204"), "404"),
                },
            },
            "/directories/{id}/rotate_token": {
                "parameters": _ID,
                "post": {
                    "operationId": "rotateDirectoryToken",
                    "responses": _also(_resp({"$ref": "#/components/schemas/Directory"}), "404"),
                },
            },
            "/directories/{id}/revoke_tokens": {
                "parameters": _ID,
                "post": {
                    "operationId": "revokeDirectoryTokens",
                    "responses": _also(_resp({"$ref": "#/components/schemas/Directory"}), "404"),
                },
            },
            "/directories/{id}/users": {
                "parameters": _ID,
                "get": {
                    "operationId": "listUsersOfDirectory",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "group", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/DirectoryUser")),
                },
            },
            "/directories/{id}/groups": {
                "parameters": _ID,
                "get": {
                    "operationId": "listGroupsOfDirectory",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "user", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/DirectoryGroup")),
                },
            },
            "/directory_users": {
                "get": {
                    "operationId": "listDirectoryUsers",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "directory", "in": "query", "schema": {"type": "string"}},
                        {"name": "group", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/DirectoryUser")),
                },
            },
            "/directory_users/{id}": {
                "parameters": _ID,
                "get": {
                    "operationId": "getDirectoryUser",
                    "responses": _also(
                        _resp({"$ref": "#/components/schemas/DirectoryUser"}), "404"
                    ),
                },
            },
            "/directory_groups": {
                "get": {
                    "operationId": "listDirectoryGroups",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "directory", "in": "query", "schema": {"type": "string"}},
                        {"name": "user", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/DirectoryGroup")),
                },
            },
            "/directory_groups/{id}": {
                "parameters": _ID,
                "get": {
                    "operationId": "getDirectoryGroup",
                    "responses": _also(
                        _resp({"$ref": "#/components/schemas/DirectoryGroup"}), "404"
                    ),
                },
            },
            "/connections": {
                "get": {
                    "operationId": "listConnections",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {
                            "name": "organization_id",
                            "in": "query",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "connection_type",
                            "in": "query",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"enum": ["draft", "active", "inactive"]},
                        },
                    ],
                    "responses": _resp(_list_of("#/components/schemas/Connection")),
                },
                "post": {
                    "operationId": "createConnection",
                    "requestBody": body("#/components/schemas/ConnectionCreate"),
                    "responses": _also(_resp(conn, "201"), "404", "413", "502"),
                },
            },
            "/connections/{id}": {
                "parameters": _ID,
                "get": {"operationId": "getConnection", "responses": _also(_resp(conn), "404")},
                "delete": {
                    "operationId": "deleteConnection",
                    "responses": _also(_resp(None, "204"), "404"),
                },
            },
            "/connections/{id}/activate": {
                "parameters": _ID,
                "post": {
                    "operationId": "activateConnection",
                    "responses": _also(_resp(conn), "404"),
                },
            },
            "/connections/{id}/deactivate": {
                "parameters": _ID,
                "post": {
                    "operationId": "deactivateConnection",
                    "responses": _also(_resp(conn), "404"),
                },
            },
            "/connections/{id}/saml_idp": {
                "parameters": _ID,
                "put": {
                    "operationId": "updateSamlIdp",
                    "requestBody": body("#/components/schemas/SamlIdp"),
                    "responses": _also(_resp(conn), "404", "413", "502"),
                },
            },
            "/connections/{id}/refresh_metadata": {
                "parameters": _ID,
                "post": {
                    "operationId": "refreshSamlMetadata",
                    "responses": _also(_resp(conn), "404", "502"),
                },
            },
            **webhook_paths(),
            **audit_paths(),
            **portal_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
                "OrganizationDomain": {
                    "type": "object",
                    "properties": {
                        "object": {"const": "organization_domain"},
                        "id": {"type": "string"},
                        "domain": {"type": "string"},
                        "state": {"enum": ["pending", "verified", "failed"]},
                        "verification_strategy": {"enum": ["dns", "manual"]},
                        "verification_token": {"type": ["string", "null"]},
                        "verification_txt_record": {"type": ["string", "null"]},
                        "verification_error": {"type": ["string", "null"]},
                    },
                },
                "Organization": {
                    "type": "object",
                    "required": ["object", "id", "name", "domains", "sso_policy"],
                    "properties": {
                        "object": {"const": "organization"},
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "sso_policy": {"enum": ["required", "optional"]},
                        "external_id": {"type": ["string", "null"]},
                        "domains": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/OrganizationDomain"},
                        },
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "OrganizationCreate": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": _NAME,
                        "domains": {"type": ["array", "null"], "items": _DOMAIN},
                        "sso_policy": {"enum": ["required", "optional"]},
                        "external_id": {"type": ["string", "null"]},
                    },
                },
                "OrganizationUpdate": {
                    "type": "object",
                    "description": "a field that is absent or null is left as it is",
                    "properties": {
                        "name": _NAME_OR_NULL,
                        "domains": {"type": ["array", "null"], "items": _DOMAIN},
                        "sso_policy": {"enum": ["required", "optional", None]},
                    },
                },
                "Connection": {
                    "type": "object",
                    "required": ["object", "id", "organization_id", "connection_type", "state"],
                    "properties": {
                        "object": {"const": "connection"},
                        "id": {"type": "string"},
                        "organization_id": {"type": "string"},
                        "connection_type": {"type": "string"},
                        "name": {"type": "string"},
                        "state": {"enum": ["draft", "active", "inactive"]},
                        "oidc": {"type": "object"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "RoleMapping": {
                    "type": "object",
                    "properties": {
                        "role_mapping": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["group", "role"],
                                "properties": {"group": _NAME, "role": _NAME},
                            },
                        },
                        "default_role": {"type": ["string", "null"], "pattern": NOT_BLANK},
                    },
                },
                "Directory": {
                    "type": "object",
                    "required": ["object", "id", "organization_id", "type", "state"],
                    "properties": {
                        "object": {"const": "directory"},
                        "id": {"type": "string"},
                        "organization_id": {"type": "string"},
                        "name": {"type": "string"},
                        "type": {"type": "string"},
                        "state": {"enum": ["linked", "unlinked"]},
                        "scim_base_url": {"type": "string"},
                        "bearer_token": {"type": "string", "description": "only when issued"},
                    },
                },
                "DirectoryCreate": {
                    "type": "object",
                    "required": ["organization_id"],
                    "properties": {
                        "organization_id": {"type": "string"},
                        "name": _NAME_OR_NULL,
                        "type": {"enum": [*DIRECTORY_TYPES, None]},
                        "deprovision_blocks_sso": {"type": "boolean"},
                    },
                },
                "DirectoryUser": {
                    "type": "object",
                    "properties": {
                        "object": {"const": "directory_user"},
                        "id": {"type": "string"},
                        "idp_id": {"type": ["string", "null"]},
                        "email": {"type": ["string", "null"]},
                        "first_name": {"type": ["string", "null"]},
                        "last_name": {"type": ["string", "null"]},
                        "state": {"enum": ["active", "inactive"]},
                        "custom_attributes": {"type": "object"},
                        "raw_attributes": {"type": "object"},
                    },
                },
                "DirectoryGroup": {
                    "type": "object",
                    "properties": {
                        "object": {"const": "directory_group"},
                        "id": {"type": "string"},
                        "idp_id": {"type": ["string", "null"]},
                        "name": {"type": "string"},
                    },
                },
                "SamlIdp": {
                    "type": "object",
                    "description": "metadata_xml, metadata_url, or idp_entity_id + sso_url + "
                    "certificates (PEM)",
                    "properties": {
                        "metadata_xml": {"type": ["string", "null"]},
                        "metadata_url": {"type": ["string", "null"], "format": "uri"},
                        "idp_entity_id": {"type": ["string", "null"]},
                        "sso_url": {"type": ["string", "null"], "format": "uri"},
                        "certificates": {"type": ["array", "null"], "items": {"type": "string"}},
                    },
                },
                "ConnectionCreate": {
                    "type": "object",
                    "required": ["organization_id"],
                    "anyOf": [{"required": ["oidc"]}, {"required": ["saml"]}],
                    "description": "an OIDC or a SAML connection (saml wins when both are given)",
                    "properties": {
                        "organization_id": {"type": "string"},
                        "name": {"type": ["string", "null"], "maxLength": 200},
                        "connection_type": {
                            "enum": [*OIDC_CONNECTION_TYPES, *SAML_CONNECTION_TYPES, None],
                            "description": "one of the kind's types; default GenericOIDC or "
                            "GenericSAML",
                        },
                        "state": {"enum": ["draft", "active", "inactive"]},
                        "saml": {
                            "allOf": [{"$ref": "#/components/schemas/SamlIdp"}],
                            "properties": {
                                "sso_binding": {"enum": ["redirect", "post", None]},
                                "sign_requests": {"type": "boolean"},
                                "encrypt_assertions": {"type": "boolean"},
                                "allow_idp_initiated": {"type": "boolean"},
                                "idp_initiated_landing": {
                                    "type": ["string", "null"],
                                    "description": "a path on this site",
                                },
                                "allow_sha1": {"type": "boolean"},
                                "require_email_domain_match": {"type": "boolean"},
                                "attribute_overrides": {
                                    "type": "object",
                                    "propertyNames": {"enum": list(FIELDS)},
                                    "additionalProperties": {"type": "string"},
                                },
                                "custom_attributes": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                        "oidc": {
                            "type": "object",
                            "required": ["issuer", "client_id", "client_secret"],
                            "description": "a draft may leave issuer, client_id and "
                            "client_secret empty",
                            "properties": {
                                "issuer": {"type": "string", "format": "uri"},
                                "client_id": {"type": "string", "maxLength": 2000},
                                "client_secret": {
                                    "type": "string",
                                    "maxLength": 2000,
                                    "writeOnly": True,
                                },
                                "scopes": {
                                    "type": ["array", "null"],
                                    "items": {"type": "string"},
                                    "contains": {"const": "openid"},
                                },
                                "allowed_algorithms": {
                                    "type": ["array", "null"],
                                    "minItems": 1,
                                    "items": {"enum": sorted(ASYMMETRIC_ALGORITHMS)},
                                },
                                "additional_trusted_audiences": {
                                    "type": ["array", "null"],
                                    "items": {"type": "string"},
                                },
                                "token_endpoint_auth_method": {
                                    "enum": ["client_secret_basic", "client_secret_post"]
                                },
                                "use_userinfo": {"type": "boolean"},
                                "require_email_domain_match": {"type": "boolean"},
                            },
                        },
                    },
                },
                **webhook_schemas(),
                **audit_schemas(),
                **portal_schemas(),
            },
        },
    }
    _not_found_everywhere(document["paths"])
    _forbid_nul_in_requests(document)
    return document
