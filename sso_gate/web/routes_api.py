"""Management API (``{prefix}/api``): WorkOS paths and shapes, bearer ``SSO_GATE_ADMIN_API_KEY``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from sso_gate._crypto import constant_time_equals
from sso_gate.exceptions import (
    AuthenticationError,
    NotFoundError,
    PayloadTooLargeError,
    SSOGateError,
    ValidationError,
)
from sso_gate.web.openapi import openapi_document
from sso_gate.web.responses import error_response, json_response

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["api_routes"]

Handler = Callable[[Request], Awaitable[Response]]


def _page_args(request: Request) -> dict[str, Any]:
    q = request.query_params
    raw = q.get("limit", "10")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100:
        raise ValidationError("limit must be an integer from 1 to 100", field="limit")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("order must be 'asc' or 'desc'", field="order")
    if q.get("before") and q.get("after"):
        raise ValidationError("give before or after, not both", field="before")
    return {"limit": int(raw), "before": q.get("before"), "after": q.get("after"), "order": order}


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body is larger than {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"request body is larger than {limit} bytes")
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise ValidationError(
            "send a JSON body with Content-Type: application/json", code="invalid_content_type"
        )
    try:
        data = json.loads(body, parse_float=_json_number)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("request body is not valid JSON", code="malformed_body") from None
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object", code="malformed_body")
    return data


def _json_number(literal: str) -> float | int:
    """A JSON number with a fraction: ``2.0`` is the integer 2, as JSON Schema (and so the
    OpenAPI document) reads it; anything else stays a float."""
    value = float(literal)
    if value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value


def _str(data: dict[str, Any], key: str, required: bool = True) -> Any:
    value = data.get(key)
    if value is None:
        if required:
            raise ValidationError(f"{key} is required", field=key)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string", field=key)
    return value


def _or_default(data: dict[str, Any], key: str, default: str) -> Any:
    """An optional string: absent or null is ``default``; an empty string is passed on (and
    refused), not taken as absent."""
    value = _str(data, key, required=False)
    return default if value is None else value


def _str_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{key} must be a list of strings", field=key)
    return value


def _domains(data: dict[str, Any]) -> list[str] | None:
    """WorkOS accepts ``domains: [str]`` (deprecated) and ``domain_data: [{domain, state}]``."""
    if "domain_data" in data:
        items = data["domain_data"]
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("domain"), str) for i in items
        ):
            raise ValidationError(
                "domain_data must be a list of {domain, state}", field="domain_data"
            )
        return [i["domain"] for i in items]
    return _str_list(data, "domains")


class _PathRoute(Route):
    """Every method of one path in one route, so that a 405 names them all in ``Allow``
    (RFC 9110 §15.5.6; one route per method named only its own) and answers in the API's JSON
    error shape."""

    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        table = dict(handlers)
        if "GET" in table:
            table.setdefault("HEAD", table["GET"])

        async def dispatch(request: Request) -> Response:
            return await table[request.method](request)

        super().__init__(path, dispatch, methods=list(table))

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allow = ", ".join(sorted(self.methods))
            response = json_response(
                {
                    "code": "method_not_allowed",
                    "message": f"{scope['method']} is not allowed here; allowed: {allow}",
                },
                405,
                {"Allow": allow},
            )
            await response(scope, receive, send)
            return
        await super().handle(scope, receive, send)


def _one_route_per_path(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Merge the per-method routes of each path into one :class:`_PathRoute`, at the place of
    the path's first route."""
    handlers: dict[str, dict[str, Handler]] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods:
            table = handlers.setdefault(route.path, {})
            for method in route.methods - {"HEAD"}:
                assert method not in table, f"{method} {route.path} is routed twice"
                table[method] = route.endpoint
    merged: list[BaseRoute] = []
    for route in routes:
        if not (isinstance(route, Route) and route.methods):
            merged.append(route)
        elif route.path in handlers:
            merged.append(_PathRoute(route.path, handlers.pop(route.path)))
    return merged


