"""The example app behind the gate, against the real ``oidc-provider``, over real HTTP.

One ``httpx.AsyncClient`` plays the browser (one cookie jar for the app and the provider, which
share 127.0.0.1); ``drive_login`` fills the provider's login form. See ``conftest.py`` for the
stacks (SQLite; PostgreSQL; Redis as the one-time store).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest

from ..peers.oidc_provider import drive_login
from .conftest import Stack

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ALICE = "alice.smith@acme.test"
BOB = {"email": "bob@example.com", "password": "correct horse battery staple"}
JSON = {"accept": "application/json"}


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        yield client


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    q = query(url)
    for key, value in changes.items():
        if value is None:
            q.pop(key, None)
        else:
            q[key] = value
    return urlunsplit(parts._replace(query=urlencode(q)))


def session_cookie_header(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("sso_gate_session="):
            return header
    return None


async def start_sso(
    client: httpx.AsyncClient, stack: Stack, email: str, next_path: str = "/dashboard"
) -> str:
    """Submit the app's login form with an SSO email; return the provider URL it redirects to."""
    r = await client.post(
        stack.url(f"/login?next={next_path}"), data={"email": email, "password": ""}
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(stack.issuer + "/"), location  # the gate answered, not the app
    assert query(location)["login_hint"] == email
    return location


async def sso_callback(client: httpx.AsyncClient, stack: Stack, email: str, conn: str) -> str:
    """Log ``email`` in at the provider; return the callback URL (not yet requested)."""
    callback = await drive_login(client, await start_sso(client, stack, email), email)
    assert callback.startswith(stack.redirect_uris[conn] + "?"), callback
    return callback


# -- the main flow, on each backend ----------------------------------------------------------


async def test_sso_login_flow(any_stack: Stack, browser: httpx.AsyncClient) -> None:
    stack = any_stack
    authorization_url = await start_sso(browser, stack, ALICE)
    state = query(authorization_url)["state"]
    redis_key = f"sso_gate:oidc_state:{state}"
    if "SSO_GATE_REDIS_URL" in stack.env:  # the flow state lives in Redis, not in the process
        import redis.asyncio as aioredis

        redis = aioredis.Redis.from_url(stack.env["SSO_GATE_REDIS_URL"])
        assert await redis.exists(redis_key) == 1

    callback = await drive_login(browser, authorization_url, ALICE)
    assert callback.startswith(stack.redirect_uris[stack.acme_conn] + "?")
    params = query(callback)
    assert params["state"] == state and params["code"]
    assert params["iss"] == stack.issuer  # RFC 9207, sent by the real provider

    r = await browser.get(callback)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"
    cookie = session_cookie_header(r)
    assert cookie is not None
    flags = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Path=/" in flags
    assert "Secure" not in flags  # plain http base URL
    if "SSO_GATE_REDIS_URL" in stack.env:
        assert await redis.exists(redis_key) == 0  # consumed
        await redis.aclose()

    dashboard = await browser.get(stack.url("/dashboard"))
    assert dashboard.status_code == 200
    assert f"Signed in as {ALICE} with SSO" in dashboard.text

    me = await browser.get(stack.url("/sso-gate/sso/me"))
    assert me.status_code == 200, me.text
    profile = me.json()["profile"]
    assert profile["email"] == ALICE
    assert profile["first_name"] == "Alice" and profile["last_name"] == "Smith"
    assert profile["groups"] == ["Engineering"]
    assert profile["organization_id"] == stack.acme_org
    assert profile["connection_id"] == stack.acme_conn
    assert profile["connection_type"] == "GenericOIDC"
    assert profile["idp_id"].startswith("user-")
    assert profile["raw_attributes"]["iss"] == stack.issuer

    # Not in the provider's "Admins" group: /admin refuses the SSO session.
    admin = await browser.get(stack.url("/admin"), headers=JSON)
    assert admin.status_code == 403

    # Another instance on the same database (and Redis) sees the session.
    other = stack.gate()
    try:
        session = await other.sessions.verify(browser.cookies["sso_gate_session"])
    finally:
        await other.aclose()
    assert session is not None and session.profile.email == ALICE


async def test_admins_group_from_the_provider_opens_admin(
    oidc_stack: Stack, browser: httpx.AsyncClient
) -> None:
    stack = oidc_stack
    # Anonymous browsers are sent to the app's login page, which remembers where to go back.
    r = await browser.get(stack.url("/admin"), headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fadmin"

    email = "admin.jones@acme.test"
    authorization_url = await start_sso(browser, stack, email, next_path="/admin")
    callback = await drive_login(browser, authorization_url, email)
    r = await browser.get(callback)
    assert r.status_code == 303 and r.headers["location"] == "/admin"
    admin = await browser.get(stack.url("/admin"))
    assert admin.status_code == 200
    assert f"Hello {email}" in admin.text
    me = (await browser.get(stack.url("/sso-gate/sso/me"))).json()
    assert me["profile"]["groups"] == ["Engineering", "Admins"]


async def test_password_login_passes_through(oidc_stack: Stack, browser: httpx.AsyncClient) -> None:
    stack = oidc_stack
    r = await browser.post(stack.url("/login?next=/admin"), data=BOB)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/dashboard"  # the app's own answer
    assert "session" in browser.cookies and "sso_gate_session" not in browser.cookies
    dashboard = await browser.get(stack.url("/dashboard"))
    assert "Signed in as bob@example.com with password" in dashboard.text
    assert (await browser.get(stack.url("/sso-gate/sso/me"))).status_code == 401
    assert (await browser.get(stack.url("/admin"), headers=JSON)).status_code == 401

    # The app checked the password from the replayed body: a wrong one is refused by the app.
    async with httpx.AsyncClient(timeout=10) as other:
        r = await other.post(stack.url("/login"), data={**BOB, "password": "wrong"})
    assert r.status_code == 401 and "Wrong email or password" in r.text


# -- protocol details against the real provider (SQLite stack) --------------------------------


async def test_client_secret_post(oidc_stack: Stack, browser: httpx.AsyncClient) -> None:
    """Initech's provider client only accepts client_secret_post at the token endpoint."""
    stack = oidc_stack
    email = "carol.white@initech.test"
    callback = await sso_callback(browser, stack, email, stack.initech_conn)
    r = await browser.get(callback)
    assert r.status_code == 303, r.text
    me = (await browser.get(stack.url("/sso-gate/sso/me"))).json()
    assert me["profile"]["email"] == email
    assert me["profile"]["connection_id"] == stack.initech_conn
    assert me["profile"]["organization_id"] == stack.initech_org
    assert me["profile"]["last_name"] == "White"


async def test_iss_parameter_is_checked(oidc_stack: Stack, browser: httpx.AsyncClient) -> None:
    """The provider advertises RFC 9207 and sends ``iss``: a changed or missing one is refused;
    the genuine one is accepted."""
    stack = oidc_stack
    for iss, code in (
        ("http://127.0.0.1:1", "invalid_iss_parameter"),
        (None, "missing_iss_parameter"),
    ):
        callback = await sso_callback(browser, stack, ALICE, stack.acme_conn)
        assert query(callback)["iss"] == stack.issuer
        r = await browser.get(with_query(callback, iss=iss), headers=JSON)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == code
        assert session_cookie_header(r) is None

    callback = await sso_callback(browser, stack, ALICE, stack.acme_conn)
    r = await browser.get(callback)
    assert r.status_code == 303 and session_cookie_header(r) is not None


async def test_callback_replay_is_refused(oidc_stack: Stack, browser: httpx.AsyncClient) -> None:
    stack = oidc_stack
    callback = await sso_callback(browser, stack, ALICE, stack.acme_conn)
    first = await browser.get(callback)
    assert first.status_code == 303 and session_cookie_header(first) is not None

    # The same browser again, and a fresh one (say, the URL leaked from a log).
    again = await browser.get(callback, headers=JSON)
    async with httpx.AsyncClient(timeout=10) as attacker:
        stolen = await attacker.get(callback, headers=JSON)
        me = await attacker.get(stack.url("/sso-gate/sso/me"))
    for r in (again, stolen):
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_state"
        assert session_cookie_header(r) is None
    assert me.status_code == 401


async def abort_at_provider(client: httpx.AsyncClient, stack: Stack, url: str) -> str:
    """Follow the provider to its login page, press Cancel; return the callback URL."""
    aborted = False
    for _ in range(10):
        r = await client.get(url)
        if r.is_redirect:
            url = urljoin(str(r.url), r.headers["location"])
            if not url.startswith(stack.issuer + "/"):
                return url
            continue
        assert r.status_code == 200 and "/interaction/" in str(r.url) and not aborted, r.text
        url, aborted = str(r.url).rstrip("/") + "/abort", True
    raise AssertionError("the provider never redirected back")


async def test_access_denied_shows_a_clear_error(
    oidc_stack: Stack, browser: httpx.AsyncClient
) -> None:
    stack = oidc_stack
    authorization_url = await start_sso(browser, stack, ALICE)
    callback = await abort_at_provider(browser, stack, authorization_url)
    assert callback.startswith(stack.redirect_uris[stack.acme_conn] + "?")
    assert query(callback)["error"] == "access_denied"

    r = await browser.get(callback, headers={"accept": "text/html"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/html")
    assert "Sign-in failed" in r.text
    assert "access_denied" in r.text
    assert '<code id="code">idp_error</code>' in r.text
    assert 'href="/login"' in r.text  # a way to try again
    assert session_cookie_header(r) is None
    assert (await browser.get(stack.url("/sso-gate/sso/me"))).status_code == 401
