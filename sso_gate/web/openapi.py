"""OpenAPI 3.1 description of the management API (served at ``{prefix}/api/openapi.json``)."""

from __future__ import annotations

from typing import Any

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


def openapi_document(server_url: str) -> dict[str, Any]:
    # imported here: openapi_webhooks and openapi_audit build on this module's helpers
    from sso_gate.web.openapi_audit import audit_paths, audit_schemas
    from sso_gate.web.openapi_portal import portal_paths, portal_schemas
    from sso_gate.web.openapi_webhooks import webhook_paths, webhook_schemas

    org = {"$ref": "#/components/schemas/Organization"}
    conn = {"$ref": "#/components/schemas/Connection"}

    def body(ref: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}

    return {
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
                        {"name": "domains", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/Organization")),
                },
                "post": {
                    "operationId": "createOrganization",
                    "requestBody": body("#/components/schemas/OrganizationCreate"),
                    "responses": _resp(org, "201"),
                },
            },
            "/organizations/{id}": {
                "parameters": _ID,
                "get": {"operationId": "getOrganization", "responses": _resp(org)},
                "put": {
                    "operationId": "updateOrganization",
                    "requestBody": body("#/components/schemas/OrganizationUpdate"),
                    "responses": _resp(org),
                },
                "delete": {"operationId": "deleteOrganization", "responses": _resp(None, "204")},
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
                                    "properties": {"domain": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": _resp(org, "201"),
                },
            },
            "/organizations/{id}/domains/{domain}": {
                "parameters": [
                    *_ID,
                    {
                        "name": "domain",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "delete": {"operationId": "removeOrganizationDomain", "responses": _resp(org)},
            },
            "/organizations/{id}/role_mapping": {
                "parameters": _ID,
                "put": {
                    "operationId": "setRoleMapping",
                    "requestBody": body("#/components/schemas/RoleMapping"),
                    "responses": _resp(org),
                },
            },
            "/directories": {
                "get": {
                    "operationId": "listDirectories",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "organization_id", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": _resp(_list_of("#/components/schemas/Directory")),
                },
                "post": {
                    "operationId": "createDirectory",
                    "requestBody": body("#/components/schemas/DirectoryCreate"),
                    "responses": _resp({"$ref": "#/components/schemas/Directory"}, "201"),
                },
            },
            "/directories/{id}": {
                "parameters": _ID,
                "get": {
                    "operationId": "getDirectory",
                    "responses": _resp({"$ref": "#/components/schemas/Directory"}),
                },
                "delete": {"operationId": "deleteDirectory", "responses": _resp(None, "204")},
            },
            "/directories/{id}/rotate_token": {
                "parameters": _ID,
                "post": {
                    "operationId": "rotateDirectoryToken",
                    "responses": _resp({"$ref": "#/components/schemas/Directory"}),
                },
            },
            "/directories/{id}/revoke_tokens": {
                "parameters": _ID,
                "post": {
                    "operationId": "revokeDirectoryTokens",
                    "responses": _resp({"$ref": "#/components/schemas/Directory"}),
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
                    "responses": _resp({"$ref": "#/components/schemas/DirectoryUser"}),
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
                    "responses": _resp({"$ref": "#/components/schemas/DirectoryGroup"}),
                },
            },
            "/connections": {
                "get": {
                    "operationId": "listConnections",
                    "parameters": [
                        *_PAGE_PARAMS,
                        {"name": "organization_id", "in": "query", "schema": {"type": "string"}},
                        {"name": "connection_type", "in": "query", "schema": {"type": "string"}},
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
                    "responses": _resp(conn, "201"),
                },
            },
            "/connections/{id}": {
                "parameters": _ID,
                "get": {"operationId": "getConnection", "responses": _resp(conn)},
                "delete": {"operationId": "deleteConnection", "responses": _resp(None, "204")},
            },
            "/connections/{id}/activate": {
                "parameters": _ID,
                "post": {"operationId": "activateConnection", "responses": _resp(conn)},
            },
            "/connections/{id}/deactivate": {
                "parameters": _ID,
                "post": {"operationId": "deactivateConnection", "responses": _resp(conn)},
            },
            "/connections/{id}/saml_idp": {
                "parameters": _ID,
                "put": {
                    "operationId": "updateSamlIdp",
                    "requestBody": body("#/components/schemas/SamlIdp"),
                    "responses": _resp(conn),
                },
            },
            "/connections/{id}/refresh_metadata": {
                "parameters": _ID,
                "post": {"operationId": "refreshSamlMetadata", "responses": _resp(conn)},
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
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "domains": {"type": "array", "items": {"type": "string"}},
                        "sso_policy": {"enum": ["required", "optional"]},
                        "external_id": {"type": "string"},
                    },
                },
                "OrganizationUpdate": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 200},
                        "domains": {"type": "array", "items": {"type": "string"}},
                        "sso_policy": {"enum": ["required", "optional"]},
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
                                "properties": {
                                    "group": {"type": "string"},
                                    "role": {"type": "string"},
                                },
                            },
                        },
                        "default_role": {"type": ["string", "null"]},
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
                        "name": {"type": "string"},
                        "type": {"type": "string"},
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
                    "properties": {
                        "metadata_xml": {"type": "string"},
                        "metadata_url": {"type": "string", "format": "uri"},
                        "idp_entity_id": {"type": "string"},
                        "sso_url": {"type": "string", "format": "uri"},
                        "certificates": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "ConnectionCreate": {
                    "type": "object",
                    "required": ["organization_id"],
                    "properties": {
                        "organization_id": {"type": "string"},
                        "name": {"type": "string"},
                        "connection_type": {"type": "string"},
                        "state": {"enum": ["draft", "active", "inactive"]},
                        "saml": {
                            "allOf": [{"$ref": "#/components/schemas/SamlIdp"}],
                            "properties": {
                                "sso_binding": {"enum": ["redirect", "post"]},
                                "sign_requests": {"type": "boolean"},
                                "encrypt_assertions": {"type": "boolean"},
                                "allow_idp_initiated": {"type": "boolean"},
                                "idp_initiated_landing": {"type": "string"},
                                "allow_sha1": {"type": "boolean"},
                                "attribute_overrides": {"type": "object"},
                                "custom_attributes": {"type": "object"},
                            },
                        },
                        "oidc": {
                            "type": "object",
                            "required": ["issuer", "client_id", "client_secret"],
                            "properties": {
                                "issuer": {"type": "string", "format": "uri"},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string", "writeOnly": True},
                                "scopes": {"type": "array", "items": {"type": "string"}},
                                "allowed_algorithms": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                },
                                "token_endpoint_auth_method": {
                                    "enum": ["client_secret_basic", "client_secret_post"]
                                },
                                "use_userinfo": {"type": "boolean"},
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
