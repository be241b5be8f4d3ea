"""An existing FastAPI app with its own password login, and SSO added by sso_gate.

The same app as ``starlette_app.py``, the FastAPI way: the gate is created from ``SSO_GATE_*``
variables, migrates in the lifespan and is installed with ``gate.install(app)``; ``/dashboard``
reads the SSO user from ``request.scope["sso_gate"]`` and ``/admin`` depends on
``RequireSSO(groups="Admins")``. Run it like ``starlette_app.py``::

    uvicorn examples.fastapi_app:app --port 8000
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from sso_gate import Profile, RequireSSO, SSOGate

# The app's own users (a real app has a database and password hashes).
USERS = {"bob@example.com": "correct horse battery staple"}

gate = SSOGate.from_env()  # reads SSO_GATE_* environment variables


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await gate.migrate()  # or run `sso-gate migrate` before deploying
    yield
    await gate.aclose()


app = FastAPI(lifespan=lifespan)
app.add_middleware(
    SessionMiddleware, secret_key=os.environ.get("APP_SECRET_KEY", secrets.token_hex(32))
)


def page(body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>Example</title>{body}", status_code)


@app.get("/")
async def home() -> Response:
    return page(
        "<h1>Example app</h1><a href='/dashboard'>Dashboard</a> · <a href='/admin'>Admin</a>"
    )


@app.get("/login")
async def login_form() -> Response:
    # No `action`: the form posts back to this URL, so `?next=` reaches the gate.
    return page(
        "<h1>Sign in</h1><form method='post'>"
        "<input name='email' id='email' type='email' placeholder='Email' required> "
        "<input name='password' id='password' type='password' placeholder='Password'> "
        "<button id='submit'>Sign in</button></form>"
    )


@app.post("/login")
async def login(
    request: Request, email: Annotated[str, Form()], password: Annotated[str, Form()] = ""
) -> Response:
    # Only password users get here: the gate answers SSO users' posts itself.
    expected = USERS.get(email.lower())
    if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
        return page("<p id='error'>Wrong email or password.</p>", 401)
    request.session["user"] = email.lower()
    return RedirectResponse("/dashboard", status_code=303)


@app.post("/logout")
async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@app.get("/dashboard")
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


@app.get("/admin")
async def admin(profile: Annotated[Profile, Depends(RequireSSO(groups="Admins"))]) -> Response:
    return page(f"<h1>Admin</h1><p id='user'>Hello {html.escape(profile.email)}</p>")


gate.install(app)  # last, so the gate is the outermost middleware; its routes: /sso-gate/…
