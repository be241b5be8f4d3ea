"""``sso-gate demo``: an example app with its own password login, wrapped by the gate.

SQLite, the development IdP mounted at ``/dev-idp``, organizations *Acme* (``acme.test``, SSO
required, OIDC to the dev IdP), *Initech* (``initech.test``, SSO required, SAML to the dev IdP)
and *Globex* (``globex.test``, no SSO).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from sso_gate.devidp import DevIdP, DevUser
from sso_gate.exceptions import ConfigurationError
from sso_gate.gate import SSOGate
from sso_gate.models import SSOPolicy
from sso_gate.settings import Secret, Settings
from sso_gate.web.context import get_context

__all__ = ["DemoApp", "build_demo", "PASSWORD_USERS"]

# The app's own password users (the app existed before the gate).
PASSWORD_USERS = {
    "bob@example.com": "password",
    "carol@globex.test": "password",
    "alice@acme.test": "password",  # SSO is required for acme.test: the gate intercepts this one
    "erin@initech.test": "password",  # Initech requires SSO over SAML
}
CLIENT_ID = "sso-gate-demo"


@dataclass
class DemoApp:
    app: Any
    gate: SSOGate
    idp: DevIdP
    admin_api_key: str
    idp_client_secret: str


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}}
input,button{{font-size:1rem;padding:.3rem}}</style></head><body>{body}</body></html>"""
    )


def build_demo(
    base_url: str = "http://localhost:8000",
    database_url: str = "sqlite:///./sso_gate_demo.db",
    http_client: httpx.AsyncClient | None = None,
    settings: Settings | None = None,
) -> DemoApp:
    """Build the demo app (seed with :func:`seed`). ``http_client`` lets tests stay in-process.

    ``settings`` (e.g. ``Settings.from_env()``, as the load test does) replaces the demo's own:
    ``base_url`` and ``database_url`` are then taken from it, and it must say
    ``environment=development`` and set an admin API key."""
    if settings is None:
        settings = Settings(
            secret_keys=(Secret(secrets.token_urlsafe(32)),),
            base_url=base_url,
            database_url=database_url,
            environment="development",
            admin_api_key=Secret(secrets.token_urlsafe(24)),
        )
    if settings.admin_api_key is None:
        raise ConfigurationError("the demo needs an admin API key (SSO_GATE_ADMIN_API_KEY)")
    admin_key = settings.admin_api_key.reveal()
    base_url = settings.base_url
    app_key = secrets.token_bytes(32)
    client_secret = secrets.token_urlsafe(24)
    idp = DevIdP(
        settings,
        issuer=f"{base_url}/dev-idp",
        clients={CLIENT_ID: (client_secret, settings.gate_url("/sso/oidc/"))},
        users=[
            DevUser("alice@acme.test", "Alice", "Anderson", ("Engineering", "Admins")),
            DevUser("dave@acme.test", "Dave", "Dunn", ("Sales",)),
            DevUser("erin@initech.test", "Erin", "Evans", ("Finance",)),
        ],
        saml_acs_prefix=settings.gate_url("/sso/saml/"),
    )

    def sign(email: str) -> str:
        mac = hmac.new(app_key, email.encode(), hashlib.sha256).hexdigest()
        return f"{email}|{mac}"

    def app_user(request: Request) -> str | None:
        raw = request.cookies.get("demo_user", "")
        email, _, mac = raw.rpartition("|")
        if email and hmac.compare_digest(sign(email), raw):
            return email
        return None

    async def home(request: Request) -> Response:
        ctx = get_context(request.scope)
        profile = ctx.profile if ctx else None
        who = app_user(request)
        if profile is not None:
            status = (
                f"<p id='who'>Signed in with SSO as <b>{html.escape(profile.email)}</b> "
                f"({html.escape(profile.first_name or '')} "
                f"{html.escape(profile.last_name or '')}), "
                f"groups: {html.escape(', '.join(profile.groups))}</p>"
                f"<form method='post' action='{settings.prefix}/sso/logout'>"
                "<button id='logout'>Sign out</button></form>"
            )
        elif who is not None:
            status = (
                f"<p id='who'>Signed in with a password as <b>{html.escape(who)}</b></p>"
                "<form method='post' action='/logout'><button id='logout'>Sign out</button></form>"
            )
        else:
            status = "<p id='who'>Not signed in. <a href='/login'>Sign in</a></p>"
        return _page(
            "Demo app",
            f"<h1>Demo app</h1>{status}<p><a href='/dashboard'>Dashboard</a> (any signed-in user)"
            "</p>",
        )

    async def login_form(request: Request) -> Response:
        error = request.query_params.get("error")
        msg = f"<p id='error' style='color:#b00'>{html.escape(error)}</p>" if error else ""
        users = "".join(
            f"<li><code>{html.escape(e)}</code> / password</li>" for e in PASSWORD_USERS
        )
        return _page(
            "Sign in",
            f"""<h1>Sign in</h1>{msg}<form method="post" action="/login">
<p><label>Email <input type="email" name="email" id="email" required></label></p>
<p><label>Password <input type="password" name="password" id="password"></label></p>
<button type="submit" id="submit">Sign in</button></form>
<p>Password users of the app: <ul>{users}</ul>
<code>@acme.test</code> (OIDC) and <code>@initech.test</code> (SAML) users are sent to their
organization's IdP (the dev IdP) instead.</p>""",
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        email = str(form.get("email", "")).strip().lower()
        password = str(form.get("password", ""))
        expected = PASSWORD_USERS.get(email)
        if expected is None or not hmac.compare_digest(expected, password):
            return RedirectResponse("/login?error=Wrong+email+or+password", status_code=303)
        resp = RedirectResponse("/dashboard", status_code=303)
        resp.set_cookie("demo_user", sign(email), httponly=True, samesite="lax")
        return resp

    async def logout(request: Request) -> Response:
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie("demo_user")
        return resp

    async def dashboard(request: Request) -> Response:
        ctx = get_context(request.scope)
        profile = ctx.profile if ctx else None
        who = profile.email if profile else app_user(request)
        if who is None:
            return RedirectResponse("/login", status_code=303)
        how = "SSO" if profile else "password"
        return _page(
            "Dashboard",
            f"<h1>Dashboard</h1><p id='dashboard-user'>Hello {html.escape(who)} "
            f"(signed in with {how})</p><p><a href='/'>Home</a></p>",
        )

    inner = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/dashboard", dashboard),
            Mount("/dev-idp", app=idp.app),
        ]
    )
    gate = SSOGate(settings, http_client=http_client)
    return DemoApp(gate.wrap(inner), gate, idp, admin_key, client_secret)


