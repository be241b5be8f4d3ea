"""Session cookies: flags, tampering, expiry, key rotation, revocation, logout, /sso/me."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from sso_gate import SSOGate
from sso_gate._time import utcnow
from sso_gate.models import Profile
from sso_gate.settings import Secret
from tests.conftest import make_settings
from tests.web.conftest import Env, inner_app, make_env

pytestmark = pytest.mark.anyio


def profile(org_id: str = "org_1", email: str = "alice@acme.test") -> Profile:
    return Profile(
        id="prof_1",
        idp_id="sub-1",
        email=email,
        first_name="A",
        last_name="B",
        organization_id=org_id,
        connection_id="conn_1",
        connection_type="GenericOIDC",
        groups=("Admins",),
    )


async def me(env: Env) -> int:
    return (await env.client.get("/sso-gate/sso/me")).status_code


async def test_tampered_cookie_refused(env: Env) -> None:
    await env.login()
    value = env.client.cookies["sso_gate_session"]
    env.client.cookies.set(
        "sso_gate_session",
        value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1],
        domain="app.test",
    )
    assert await me(env) == 401
    token, _, rest = value.partition(".")
    first = "x" if token[0] != "x" else "y"  # always a different first character
    env.client.cookies.set("sso_gate_session", first + token[1:] + "." + rest, domain="app.test")
    assert await me(env) == 401
    assert (await env.client.get("/")).json()["sso_user"] is None


async def test_wrongly_keyed_cookie_refused(database_url: str) -> None:
    e1 = await make_env(database_url)
    await e1.login()
    cookie = e1.client.cookies["sso_gate_session"]
    other = SSOGate(make_settings(database_url))
    assert await other.sessions.verify(cookie) is None
    await other.aclose()
    await e1.client.aclose()
    await e1.gate.aclose()


async def test_key_rotation_old_cookies_still_verify(database_url: str) -> None:
    old = Secret("old-key-0123456789abcdef")
    g1 = SSOGate(make_settings(database_url, secret_keys=(old,)))
    await g1.migrate()
    cookie, session = await g1.sessions.create(profile())
    rotated = SSOGate(
        make_settings(database_url, secret_keys=(Secret("new-key-0123456789abcdef"), old))
    )
    assert (await rotated.sessions.verify(cookie)).id == session.id  # type: ignore[union-attr]
    new_cookie, _ = await rotated.sessions.create(profile())
    assert await g1.sessions.verify(new_cookie) is None  # signed by the new (first) key
    dropped = SSOGate(
        make_settings(database_url, secret_keys=(Secret("new-key-0123456789abcdef"),))
    )
    assert await dropped.sessions.verify(cookie) is None
    for g in (g1, rotated, dropped):
        await g.aclose()


async def test_expired_session_refused(database_url: str) -> None:
    now = [utcnow()]
    g = SSOGate(
        make_settings(database_url, session_lifetime=60, session_cache_ttl=0.0001),
        clock=lambda: now[0],
    )
    await g.migrate()
    cookie, _ = await g.sessions.create(profile())
    assert await g.sessions.verify(cookie) is not None
    now[0] += timedelta(seconds=61)
    g.sessions._cache.clear()
    assert await g.sessions.verify(cookie) is None
    await g.aclose()


async def test_revoke_user_kills_sessions_immediately(env: Env) -> None:
    await env.login()
    assert await me(env) == 200
    ids = await env.gate.sessions.revoke_user(env.org.id, email="ALICE@acme.test")
    assert len(ids) == 1
    assert await me(env) == 401
    assert (await env.client.get("/")).json()["sso_user"] is None


async def test_revocation_from_another_instance_applies_within_cache_ttl(database_url: str) -> None:
    s = make_settings(database_url, session_cache_ttl=0.05)
    a, b = SSOGate(s), SSOGate(s)
    await a.migrate()
    cookie, session = await a.sessions.create(profile())
    assert await a.sessions.verify(cookie) is not None
    await b.sessions.revoke(session.id)
    import asyncio

    await asyncio.sleep(0.06)
    assert await a.sessions.verify(cookie) is None
    await a.aclose()
    await b.aclose()


async def test_logout_revokes_and_clears(env: Env) -> None:
    await env.login()
    cookie = env.client.cookies["sso_gate_session"]
    r = await env.client.post("/sso-gate/sso/logout", headers={"origin": "http://app.test"})
    assert r.status_code == 303 and "sso_gate_session=;" in r.headers["set-cookie"]
    assert "Max-Age=0" in r.headers["set-cookie"]
    env.client.cookies.set("sso_gate_session", cookie, domain="app.test")
    assert await me(env) == 401  # the old cookie is dead server-side too


async def test_logout_csrf_refused(env: Env) -> None:
    await env.login()
    r = await env.client.post("/sso-gate/sso/logout", headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "csrf" in r.text
    r = await env.client.post("/sso-gate/sso/logout")
    assert r.status_code == 403
    r = await env.client.post("/sso-gate/sso/logout", headers={"referer": "http://app.test/x"})
    assert r.status_code == 303
    r = await env.client.get("/sso-gate/sso/logout")
    assert r.status_code == 405


async def test_https_cookie_flags(database_url: str) -> None:
    e = await make_env(database_url, base_url="https://app.test")
    e.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=e.gate.wrap(inner_app())), base_url="https://app.test"
    )
    url = (await e.client.get("/sso-gate/sso/authorize?email=alice@acme.test")).headers["location"]
    flow = e.client.cookies.jar
    assert any(c.name == "__Host-sso_gate_flow" and c.secure for c in flow)
    code, p = e.idp.accept(url)
    r = await e.client.get(e.callback_url(code, p["state"]))
    sc = r.headers["set-cookie"]
    assert sc.startswith("__Host-sso_gate_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="):
        assert flag in sc
    assert "Domain" not in sc
    assert (await e.client.get("/sso-gate/sso/me")).status_code == 200
    await e.client.aclose()
    await e.gate.aclose()


async def test_session_secrets_not_stored_in_clear(env: Env) -> None:
    import sqlalchemy as sa

    from sso_gate.store.tables import connections, sessions

    await env.login()
    token = env.client.cookies["sso_gate_session"].split(".")[0]
    async with env.gate._rt.read() as conn:
        srows = (await conn.execute(sa.select(sessions))).all()
        crows = (await conn.execute(sa.select(connections))).all()
    assert token not in repr(srows)
    assert env.idp.client_secret not in repr(crows)
    assert env.idp.client_secret not in repr(env.connection)
    assert env.idp.client_secret not in repr(env.connection.to_dict())


async def test_secrets_not_in_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    await env.login()
    text = caplog.text
    assert env.idp.client_secret not in text
    assert env.client.cookies["sso_gate_session"] not in text