def api_routes(gate: SSOGate) -> list[BaseRoute]:
    s = gate.settings
    key = s.admin_api_key

    def endpoint(fn: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                if key is None:
                    raise NotFoundError(
                        "the management API is off (set SSO_GATE_ADMIN_API_KEY)",
                        code="api_disabled",
                    )
                auth = request.headers.get("authorization", "")
                scheme, _, token = auth.partition(" ")
                if scheme.lower() != "bearer" or not constant_time_equals(
                    token.strip(), key.reveal()
                ):
                    raise AuthenticationError(
                        "missing or invalid API key (Authorization: Bearer …)"
                    )
                return await fn(request)
            except SSOGateError as exc:
                resp = error_response(exc, True)
                if isinstance(exc, AuthenticationError):
                    resp.headers["WWW-Authenticate"] = 'Bearer realm="sso_gate"'
                return resp

        return wrapped

    public = gate.connections.public_dict

    # -- organizations -------------------------------------------------------------------------

    async def list_orgs(request: Request) -> Response:
        domains = request.query_params.getlist("domains")
        page = await gate.organizations.list(
            domain=domains[0] if domains else None, **_page_args(request)
        )
        return json_response(page.to_dict())

    async def create_org(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        org = await gate.organizations.create(
            name=_str(data, "name"),
            domains=_domains(data) or [],
            sso_policy=data.get("sso_policy", "optional"),
            external_id=_str(data, "external_id", required=False),
        )
        return json_response(org.to_dict(), 201)

    async def get_org(request: Request) -> Response:
        org = await gate.organizations.get(request.path_params["id"])
        return json_response(org.to_dict())

    async def update_org(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        org = await gate.organizations.update(
            request.path_params["id"],
            name=_str(data, "name", required=False),
            sso_policy=data.get("sso_policy"),
            domains=_domains(data),
        )
        return json_response(org.to_dict())

    async def delete_org(request: Request) -> Response:
        await gate.organizations.delete(request.path_params["id"])
        return Response(status_code=204)

    async def add_domain(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        org = await gate.organizations.add_domain(request.path_params["id"], _str(data, "domain"))
        return json_response(org.to_dict(), 201)

    async def set_role_mapping(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        items = data.get("role_mapping", [])
        if not isinstance(items, list) or not all(
            isinstance(i, dict)
            and isinstance(i.get("group"), str)
            and isinstance(i.get("role"), str)
            for i in items
        ):
            raise ValidationError(
                "role_mapping must be a list of {group, role}", field="role_mapping"
            )
        org = await gate.organizations.set_role_mapping(
            request.path_params["id"],
            [(i["group"], i["role"]) for i in items],
            _str(data, "default_role", required=False),
        )
        return json_response(org.to_dict())

    async def remove_domain(request: Request) -> Response:
        org = await gate.organizations.remove_domain(
            request.path_params["id"], request.path_params["domain"]
        )
        return json_response(org.to_dict())

    # -- connections ---------------------------------------------------------------------------

    async def list_connections(request: Request) -> Response:
        q = request.query_params
        if q.get("state") not in (None, "draft", "active", "inactive"):
            raise ValidationError("state must be draft, active or inactive", field="state")
        page = await gate.connections.list(
            organization_id=q.get("organization_id"),
            connection_type=q.get("connection_type"),
            state=q.get("state"),
            **_page_args(request),
        )
        return json_response(
            {
                "object": "list",
                "data": [public(c) for c in page.data],
                "list_metadata": {"before": page.before, "after": page.after},
            }
        )

    async def create_connection(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        org_id = _str(data, "organization_id")
        if isinstance(data.get("saml"), dict):
            return json_response(public(await _create_saml(org_id, data)), 201)
        oidc = data.get("oidc")
        if not isinstance(oidc, dict):
            raise ValidationError(
                "give an 'oidc' object {issuer, client_id, client_secret, …} or a 'saml' object "
                "{metadata_xml | metadata_url | idp_entity_id + sso_url + certificates, …}",
                field="oidc",
            )
        opts: dict[str, Any] = {}
        for name in ("scopes", "allowed_algorithms", "additional_trusted_audiences"):
            value = _str_list(oidc, name)
            if value is not None:
                opts[name] = value
        for name in ("use_userinfo", "require_email_domain_match"):
            if name in oidc:
                if not isinstance(oidc[name], bool):
                    raise ValidationError(f"{name} must be true or false", field=name)
                opts[name] = oidc[name]
        if "token_endpoint_auth_method" in oidc:
            opts["token_endpoint_auth_method"] = _str(oidc, "token_endpoint_auth_method")
        conn = await gate.connections.create_oidc(
            org_id,
            issuer=_str(oidc, "issuer"),
            client_id=_str(oidc, "client_id"),
            client_secret=_str(oidc, "client_secret"),
            name=_str(data, "name", required=False),
            connection_type=_or_default(data, "connection_type", "GenericOIDC"),
            state=data.get("state", "active"),
            **opts,
        )
        return json_response(public(conn), 201)

    async def _create_saml(org_id: str, data: dict[str, Any]) -> Any:
        saml = data["saml"]
        opts: dict[str, Any] = {}
        for name in (
            "metadata_xml",
            "metadata_url",
            "idp_entity_id",
            "sso_url",
            "sso_binding",
            "idp_initiated_landing",
        ):
            value = _str(saml, name, required=False)
            if value is not None:
                opts[name] = value
        certs = _str_list(saml, "certificates")
        if certs is not None:
            opts["certificates"] = certs
        for name in (
            "sign_requests",
            "encrypt_assertions",
            "allow_idp_initiated",
            "allow_sha1",
            "require_email_domain_match",
        ):
            if name in saml:
                if not isinstance(saml[name], bool):
                    raise ValidationError(f"{name} must be true or false", field=name)
                opts[name] = saml[name]
        for name in ("attribute_overrides", "custom_attributes"):
            if name in saml:
                if not isinstance(saml[name], dict):
                    raise ValidationError(f"{name} must be an object", field=name)
                opts[name] = saml[name]
        return await gate.connections.create_saml(
            org_id,
            name=_str(data, "name", required=False),
            connection_type=_or_default(data, "connection_type", "GenericSAML"),
            state=data.get("state", "active"),
            **opts,
        )

    async def update_saml(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        opts: dict[str, Any] = {}
        for name in ("metadata_xml", "metadata_url", "idp_entity_id", "sso_url"):
            value = _str(data, name, required=False)
            if value is not None:
                opts[name] = value
        certs = _str_list(data, "certificates")
        if certs is not None:
            opts["certificates"] = certs
        conn = await gate.connections.update_saml_idp(request.path_params["id"], **opts)
        return json_response(public(conn))

    async def refresh_metadata(request: Request) -> Response:
        conn = await gate.connections.refresh_saml_metadata(request.path_params["id"])
        return json_response(public(conn))

    async def get_connection(request: Request) -> Response:
        conn = await gate.connections.get(request.path_params["id"])
        return json_response(public(conn))

    async def delete_connection(request: Request) -> Response:
        await gate.connections.delete(request.path_params["id"])
        return Response(status_code=204)

    async def activate(request: Request) -> Response:
        conn = await gate.connections.activate(request.path_params["id"])
        return json_response(public(conn))

    async def deactivate(request: Request) -> Response:
        conn = await gate.connections.deactivate(request.path_params["id"])
        return json_response(public(conn))

    # -- directories (WorkOS paths) ------------------------------------------------------------

    def directory_out(d: Any, token: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = d.to_dict(gate.directories.scim_base_url(d.id))
        if token is not None:
            data["bearer_token"] = token  # shown once
        return data

    async def create_directory(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        opts: dict[str, Any] = {}
        if "deprovision_blocks_sso" in data:
            if not isinstance(data["deprovision_blocks_sso"], bool):
                raise ValidationError(
                    "deprovision_blocks_sso must be true or false", field="deprovision_blocks_sso"
                )
            opts["deprovision_blocks_sso"] = data["deprovision_blocks_sso"]
        d, token = await gate.directories.create(
            _str(data, "organization_id"),
            name=_str(data, "name", required=False),
            type=_or_default(data, "type", "generic scim v2.0"),
            **opts,
        )
        return json_response(directory_out(d, token), 201)

    async def list_directories(request: Request) -> Response:
        page = await gate.directories.list(
            organization_id=request.query_params.get("organization_id"), **_page_args(request)
        )
        return json_response(
            {
                "object": "list",
                "data": [directory_out(d) for d in page.data],
                "list_metadata": {"before": page.before, "after": page.after},
            }
        )

    async def get_directory(request: Request) -> Response:
        return json_response(directory_out(await gate.directories.get(request.path_params["id"])))

    async def delete_directory(request: Request) -> Response:
        await gate.directories.delete(request.path_params["id"])
        return Response(status_code=204)

    async def rotate_token(request: Request) -> Response:
        token = await gate.directories.rotate_token(request.path_params["id"])
        return json_response(
            directory_out(await gate.directories.get(request.path_params["id"]), token)
        )

    async def revoke_tokens(request: Request) -> Response:
        await gate.directories.revoke_tokens(request.path_params["id"])
        return json_response(directory_out(await gate.directories.get(request.path_params["id"])))

    async def directory_users_list(request: Request) -> Response:
        q = request.query_params
        page = await gate.directories.list_users(
            directory_id=request.path_params.get("id") or q.get("directory"),
            group_id=q.get("group"),
            organization_id=q.get("organization_id"),
            email=q.get("email"),
            state=q.get("state"),
            **_page_args(request),
        )
        return json_response(page.to_dict())

    async def directory_groups_list(request: Request) -> Response:
        q = request.query_params
        page = await gate.directories.list_groups(
            directory_id=request.path_params.get("id") or q.get("directory"),
            user_id=q.get("user"),
            organization_id=q.get("organization_id"),
            **_page_args(request),
        )
        return json_response(page.to_dict())

    async def directory_user(request: Request) -> Response:
        return json_response((await gate.directories.get_user(request.path_params["id"])).to_dict())

    async def directory_group(request: Request) -> Response:
        return json_response(
            (await gate.directories.get_group(request.path_params["id"])).to_dict()
        )

    async def openapi(request: Request) -> Response:
        return json_response(openapi_document(s.gate_url("/api")))

    # imported here: routes_webhooks and routes_audit use this module's request helpers
    from sso_gate.web.routes_audit import audit_routes
    from sso_gate.web.routes_portal_api import portal_api_routes
    from sso_gate.web.routes_webhooks import webhook_routes

    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/organizations", endpoint(list_orgs), methods=["GET"]),
        Route("/organizations", endpoint(create_org), methods=["POST"]),
        Route("/organizations/{id}", endpoint(get_org), methods=["GET"]),
        Route("/organizations/{id}", endpoint(update_org), methods=["PUT"]),
        Route("/organizations/{id}", endpoint(delete_org), methods=["DELETE"]),
        Route("/organizations/{id}/domains", endpoint(add_domain), methods=["POST"]),
        Route("/organizations/{id}/role_mapping", endpoint(set_role_mapping), methods=["PUT"]),
        Route("/organizations/{id}/domains/{domain}", endpoint(remove_domain), methods=["DELETE"]),
        Route("/connections", endpoint(list_connections), methods=["GET"]),
        Route("/connections", endpoint(create_connection), methods=["POST"]),
        Route("/connections/{id}", endpoint(get_connection), methods=["GET"]),
        Route("/connections/{id}", endpoint(delete_connection), methods=["DELETE"]),
        Route("/connections/{id}/activate", endpoint(activate), methods=["POST"]),
        Route("/connections/{id}/deactivate", endpoint(deactivate), methods=["POST"]),
        Route("/connections/{id}/saml_idp", endpoint(update_saml), methods=["PUT"]),
        Route("/directories", endpoint(list_directories), methods=["GET"]),
        Route("/directories", endpoint(create_directory), methods=["POST"]),
        Route("/directories/{id}", endpoint(get_directory), methods=["GET"]),
        Route("/directories/{id}", endpoint(delete_directory), methods=["DELETE"]),
        Route("/directories/{id}/rotate_token", endpoint(rotate_token), methods=["POST"]),
        Route("/directories/{id}/revoke_tokens", endpoint(revoke_tokens), methods=["POST"]),
        Route("/directories/{id}/users", endpoint(directory_users_list), methods=["GET"]),
        Route("/directories/{id}/groups", endpoint(directory_groups_list), methods=["GET"]),
        Route("/directory_users", endpoint(directory_users_list), methods=["GET"]),
        Route("/directory_users/{id}", endpoint(directory_user), methods=["GET"]),
        Route("/directory_groups", endpoint(directory_groups_list), methods=["GET"]),
        Route("/directory_groups/{id}", endpoint(directory_group), methods=["GET"]),
        Route("/connections/{id}/refresh_metadata", endpoint(refresh_metadata), methods=["POST"]),
        *webhook_routes(gate, endpoint),
        *audit_routes(gate, endpoint),
        *portal_api_routes(gate, endpoint),
    ]
    return _one_route_per_path(routes)
