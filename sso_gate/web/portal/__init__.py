"""The admin portal for the customer's IT admin, served at ``{prefix}/portal``.

Server-rendered (Jinja2), no front-end build, every essential path works without JavaScript
(JavaScript only adds copy buttons). Pages: launch (``/l/{token}``: redeems a one-time link),
home, SSO setup, directory sync, domains, audit logs, log streams — each only for the intent of
the session. See ``_base.py`` for sessions, CSRF and security headers.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sso_gate.exceptions import SSOGateError
from sso_gate.web.portal._base import INTENT_PAGES, Portal, PortalPage, guarded
from sso_gate.web.portal.audit import audit_routes
from sso_gate.web.portal.dsync import dsync_routes
from sso_gate.web.portal.log_streams import log_stream_routes
from sso_gate.web.portal.sso import sso_routes

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["portal_routes"]

_STATIC = {
    "portal.css": "text/css; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
}


def portal_routes(gate: SSOGate) -> list[BaseRoute]:
    portal = Portal(gate)
    s = gate.settings
    assets = {
        name: resources.files("sso_gate.web.portal").joinpath("static", name).read_bytes()
        for name in _STATIC
    }
    theme = f":root {{ --accent: {s.portal_accent_color}; }}\n".encode()

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return Response(b"not found", 404, media_type="text/plain")
        return Response(
            assets[name],
            media_type=_STATIC[name],
            headers={"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"},
        )

    async def theme_css(request: Request) -> Response:
        return Response(theme, media_type="text/css; charset=utf-8")

    async def launch(request: Request) -> Response:
        """``GET /portal/l/{token}``: use the one-time link, start the session, go to its page."""
        try:
            session, cookie = await gate.portal.redeem(request.path_params["token"])
        except SSOGateError as exc:
            return portal.error(request, PortalPage(410, "This link cannot be used", exc.message))
        path, _ = INTENT_PAGES[session.intents[0]]
        response = RedirectResponse(portal.base + path, status_code=303)
        secure = "; Secure" if s.is_https else ""
        max_age = s.portal_session_lifetime
        response.raw_headers.append(
            (
                b"set-cookie",
                f"{portal.cookie}={cookie}; Path=/; Max-Age={max_age}; HttpOnly; "
                f"SameSite=Lax{secure}".encode(),
            )
        )
        return portal._finish(response, request, None)

    async def home(request: Request) -> Response:
        session = await portal.session(request, None)
        if len(session.intents) == 1:
            return portal.redirect(request, INTENT_PAGES[session.intents[0]][0], session)
        return portal.render(request, "home.html", session, title="Setup")

    async def sign_out(request: Request) -> Response:
        session = await portal.session(request, None)
        await portal.form(request, session)
        value = request.cookies.get(portal.cookie)
        if value:
            await gate.portal.end(value)
        target = session.return_url or portal.base + "/signed-out"
        response = RedirectResponse(target, status_code=303)
        response.raw_headers.append(
            (b"set-cookie", f"{portal.cookie}=; Path=/; Max-Age=0; HttpOnly".encode())
        )
        return portal._finish(response, request, None)

    async def signed_out(request: Request) -> Response:
        return portal.render(
            request,
            "error.html",
            None,
            title="Signed out",
            message="You have signed out of the setup portal. You can close this tab.",
        )

    # -- domains -------------------------------------------------------------------------------

    async def domains_page(
        request: Request, *, form_error: str = "", form_domain: str = "", status: int = 200
    ) -> Response:
        session = await portal.session(request, "domain_verification")
        org = await gate.organizations.get(session.organization_id)
        return portal.render(
            request,
            "domains.html",
            session,
            status=status,
            title="Domains",
            organization=org,
            domains=org.domains,
            form_error=form_error,
            form_domain=form_domain,
        )

    async def domains(request: Request) -> Response:
        if request.method == "GET":
            return await domains_page(request)
        session = await portal.session(request, "domain_verification")
        data = await portal.form(request, session)
        domain = data.get("domain", "").strip()
        try:
            added = await gate.domains.add(session.organization_id, domain)
        except SSOGateError as exc:
            return await domains_page(
                request, form_error=exc.message, form_domain=domain, status=422
            )
        return portal.redirect(request, "/domains", session, done=f"Added {added.domain}")

    async def verify_domain(request: Request) -> Response:
        session = await portal.session(request, "domain_verification")
        data = await portal.form(request, session)
        result = await gate.domains.verify(session.organization_id, data.get("domain", ""))
        message = (
            f"{result.domain} is verified"
            if result.state == "verified"
            else f"{result.domain} could not be verified yet"
        )
        return portal.redirect(request, "/domains", session, done=message)

    async def domain_policy(request: Request) -> Response:
        session = await portal.session(request, "domain_verification")
        data = await portal.form(request, session)
        required = data.get("required") == "true"
        await gate.domains.set_require_verified(session.organization_id, required)
        return portal.redirect(request, "/domains", session, done="Routing policy saved")

    routes: list[BaseRoute] = [
        Route("/static/{name}", static, methods=["GET"]),
        Route("/theme.css", theme_css, methods=["GET"]),
        Route("/l/{token}", guarded(portal, launch), methods=["GET"]),
        Route("/", guarded(portal, home), methods=["GET"]),
        Route("/sign-out", guarded(portal, sign_out), methods=["POST"]),
        Route("/signed-out", guarded(portal, signed_out), methods=["GET"]),
        Route("/domains", guarded(portal, domains), methods=["GET", "POST"]),
        Route("/domains/verify", guarded(portal, verify_domain), methods=["POST"]),
        Route("/domains/policy", guarded(portal, domain_policy), methods=["POST"]),
        *dsync_routes(portal),
        *audit_routes(portal),
        *log_stream_routes(portal),
        *sso_routes(portal),
    ]
    return routes
