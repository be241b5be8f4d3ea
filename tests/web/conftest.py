"""A wrapped app + fake IdP + org/connection, for web-level flow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sso_gate import Settings, SSOGate
from sso_gate.models import Connection, Organization
from tests.conftest import make_settings
from tests.fakes.idp import FakeIdP

BASE = "http://app.test"


async def _login(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"app_login": True, "body": body.decode("latin-1")})


async def _home(request: Request) -> Response:
    ctx = request.scope.get("sso_gate")
    email = ctx.profile.email if ctx is not None and ctx.profile else None
    return JSONResponse({"home": True, "sso_user": email})


def inner_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", _home),
            Route("/login", _login, methods=["GET", "POST"]),
            Route("/dashboard", lambda r: PlainTextResponse("dash")),
        ]
    )


@dataclass
class Env:
    gate: SSOGate
    idp: FakeIdP
    org: Organization
    connection: Connection
    client: httpx.AsyncClient
    settings: Settings

    async def start(self, email: str = "alice@acme.test", **query: str) -> str:
        """Start SSO through the gate; returns the IdP authorization URL."""
        r = await self.client.get("/sso-gate/sso/authorize", params={"email": email, **query})
        assert r.status_code == 303, r.text
        return r.headers["location"]

    def callback_url(self, code: str, state: str, **extra: str) -> str:
        from urllib.parse import urlencode

        params = {"code": code, "state": state, "iss": self.idp.issuer, **extra}
        params = {k: v for k, v in params.items() if v is not None}
        return f"/sso-gate/sso/oidc/{self.connection.id}/callback?{urlencode(params)}"

    async def login(self, email: str = "alice@acme.test") -> httpx.Response:
        url = await self.start(email)
        code, params = self.idp.accept(url)
        return await self.client.get(self.callback_url(code, params["state"]))


def qs(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def make_env(database_url: str, **settings: Any) -> Env:
    idp = FakeIdP()
    s = make_settings(database_url, **settings)
    gate = SSOGate(s, http_client=idp.client())
    await gate.migrate()
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    conn = await gate.connections.create_oidc(
        org.id, issuer=idp.issuer, client_id=idp.client_id, client_secret=idp.client_secret
    )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())), base_url=BASE
    )
    return Env(gate, idp, org, conn, client, s)


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    e = await make_env(database_url)
    yield e
    await e.client.aclose()
    await e.gate.aclose()
