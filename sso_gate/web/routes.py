"""The gate's own HTTP routes under the prefix: SSO endpoints and the management API."""

from __future__ import annotations

import hashlib
import inspect
import logging
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router

from sso_gate._urls import safe_return_to
from sso_gate.exceptions import (
    NotFoundError,
    PermissionDeniedError,
    SSOFlowError,
    SSOGateError,
    ValidationError,
)
from sso_gate.models import Profile
from sso_gate.web.middleware import read_cookie
from sso_gate.web.observability import route_template
from sso_gate.web.responses import (
    FLOW_COOKIE,
    clear_cookie_header,
    cookie_name,
    error_response,
    json_response,
    set_cookie_header,
    wants_json,
)

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["build_router", "start_sso_response", "finish_login", "flow_binding"]

log = logging.getLogger("sso_gate.web")


def _binding_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def flow_binding(gate: SSOGate, scope: Any) -> str | None:
    """Hash of this browser's flow cookie (None when the cookie is absent)."""
    value = read_cookie(scope["headers"], cookie_name(gate.settings, FLOW_COOKIE).encode())
    return None if value is None else _binding_hash(value)


async def finish_login(
    gate: SSOGate, request: Request, profile: Profile, return_to: str
) -> Response:
    """The end of every verified sign-in: new session, the app's ``on_login`` hook (which may
    answer), then the session cookie on whatever response goes out."""
    s = gate.settings
    cookie_value, _session = await gate.sessions.create(profile)
    response: Response | None = None
    if gate.login_hook is not None:
        result = gate.login_hook(profile, request)
        if inspect.isawaitable(result):
            result = await result
        response = result if isinstance(result, Response) else None
    if response is None:
        response = RedirectResponse(return_to, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.raw_headers.append(
        set_cookie_header(s, cookie_name(s, s.cookie_name), cookie_value, gate.sessions.lifetime)
    )
    return response


async def start_sso_response(
    gate: SSOGate,
    scope: Any,
    connection_id: str,
    return_to: str | None,
    *,
    login_hint: str | None = None,
    strict: bool = False,
) -> Response:
    """Create the flow and redirect (303) the browser to the IdP, binding it with a cookie."""
    s = gate.settings
    try:
        target = safe_return_to(return_to, s.base_url)
    except SSOFlowError:
        if strict:
            raise
        target = "/"
    connection = await gate.connections.get_cached(connection_id)
    flow_name = cookie_name(s, FLOW_COOKIE)
    flow_value = read_cookie(scope["headers"], flow_name.encode())
    if not flow_value or len(flow_value) != 43:
        flow_value = secrets.token_urlsafe(32)
    resp: Response
    if connection.saml is not None:
        start = await gate.saml.begin(
            connection, return_to=target, binding_hash=_binding_hash(flow_value)
        )
        if start.kind == "post":
            resp = HTMLResponse(start.value, headers={"Cache-Control": "no-store"})
        else:
            resp = RedirectResponse(start.value, 303, headers={"Cache-Control": "no-store"})
    else:
        url = await gate.sso.begin(
            connection,
            return_to=target,
            binding_hash=_binding_hash(flow_value),
            login_hint=login_hint,
        )
        resp = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    key, value = set_cookie_header(s, flow_name, flow_value, s.flow_ttl)
    resp.raw_headers.append((key, value))
    return resp


async def not_found(scope: Any, receive: Any, send: Any) -> None:
    await json_response({"code": "not_found", "message": "no such sso_gate endpoint"}, 404)(
        scope, receive, send
    )


class _Guarded:
    """Last line of defence for the gate's own routes: an unexpected exception is logged with
    its traceback server-side and answered with a plain 500 JSON — never a stack trace."""

    def __init__(self, app: Router) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # the route's template, not the path: a path can hold a secret (a portal link)
            where = route_template(scope) or "an unmatched route"
            log.exception("unhandled error in %s %s", scope.get("method"), where)
            if not started:
                await json_response(
                    {"code": "internal_error", "message": "internal error; see the server log"},
                    500,
                )(scope, receive, send)


def build_router(gate: SSOGate) -> _Guarded:
    from sso_gate.web.portal import portal_routes
    from sso_gate.web.portal._sso_test import finish_oidc_test
    from sso_gate.web.routes_api import api_routes
    from sso_gate.web.routes_saml import saml_routes
    from sso_gate.web.routes_scim import scim_routes

    s = gate.settings

    async def authorize(request: Request) -> Response:
        """``GET /sso/authorize?email=|organization=|connection=&return_to=``"""
        as_json = wants_json(request.headers)
        try:
            q = request.query_params
            return_to = q.get("return_to")
            safe_return_to(return_to, s.base_url)  # refuse bad values before anything else
            connection_id = await _resolve_connection(
                gate, q.get("connection"), q.get("organization"), q.get("email")
            )
            return await start_sso_response(
                gate,
                request.scope,
                connection_id,
                return_to,
                login_hint=q.get("email"),
                strict=True,
            )
        except SSOGateError as exc:
            return error_response(exc, as_json)

    async def oidc_callback(request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        as_json = wants_json(request.headers)
        params = {k: v for k, v in request.query_params.items()}
        try:
            tested = await finish_oidc_test(gate, request.scope, connection_id, params)
            if tested is not None:  # a test sign-in from the admin portal: no session
                return tested
            profile, return_to = await gate.sso.complete_oidc(
                connection_id, params, flow_binding(gate, request.scope)
            )
            return await finish_login(gate, request, profile, return_to)
        except SSOGateError as exc:
            return error_response(exc, as_json, retry_link=s.login_path)

    async def logout(request: Request) -> Response:
        as_json = wants_json(request.headers)
        try:
            _check_same_origin(request, s.base_origin)
            name = cookie_name(s, s.cookie_name)
            value = read_cookie(request.scope["headers"], name.encode())
            target = safe_return_to(request.query_params.get("return_to"), s.base_url)
            idp_logout = None
            if value is not None:
                session = await gate.sessions.verify(value)
                if session is not None:
                    await gate.sessions.revoke(session.id)
                    if session.profile.connection_type.endswith("SAML"):
                        # Where the IdP has a SingleLogoutService, end the IdP session too.
                        idp_logout = await gate.saml.logout_url(session.profile, target)
            response: Response = (
                json_response({"ok": True, "logout_url": idp_logout})
                if as_json
                else RedirectResponse(idp_logout or target, status_code=303)
            )
            response.raw_headers.append(clear_cookie_header(s, name))
            return response
        except SSOGateError as exc:
            return error_response(exc, as_json)

    async def me(request: Request) -> Response:
        name = cookie_name(s, s.cookie_name)
        value = read_cookie(request.scope["headers"], name.encode())
        try:
            session = None if value is None else await gate.sessions.verify(value)
        except SSOGateError as exc:
            return error_response(exc, True)
        if session is None:
            return json_response({"code": "unauthorized", "message": "no SSO session"}, 401)
        return json_response(session.to_dict())

    sso_routes = [
        Route("/sso/authorize", authorize, methods=["GET"]),
        Route("/sso/oidc/{connection_id}/callback", oidc_callback, methods=["GET"]),
        Route("/sso/logout", logout, methods=["POST"]),
        Route("/sso/me", me, methods=["GET"]),
        *saml_routes(gate),
        *scim_routes(gate),
        Mount("/api", app=Router(routes=api_routes(gate), default=not_found)),
        Mount("/portal", app=Router(routes=portal_routes(gate), default=not_found)),
    ]
    return _Guarded(
        Router(
            routes=[Mount(s.prefix, app=Router(routes=sso_routes, default=not_found))],
            default=not_found,
        )
    )


async def _resolve_connection(
    gate: SSOGate, connection: str | None, organization: str | None, email: str | None
) -> str:
    given = [x for x in (connection, organization, email) if x]
    if len(given) != 1:
        raise ValidationError(
            "give exactly one of connection, organization or email", code="invalid_request"
        )
    if connection:
        conn = await gate.connections.get_cached(connection)
        return conn.id
    if organization:
        page = await gate.connections.list(
            organization_id=organization, state="active", limit=1, order="asc"
        )
        if not page.data:
            raise NotFoundError(
                f"organization {organization!r} has no active SSO connection", code="no_connection"
            )
        return str(page.data[0].id)
    assert email is not None
    decision = await gate.routing.for_email(email)
    if decision is None:
        raise ValidationError("email is not a valid email address", field="email")
    if decision.connection_id is None:
        raise NotFoundError(
            f"no organization with an active SSO connection owns {decision.domain}",
            code="no_connection",
        )
    return decision.connection_id


def _check_same_origin(request: Request, origin: str) -> None:
    """CSRF defence for state-changing browser POSTs: Origin (or Referer) must be ours."""
    got = request.headers.get("origin")
    if got is None:
        referer = request.headers.get("referer")
        if referer is not None and (referer == origin or referer.startswith(origin + "/")):
            return
        if request.headers.get("sec-fetch-site") == "same-origin":
            return
        raise PermissionDeniedError("cross-site request refused (no Origin header)", code="csrf")
    if got != origin:
        raise PermissionDeniedError(f"cross-site request refused (Origin {got})", code="csrf")
