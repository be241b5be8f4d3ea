"""SCIM 2.0 endpoints (RFC 7644) at ``{prefix}/scim/v2/{directory_id}/``.

Every response is ``application/scim+json``; every error is an RFC 7644 §3.12 body. The bearer
token is checked against the directory in the URL, and every query is scoped to it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from sso_gate._nul import NUL_MESSAGE, find_nul
from sso_gate.exceptions import AuthenticationError, SSOGateError
from sso_gate.models import Directory
from sso_gate.scim import schema as scim_schema
from sso_gate.scim.errors import SCIMError
from sso_gate.services.scim import Kind, RequestLog

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["scim_routes", "scim_response"]

MEDIA = "application/scim+json"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def scim_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = b"" if data is None else json.dumps(data, separators=(",", ":")).encode()
    return Response(
        body, status_code=status, media_type=MEDIA if data is not None else None, headers=headers
    )


def _error(exc: SSOGateError) -> Response:
    if isinstance(exc, SCIMError):
        err = exc
    else:
        err = SCIMError(exc.message, status=exc.http_status)
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if err.http_status == 401 else None
    return scim_response(err.to_scim(), err.http_status, headers)


def _int(q: Any, name: str, default: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 12:
        raise SCIMError(f"{name} must be an integer", scim_type="invalidValue")
    return int(raw)


def _csv(q: Any, name: str) -> list[str] | None:
    raw = q.get(name)
    return [x.strip() for x in raw.split(",") if x.strip()] if raw else None


def _search_params(body: Any) -> dict[str, str]:
    """A ``POST /.search`` body (RFC 7644 §3.4.3) as the equivalent query parameters."""
    if not isinstance(body, dict):
        raise SCIMError("a SearchRequest must be a JSON object", scim_type="invalidSyntax")
    out: dict[str, str] = {}
    for key, value in body.items():
        if key.lower() == "schemas" or value is None:
            continue
        name = next(
            (
                n
                for n in (
                    "attributes",
                    "excludedAttributes",
                    "filter",
                    "sortBy",
                    "sortOrder",
                    "startIndex",
                    "count",
                )
                if n.lower() == key.lower()
            ),
            None,
        )
        if name is None:
            raise SCIMError(f"unknown SearchRequest attribute '{key}'", scim_type="invalidSyntax")
        if name in ("attributes", "excludedAttributes"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SCIMError(f"'{name}' must be an array of strings", scim_type="invalidValue")
            out[name] = ",".join(value)
        elif name in ("startIndex", "count"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SCIMError(f"'{name}' must be an integer", scim_type="invalidValue")
            out[name] = str(value)
        elif isinstance(value, str):
            out[name] = value
        else:
            raise SCIMError(f"'{name}' must be a string", scim_type="invalidValue")
    return out


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise SCIMError(f"request body is larger than {limit} bytes", status=413)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise SCIMError(f"request body is larger than {limit} bytes", status=413)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise SCIMError("the request body is not valid JSON", scim_type="invalidSyntax") from None
    where = find_nul(data)
    if where is not None:
        raise SCIMError(f"{where or 'the body'} {NUL_MESSAGE}", scim_type="invalidValue")
    return data


def scim_routes(gate: SSOGate) -> list[BaseRoute]:
    s = gate.settings

    async def auth(request: Request) -> Directory:
        return await gate.directories.authenticate(
            request.path_params["directory_id"], request.headers.get("authorization")
        )

    def base(directory_id: str) -> str:
        return gate.directories.scim_base_url(directory_id)

    async def log_request(
        request: Request, directory_id: str, status: int, error: str | None
    ) -> None:
        try:
            await gate.scim.log_request(
                directory_id, request.method, request.url.path, status, error
            )
        except SSOGateError:
            pass

    def handler(fn: Any, *, mutating: bool = False) -> Any:
        async def wrapped(request: Request) -> Response:
            directory_id = request.path_params["directory_id"]
            try:
                directory = await auth(request)
                response: Response = await fn(request, directory)
            except AuthenticationError as exc:
                return _error(exc)
            except SSOGateError as exc:
                response = _error(exc)
                if mutating or response.status_code >= 400:
                    await log_request(
                        request, directory_id, response.status_code, exc.message[:500]
                    )
                return response
            if mutating:
                entry: RequestLog | None = getattr(request.state, "scim_log", None)
                if entry is None or not entry.written:  # else written with the change itself
                    await log_request(request, directory_id, response.status_code, None)
            return response

        return wrapped

    def log_entry(request: Request, status: int) -> RequestLog:
        """The request log entry of a write, for the service to write in its transaction."""
        entry = RequestLog(request.method, request.url.path, status)
        request.state.scim_log = entry
        return entry

    # -- discovery (RFC 7644 §4) ---------------------------------------------------------------

    async def spc(request: Request, d: Directory) -> Response:
        return scim_response(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "documentationUri": "https://pypi.org/project/sso-gate/",
                "patch": {"supported": True},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 1000},
                "changePassword": {"supported": False},
                "sort": {"supported": True},
                "etag": {"supported": True},
                "authenticationSchemes": [
                    {
                        "type": "oauthbearertoken",
                        "name": "OAuth Bearer Token",
                        "description": "The directory's bearer token (Authorization: Bearer …)",
                        "primary": True,
                    }
                ],
                "meta": {
                    "resourceType": "ServiceProviderConfig",
                    "location": f"{base(d.id)}/ServiceProviderConfig",
                },
            }
        )

    def all_schemas() -> list[Any]:
        return [scim_schema.USER, scim_schema.ENTERPRISE_USER, scim_schema.GROUP]

    async def schemas(request: Request, d: Directory) -> Response:
        items = [x.to_scim(f"{base(d.id)}/Schemas/{x.id}") for x in all_schemas()]
        return scim_response(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": len(items),
                "startIndex": 1,
                "itemsPerPage": len(items),
                "Resources": items,
            }
        )

    async def schema_one(request: Request, d: Directory) -> Response:
        sid = request.path_params["schema_id"]
        for x in all_schemas():
            if x.id == sid:
                return scim_response(x.to_scim(f"{base(d.id)}/Schemas/{x.id}"))
        raise SCIMError(f"schema {sid} not found", status=404)

    def all_types() -> list[Any]:
        return [scim_schema.USER_TYPE, scim_schema.GROUP_TYPE]

    async def resource_types(request: Request, d: Directory) -> Response:
        items = [t.to_scim(f"{base(d.id)}/ResourceTypes/{t.name}") for t in all_types()]
        return scim_response(
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": len(items),
                "startIndex": 1,
                "itemsPerPage": len(items),
                "Resources": items,
            }
        )

    async def resource_type_one(request: Request, d: Directory) -> Response:
        name = request.path_params["name"]
        for t in all_types():
            if t.name == name:
                return scim_response(t.to_scim(f"{base(d.id)}/ResourceTypes/{t.name}"))
        raise SCIMError(f"resource type {name} not found", status=404)

    # -- resources -----------------------------------------------------------------------------

    def shaped(kind: Kind, resource: dict[str, Any], request: Request) -> dict[str, Any]:
        q = request.query_params
        return scim_schema.project(
            gate.scim.rtype(kind),
            resource,
            attributes=_csv(q, "attributes"),
            excluded=_csv(q, "excludedAttributes"),
        )

    probes: dict[str, dict[str, Any]] = {
        "Users": {"groups": [{"value": "v", "display": "d", "$ref": "r", "type": "direct"}]},
        "Groups": {"members": [{"value": "v", "display": "d", "$ref": "r", "type": "User"}]},
    }

    def loads(kind: Kind, request: Request) -> dict[str, bool]:
        """What the response shows, so the service loads no more: ``related`` (``groups`` /
        ``members`` at all, not with ``?excludedAttributes=members``) and ``member_display``
        (the members' ``display``, returned on request only). Asked of the projection
        itself, on a probe resource."""
        q = request.query_params
        try:
            probe = scim_schema.project(
                gate.scim.rtype(kind),
                probes[kind],
                attributes=_csv(q, "attributes"),
                excluded=_csv(q, "excludedAttributes"),
            )
        except Exception:  # pragma: no cover - shaped() reports it, after the change
            return {"related": True, "member_display": True}
        shown = probe.get("groups" if kind == "Users" else "members") or []
        display = kind == "Users" or any("display" in m for m in shown)
        return {"related": bool(shown), "member_display": display}

    def etag_headers(resource: dict[str, Any]) -> dict[str, str]:
        meta = resource.get("meta") or {}
        headers = {}
        if meta.get("version"):
            headers["ETag"] = meta["version"]
        if meta.get("location"):
            headers["Location"] = meta["location"]
        return headers

    def list_endpoint(kind: Kind, *, search: bool = False) -> Any:
        async def fn(request: Request, d: Directory) -> Response:
            # RFC 7644 §3.4.3: POST {resource}/.search carries the query parameters in its body.
            q: Any = (
                _search_params(await _body(request, s.max_api_body))
                if search
                else request.query_params
            )
            start = _int(q, "startIndex", 1)
            count = _int(q, "count", 100)
            order = q.get("sortOrder", "ascending")
            if order not in ("ascending", "descending"):
                raise SCIMError(
                    "sortOrder must be ascending or descending", scim_type="invalidValue"
                )
            attrs, excluded = _csv(q, "attributes"), _csv(q, "excludedAttributes")
            # the projection decides (case-insensitive, URN-qualified names included)
            related = loads(kind, request)["related"]
            total, items = await gate.scim.list_resources(
                d,
                kind,
                filter_text=q.get("filter"),
                start_index=start,
                count=count,
                sort_by=q.get("sortBy"),
                sort_order=order,
                related=related,
            )
            rtype = gate.scim.rtype(kind)
            return scim_response(
                {
                    "schemas": [LIST_SCHEMA],
                    "totalResults": total,
                    "startIndex": max(1, start),
                    "itemsPerPage": len(items),
                    "Resources": [
                        scim_schema.project(rtype, r, attributes=attrs, excluded=excluded)
                        for r in items
                    ],
                }
            )

        return fn

    def create_endpoint(kind: Kind) -> Any:
        async def fn(request: Request, d: Directory) -> Response:
            resource = await gate.scim.create(
                d,
                kind,
                await _body(request, s.max_api_body),
                **loads(kind, request),
                log=log_entry(request, 201),
            )
            return scim_response(shaped(kind, resource, request), 201, etag_headers(resource))

        return fn

    def get_endpoint(kind: Kind) -> Any:
        async def fn(request: Request, d: Directory) -> Response:
            resource = await gate.scim.get(
                d, kind, request.path_params["id"], **loads(kind, request)
            )
            return scim_response(shaped(kind, resource, request), 200, etag_headers(resource))

        return fn

    def no_content(kind: Kind, op: str, request: Request) -> bool:
        """Whether a successful write answers ``204 No Content`` (with its ``ETag``) instead
        of ``200`` and the resource: PATCH on a group without ``attributes`` or
        ``excludedAttributes`` in the query.

        RFC 7644 §3.5.2: a successful PATCH either returns 200 with the resource, subject to
        ``attributes``, or MAY return 204 with the appropriate headers; with ``attributes``
        the resource is returned (``excludedAttributes`` is treated the same way). A group's
        resource lists every member (10,001 members ≈ 2 MB of JSON), which the IdPs do not
        need back: Okta's SCIM 2.0 reference says of its group PATCHes "the SCIM server
        response to PATCH method requests can also be a HTTP 204 response, with no body
        returned" (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20, "Update
        specific Group membership"), and Entra ID's shows ``HTTP/1.1 204 No Content`` for
        its group PATCHes (learn.microsoft.com/entra/identity/app-provisioning/
        use-scim-to-provision-users-and-groups, "Update Group [Add Members]"). Users keep
        200 with the resource (Okta's reference shows the updated user returned; it is small).
        """
        q = request.query_params
        return (
            op == "patch"
            and kind == "Groups"
            and "attributes" not in q
            and "excludedAttributes" not in q
        )

    def write_endpoint(kind: Kind, op: str) -> Any:
        """PUT (``replace``) and PATCH (``patch``): same inputs; 200 with the resource, or
        204 with its ``ETag`` (see ``no_content``)."""

        async def fn(request: Request, d: Directory) -> Response:
            empty = no_content(kind, op, request)
            # A 204 shows nothing: the service then reads no members at all.
            shows = {"related": False, "member_display": False} if empty else loads(kind, request)
            resource = await getattr(gate.scim, op)(
                d,
                kind,
                request.path_params["id"],
                await _body(request, s.max_api_body),
                request.headers.get("if-match"),
                **shows,
                log=log_entry(request, 204 if empty else 200),
            )
            if empty:
                return Response(status_code=204, headers=etag_headers(resource))
            return scim_response(shaped(kind, resource, request), 200, etag_headers(resource))

        return fn

    def delete_endpoint(kind: Kind) -> Any:
        async def fn(request: Request, d: Directory) -> Response:
            await gate.scim.delete(
                d,
                kind,
                request.path_params["id"],
                request.headers.get("if-match"),
                log=log_entry(request, 204),
            )
            return Response(status_code=204)

        return fn

    async def unsupported(request: Request, d: Directory) -> Response:
        raise SCIMError(f"{request.url.path.rsplit('/', 1)[-1]} is not supported", status=501)

    async def unknown(request: Request, d: Directory) -> Response:
        """RFC 7644 §3.12: unknown endpoints and methods answer SCIM errors, not bare ones."""
        allowed = sorted(
            {
                m
                for r in routes
                if isinstance(r, Route) and r.methods and r.matches(request.scope)[0] != Match.NONE
                for m in r.methods
            }
        )
        if allowed:
            err = SCIMError(f"{request.method} is not allowed here", status=405)
            return scim_response(err.to_scim(), 405, {"Allow": ", ".join(allowed)})
        raise SCIMError(f"no SCIM endpoint at {request.url.path}", status=404)

    p = "/scim/v2/{directory_id}"
    routes: list[BaseRoute] = [
        Route(p + "/ServiceProviderConfig", handler(spc), methods=["GET"]),
        Route(p + "/Schemas", handler(schemas), methods=["GET"]),
        Route(p + "/Schemas/{schema_id:path}", handler(schema_one), methods=["GET"]),
        Route(p + "/ResourceTypes", handler(resource_types), methods=["GET"]),
        Route(p + "/ResourceTypes/{name}", handler(resource_type_one), methods=["GET"]),
        Route(p + "/Bulk", handler(unsupported), methods=["POST"]),
        # Searching several resource types at once (RFC 7644 §3.4.3) is not supported.
        Route(p + "/.search", handler(unsupported), methods=["POST"]),
        Route(p + "/Me", handler(unsupported), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    kinds: tuple[Kind, ...] = ("Users", "Groups")
    for k in kinds:
        kind = str(k)
        routes += [
            Route(f"{p}/{kind}", handler(list_endpoint(k)), methods=["GET"]),
            Route(f"{p}/{kind}/.search", handler(list_endpoint(k, search=True)), methods=["POST"]),
            Route(f"{p}/{kind}", handler(create_endpoint(k), mutating=True), methods=["POST"]),
            Route(f"{p}/{kind}/{{id}}", handler(get_endpoint(k)), methods=["GET"]),
            Route(
                f"{p}/{kind}/{{id}}",
                handler(write_endpoint(k, "replace"), mutating=True),
                methods=["PUT"],
            ),
            Route(
                f"{p}/{kind}/{{id}}",
                handler(write_endpoint(k, "patch"), mutating=True),
                methods=["PATCH"],
            ),
            Route(
                f"{p}/{kind}/{{id}}", handler(delete_endpoint(k), mutating=True), methods=["DELETE"]
            ),
        ]
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [*routes, Route(p + "/{rest:path}", handler(unknown), methods=methods)]
