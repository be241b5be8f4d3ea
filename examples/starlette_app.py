"""An existing Starlette app with its own password login, and SSO added by sso_gate.

The app's password login is unchanged. What SSO adds: the lines under "Adding SSO", the SSO
user read from ``request.scope["sso_gate"]`` in ``/dashboard``, and ``@requires_sso`` on
``/admin``. Users of organizations that require SSO are sent to their identity provider when
they submit the login form; everyone else keeps signing in with a password.

Run it::

    export SSO_GATE_SECRET_KEYS=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    export SSO_GATE_BASE_URL=http://127.0.0.1:8000 SSO_GATE_ENVIRONMENT=development
    uvicorn examples.starlette_app:app --port 8000

then add an organization and its IdP (redirect URI: printed by ``create-oidc``)::

    sso-gate org create --name Acme --domain acme.test --policy required
    sso-gate connection create-oidc --org org_… --issuer https://idp… --client-id …
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sso_gate import SSOGate, requires_sso

# The app's own users (a real app has a database and password hashes).
USERS = {"bob@example.com": "correct horse battery staple"}


def page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>Example</title>{body}", status_code)


async def home(request: Request) -> Response:
    return page(
        "<h1>Example app</h1><a href='/dashboard'>Dashboard</a> · <a href='/admin'>Admin</a>"
    )


async def login_form(request: Request) -> Response:
    # No `action`: the form posts back to this URL, so `?next=` reaches the gate.
    return page(
        "<h1>Sign in</h1><form method='post'>"
        "<input name='email' id='email' type='email' placeholder='Email' required> "
        "<input name='password' id='password' type='password' placeholder='Password'> "
        "<button id='submit'>Sign in</button></form>"
    )


async def login(request: Request) -> Response:
    # Only password users get here: the gate answers SSO users' posts itself.
    form = await request.form()
    email, password = str(form.get("email", "")).lower(), str(form.get("password", ""))
    expected = USERS.get(email)
    if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
        return page("<p id='error'>Wrong email or password.</p>", 401)
    request.session["user"] = email
    return RedirectResponse("/dashboard", status_code=303)


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


async def dashboard(request: Request) -> Response:
    profile = request.scope["sso_gate"].profile  # set by the gate: None without an SSO session
    if profile is not None:
        who, how, sign_out = profile.email, "SSO", f"{gate.settings.prefix}/sso/logout"
    elif "user" in request.session:
        who, how, sign_out = request.session["user"], "password", "/logout"
    else:
        return RedirectResponse("/login?next=/dashboard", status_code=303)
    return page(
        f"<h1>Dashboard</h1><p id='user'>Signed in as {html.escape(who)} with {how}</p>"
        f"<form method='post' action='{sign_out}'><button id='logout'>Sign out</button></form>"
    )


@requires_sso(groups="Admins")  # SSO users in the IdP group "Admins" only
async def admin(request: Request) -> Response:
    profile = request.scope["sso_gate"].profile
    return page(f"<h1>Admin</h1><p id='user'>Hello {html.escape(profile.email)}</p>")


# ---- Adding SSO ---------------------------------------------------------------------------

gate = SSOGate.from_env()  # reads SSO_GATE_* environment variables


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await gate.migrate()  # or run `sso-gate migrate` before deploying
    yield
    await gate.aclose()


app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/dashboard", dashboard),
        Route("/admin", admin),
    ],
    middleware=[
        Middleware(
            SessionMiddleware, secret_key=os.environ.get("APP_SECRET_KEY", secrets.token_hex(32))
        )
    ],
    lifespan=lifespan,
)
app = gate.wrap(app)