async def _fresh_org(gate: SSOGate, name: str, domain: str, policy: SSOPolicy) -> str:
    """The organization owning ``domain`` (created if missing) with no connections left: the dev
    IdP has new keys and secrets every run, so old connections are replaced."""
    found = (await gate.organizations.list(domain=domain)).data
    if not found:
        org = await gate.organizations.create(name, domains=[domain], sso_policy=policy)
        return org.id
    for c in (await gate.connections.list(organization_id=found[0].id, limit=100)).data:
        await gate.connections.delete(c.id)
    return str(found[0].id)


async def seed(demo: DemoApp) -> None:
    """Migrate and create Acme (OIDC), Initech (SAML) and Globex (no SSO), idempotently."""
    gate = demo.gate
    await gate.migrate()
    await gate.connections.create_oidc(
        await _fresh_org(gate, "Acme", "acme.test", "required"),
        issuer=demo.idp.issuer,
        client_id=CLIENT_ID,
        client_secret=demo.idp_client_secret,
        name="Acme dev IdP",
    )
    await gate.connections.create_saml(
        await _fresh_org(gate, "Initech", "initech.test", "required"),
        metadata_xml=demo.idp.saml.metadata(),
        name="Initech dev IdP (SAML)",
        connection_type="SimpleSamlPhpSAML",
        sign_requests=True,
    )
    await _fresh_org(gate, "Globex", "globex.test", "optional")
