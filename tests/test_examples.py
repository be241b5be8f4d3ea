"""The documented examples (``examples/*.py``) work as shown, in-process.

Each example is imported fresh with ``SSO_GATE_*`` variables pointing at a temporary SQLite file;
requests go through ``httpx.ASGITransport``. The only stand-in is Acme's identity provider,
whose discovery document is served by ``httpx.MockTransport`` through the gate's injectable HTTP
client (the end-to-end tests use the real ``oidc-provider``).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from sso_gate import Organization, Profile, SSOGate

pytestmark = pytest.mark.anyio

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
BASE_URL = "http://app.example"
ISSUER = "https://idp.acme.test"
BOB = {"email": "bob@example.com", "password": "correct horse battery staple"}
_counter = itertools.count()


def _discovery(request: httpx.Request) -> httpx.Response:
    if request.url == httpx.URL(ISSUER + "/.well-known/openid-configuration"):
        return httpx.Response(
            200,
            json={
                "issuer": ISSUER,
                "authorization_endpoint": ISSUER + "/authorize",
                "token_endpoint": ISSUER + "/token",
                "jwks_uri": ISSUER + "/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            },
        )
    return httpx.Response(404)


def load_example(name: str) -> ModuleType:
    """Import ``examples/{name}.py`` as a new module (a new gate and app every time)."""
    spec = importlib.util.spec_from_file_location(
        f"_example_{name}_{next(_counter)}", EXAMPLES_DIR / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Example:
    name: str
    module: ModuleType
    gate: SSOGate
    client: httpx.AsyncClient


@pytest.fixture(params=["starlette_app", "fastapi_app"])
async def example(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> AsyncIterator[Example]:
    if request.param == "fastapi_app":
        pytest.importorskip("fastapi")
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", secrets.token_urlsafe(32))
    monkeypatch.setenv("SSO_GATE_BASE_URL", BASE_URL)
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", database_url)
    monkeypatch.setenv("SSO_GATE_ENVIRONMENT", "development")
    for name in ("SSO_GATE_REDIS_URL", "SSO_GATE_PREFIX", "SSO_GATE_LOGIN_PATH"):
        monkeypatch.delenv(name, raising=False)

    # The example calls `SSOGate.from_env()`; hand it an HTTP client that reaches the fake IdP.
    idp_http = httpx.AsyncClient(transport=httpx.MockTransport(_discovery))
    from_env = SSOGate.from_env

    def from_env_with_idp(cls: type[SSOGate], /, environ: Any = None, **kwargs: Any) -> SSOGate:
        return from_env(environ, http_client=idp_http, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(SSOGate, "from_env", classmethod(from_env_with_idp))
        module = load_example(request.param)
    gate = module.gate
    assert isinstance(gate, SSOGate)
    assert gate.settings.base_url == BASE_URL
    await gate.migrate()  # the example's lifespan does this under uvicorn
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=module.app), base_url=BASE_URL
        ) as client:
            yield Example(request.param, module, gate, client)
    finally:
        await gate.aclose()
        await idp_http.aclose()


async def _acme(gate: SSOGate) -> tuple[Organization, str]:
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    conn = await gate.connections.create_oidc(
        org.id, issuer=ISSUER, client_id="acme-client", client_secret="acme-secret-0123456789"
    )
    return org, conn.id


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- password login: untouched -------------------------------------------------------------


async def test_password_login_reaches_the_app(example: Example) -> None:
    c = example.client
    form = await c.get("/login")
    assert form.status_code == 200
    assert "name='email'" in form.text and "name='password'" in form.text

    r = await c.post("/login", data=BOB)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"
    assert "session" in c.cookies  # the app's own cookie
    assert "sso_gate_session" not in c.cookies

    dash = await c.get("/dashboard")
    assert dash.status_code == 200
    assert "Signed in as bob@example.com with password" in dash.text
    me = await c.get("/sso-gate/sso/me")
    assert me.status_code == 401  # a password login is not an SSO session


def _chunks(body: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_login_body_reaches_the_app_intact(example: Example) -> None:
    """The gate reads the body to find the email, then replays it byte for byte: a body sent in
    several ASGI messages, with percent-encoding and extra fields, still logs in; a wrong
    password is still refused by the app itself."""
    await _acme(example.gate)  # an SSO org exists; bob's domain is not one of its domains
    c = example.client
    body = urlencode({**BOB, "remember": "yes & more=ü"}).encode()

    async def stream() -> AsyncIterator[bytes]:
        for chunk in _chunks(body, 7):
            yield chunk

    r = await c.post(
        "/login",
        content=stream(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"

    wrong = await c.post("/login", data={**BOB, "password": BOB["password"] + "!"})
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text

    # An email of an SSO-required domain without an active connection is not intercepted.
    other = await example.gate.organizations.create(
        "Globex", domains=["globex.test"], sso_policy="required"
    )
    assert other.id
    r = await c.post("/login", data={"email": "carol@globex.test", "password": "x"})
    assert r.status_code == 401 and "Wrong email or password" in r.text


# -- SSO-required emails: intercepted ------------------------------------------------------


async def test_sso_required_form_login_is_sent_to_the_idp(example: Example) -> None:
    org, conn_id = await _acme(example.gate)
    c = example.client
    r = await c.post(
        "/login?next=/dashboard", data={"email": "Alice@Acme.test", "password": "ignored"}
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(ISSUER + "/authorize?")
    q = _query(location)
    assert q["client_id"] == "acme-client"
    assert q["redirect_uri"] == example.gate.connections.redirect_uri(conn_id)
    assert q["redirect_uri"] == f"{BASE_URL}/sso-gate/sso/oidc/{conn_id}/callback"
    assert q["response_type"] == "code" and q["code_challenge_method"] == "S256"
    assert q["login_hint"] == "Alice@Acme.test"
    assert q["state"] and q["nonce"]
    assert "sso_gate_flow" in c.cookies  # binds the flow to this browser
    assert "session" not in c.cookies  # the app never saw the request


@pytest.mark.parametrize("how", ["json", "xhr"])
async def test_sso_required_api_login_gets_409(example: Example, how: str) -> None:
    org, _ = await _acme(example.gate)
    c = example.client
    creds = {"email": "alice@acme.test", "password": "ignored"}
    if how == "json":
        r = await c.post("/login?next=/admin", json=creds)
    else:
        r = await c.post(
            "/login?next=/admin", data=creds, headers={"X-Requested-With": "XMLHttpRequest"}
        )
    assert r.status_code == 409, r.text
    data = r.json()
    assert data["error"] == "sso_required"
    assert data["organization_id"] == org.id
    url = data["authorization_url"]
    assert url.startswith(f"{BASE_URL}/sso-gate/sso/authorize?")
    assert _query(url) == {"email": "alice@acme.test", "return_to": "/admin"}
    assert "session" not in c.cookies

    # Following the URL starts the sign-in at the IdP.
    start = await c.get(url)
    assert start.status_code == 303
    assert start.headers["location"].startswith(ISSUER + "/authorize?")


# -- /admin: SSO users of the Admins group only --------------------------------------------


async def _sso_cookie(gate: SSOGate, org: Organization, conn_id: str, groups: list[str]) -> str:
    profile = Profile(
        id="prof_" + secrets.token_hex(8),
        idp_id="sub-" + secrets.token_hex(4),
        email="alice@acme.test",
        first_name="Alice",
        last_name="Anderson",
        organization_id=org.id,
        connection_id=conn_id,
        connection_type="GenericOIDC",
        groups=tuple(groups),
    )
    cookie, _ = await gate.sessions.create(profile)
    return cookie


async def test_admin_needs_an_sso_session_in_the_admins_group(example: Example) -> None:
    org, conn_id = await _acme(example.gate)
    c = example.client
    html = {"accept": "text/html"}
    api = {"accept": "application/json"}

    # Anonymous.
    r = await c.get("/admin", headers=api)
    assert r.status_code == 401
    r = await c.get("/admin", headers=html)
    if example.name == "starlette_app":  # @requires_sso sends browsers to sign in
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Fadmin"
    else:  # Depends(RequireSSO(...)) raises HTTPException(401)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "SSO"

    # A password session is not an SSO session.
    assert (await c.post("/login", data=BOB)).status_code == 303
    assert (await c.get("/admin", headers=api)).status_code == 401

    # SSO, but not in the Admins group.
    c.cookies.set("sso_gate_session", await _sso_cookie(example.gate, org, conn_id, ["Sales"]))
    r = await c.get("/admin", headers=api)
    assert r.status_code == 403
    assert "group" in json.dumps(r.json())
    dash = await c.get("/dashboard")
    assert "Signed in as alice@acme.test with SSO" in dash.text  # SSO wins over the password

    # SSO and in the Admins group.
    c.cookies.set(
        "sso_gate_session", await _sso_cookie(example.gate, org, conn_id, ["Sales", "Admins"])
    )
    r = await c.get("/admin", headers=html)
    assert r.status_code == 200
    assert "Hello alice@acme.test" in r.text
    me = await c.get("/sso-gate/sso/me")
    assert me.status_code == 200
    assert me.json()["profile"]["groups"] == ["Sales", "Admins"]
