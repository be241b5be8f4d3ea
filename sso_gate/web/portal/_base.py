"""What every admin-portal page shares: the portal session, CSRF, security headers, rendering.

* **Session**: the ``sso_gate_portal`` cookie (``__Host-`` on https; HttpOnly, SameSite=Lax)
  names a server-side portal session scoped to one organization and intent; or the app's
  ``@gate.portal_access`` hook vouches for its own admin (embedded portal).
* **CSRF**: every form carries a token; for a link session it is an HMAC of the session id, for
  an embedded session an HMAC of a random double-submit cookie. A POST without the right token,
  or from another origin, is refused (403) before anything changes.
* **Headers**: ``Content-Security-Policy`` (no inline script or style; ``frame-ancestors`` from
  ``SSO_GATE_PORTAL_FRAME_ANCESTORS``, default ``'none'``), ``X-Content-Type-Options``,
  ``Referrer-Policy: same-origin`` (nothing leaks to other sites; ``no-referrer`` would make
  Chromium send ``Origin: null`` on form posts and defeat the origin check — a real-browser test
  caught it), ``Cache-Control: no-store``. The one-time link's token is never in a page URL:
  redeeming it answers with a redirect.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sso_gate._crypto import derive_key
from sso_gate._time import isoformat
from sso_gate.exceptions import SSOGateError
from sso_gate.services.audit import set_actor
from sso_gate.services.portal import PortalSession
from sso_gate.web.responses import cookie_name

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["Portal", "PortalPage", "INTENT_PAGES"]

#: intent -> (path under /portal, navigation label)
INTENT_PAGES: dict[str, tuple[str, str]] = {
    "sso": ("/sso", "Single sign-on"),
    "dsync": ("/dsync", "Directory sync"),
    "domain_verification": ("/domains", "Domains"),
    "audit_logs": ("/audit-logs", "Audit logs"),
    "log_streams": ("/log-streams", "Log streams"),
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("sso_gate.web.portal", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["iso"] = lambda d: isoformat(d) if d else ""


class PortalPage(Exception):
    """Raised by a handler to answer with a portal error page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class Portal:
    """Shared helpers of the portal routes (one per gate)."""

    def __init__(self, gate: SSOGate) -> None:
        self.gate = gate
        s = gate.settings
        self.settings = s
        self.cookie = cookie_name(s, "sso_gate_portal")
        self.csrf_cookie = cookie_name(s, "sso_gate_portal_csrf")
        self.base = s.prefix + "/portal"
        self._csrf_key = derive_key(s.secret_keys[0], "sso_gate.portal.csrf.v1")
        self._origin = s.base_origin
        self.csp = (
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; "
            f"form-action 'self'; base-uri 'none'; frame-ancestors {s.portal_frame_ancestors}"
        )

    # -- session -------------------------------------------------------------------------------

    async def session(self, request: Request, intent: str | None) -> PortalSession:
        """The caller's portal session, allowed ``intent`` (None: any); else PortalPage."""
        session: PortalSession | None = None
        value = request.cookies.get(self.cookie)
        if value:
            session = await self.gate.portal.session(value)
        if session is None and self.gate.portal_access_hook is not None:
            granted = self.gate.portal_access_hook(request)
            if inspect.isawaitable(granted):
                granted = await granted
            if granted:
                org_id, intents = granted
                session = await self.gate.portal.embedded(org_id, tuple(intents))
        if session is None:
            raise PortalPage(
                401,
                "Your portal session has ended",
                "Ask your contact at the application for a new setup link.",
            )
        if intent is not None and not session.allows(intent):
            raise PortalPage(
                403,
                "Not part of this setup link",
                "This link was issued for another part of the setup.",
            )
        set_actor(
            {
                "type": "portal_session" if not session.embedded else "app_admin",
                "id": session.id,
                "name": f"IT admin of {session.organization_name}",
            }
        )
        return session

    # -- CSRF ----------------------------------------------------------------------------------

    def csrf_token(self, request: Request, session: PortalSession) -> str:
        basis = session.id
        if session.embedded:
            basis = request.cookies.get(self.csrf_cookie) or self._new_csrf(request)
        return hmac.new(self._csrf_key, basis.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _new_csrf(request: Request) -> str:
        """The double-submit value set with this response (embedded sessions, first visit)."""
        if not getattr(request.state, "new_csrf", None):
            request.state.new_csrf = secrets.token_hex(32)
        return str(request.state.new_csrf)

    async def form(self, request: Request, session: PortalSession) -> dict[str, str]:
        """The POSTed form after the origin and CSRF checks (403 PortalPage otherwise)."""
        origin = request.headers.get("origin")
        if origin is not None and origin != self._origin:
            raise PortalPage(403, "Request refused", "The form was sent from another site.")
        form = await request.form()
        data = {k: v for k, v in form.items() if isinstance(v, str)}
        token = data.pop("csrf", "")
        if session.embedded and not request.cookies.get(self.csrf_cookie):
            raise PortalPage(403, "Request refused", "The form has expired; reload the page.")
        if not hmac.compare_digest(token.encode(), self.csrf_token(request, session).encode()):
            raise PortalPage(403, "Request refused", "The form has expired; reload the page.")
        return data

    # -- responses -----------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        return {
            "content-security-policy": self.csp,
            "x-content-type-options": "nosniff",
            "referrer-policy": "same-origin",
            "cache-control": "no-store",
            "x-frame-options": "DENY" if self.settings.portal_frame_ancestors == "'none'" else "",
        }

    def _finish(
        self, response: Response, request: Request, session: PortalSession | None
    ) -> Response:
        for key, value in self.headers().items():
            if value:
                response.headers[key] = value
        new_csrf = getattr(request.state, "new_csrf", None)
        if new_csrf:
            secure = "; Secure" if self.settings.is_https else ""
            cookie = f"{self.csrf_cookie}={new_csrf}; Path=/; HttpOnly; SameSite=Strict{secure}"
            response.raw_headers.append((b"set-cookie", cookie.encode()))
        return response

    def render(
        self,
        request: Request,
        template: str,
        session: PortalSession | None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        s = self.settings
        nav = []
        if session is not None:
            nav = [
                {
                    "href": self.base + path,
                    "label": label,
                    "current": request.url.path.startswith(self.base + path),
                }
                for intent, (path, label) in INTENT_PAGES.items()
                if session.allows(intent)
            ]
        body = _env.get_template(template).render(
            product=s.portal_product_name,
            logo_url=s.portal_logo_url,
            base=self.base,
            static=self.base + "/static",
            session=session,
            nav=nav,
            csrf=self.csrf_token(request, session) if session is not None else "",
            flash=request.query_params.get("done", ""),
            **context,
        )
        return self._finish(HTMLResponse(body, status_code=status), request, session)

    def redirect(
        self, request: Request, path: str, session: PortalSession | None, done: str = ""
    ) -> Response:
        target = self.base + path + (f"?done={done}" if done else "")
        return self._finish(RedirectResponse(target, status_code=303), request, session)

    def error(
        self, request: Request, page: PortalPage, session: PortalSession | None = None
    ) -> Response:
        return self.render(
            request,
            "error.html",
            session,
            status=page.status,
            title=page.title,
            message=page.message,
        )


Handler = Callable[[Request], Awaitable[Response]]


def same_site_url(value: str, base_origin: str) -> bool:
    parts = urlsplit(value)
    return f"{parts.scheme}://{parts.netloc}" == base_origin


def guarded(portal: Portal, fn: Handler) -> Handler:
    """Turn PortalPage and gate errors into portal pages (never a stack trace)."""

    async def handler(request: Request) -> Response:
        try:
            return await fn(request)
        except PortalPage as page:
            return portal.error(request, page)
        except SSOGateError as exc:
            return portal.error(
                request,
                PortalPage(
                    exc.http_status if exc.http_status < 500 else 503,
                    "Something went wrong",
                    exc.message,
                ),
            )

    return handler
