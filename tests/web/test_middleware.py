"""The gate middleware: interception, byte-exact pass-through, limits, non-HTTP scopes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.web.conftest import Env, inner_app

pytestmark = pytest.mark.anyio


async def test_sso_domain_form_login_redirects_to_idp(env: Env) -> None:
    r = await env.client.post(
        "/login?next=/dashboard", data={"email": "Alice@ACME.test", "password": "x"}
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith(env.idp.issuer + "/authorize?")
    assert "sso_gate_flow=" in r.headers["set-cookie"]
    code, p = env.idp.accept(r.headers["location"])
    cb = await env.client.get(env.callback_url(code, p["state"]))
    assert cb.headers["location"] == "/dashboard"


async def test_sso_domain_json_login_gets_409(env: Env) -> None:
    r = await env.client.post("/login", json={"email": "alice@acme.test", "password": "x"})
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "sso_required" and body["organization_id"] == env.org.id
    assert body["authorization_url"].startswith("http://app.test/sso-gate/sso/authorize?email=")
    # XHR form posts are API calls too
    r = await env.client.post(
        "/login", data={"email": "alice@acme.test"}, headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (
            b"email=bob%40example.com&password=p%C3%A4ss&x=1&x=2",
            "application/x-www-form-urlencoded",
        ),
        (
            json.dumps({"email": "bob@example.com", "password": "hunter2"}).encode(),
            "application/json",
        ),
        (b"email=alice%40gmail.com&password=x", "application/x-www-form-urlencoded"),
        (b"username=alice&password=x", "application/x-www-form-urlencoded"),
        (b"<xml/>", "application/xml"),
        (b"", "application/x-www-form-urlencoded"),
    ],
)
async def test_other_logins_pass_through_byte_for_byte(env: Env, body: bytes, ctype: str) -> None:
    r = await env.client.post("/login", content=body, headers={"content-type": ctype})
    assert r.status_code == 200
    assert r.json() == {"app_login": True, "body": body.decode("latin-1")}


async def test_optional_policy_and_no_connection_pass_through(env: Env) -> None:
    await env.gate.organizations.create("Globex", domains=["globex.test"], sso_policy="optional")
    r = await env.client.post("/login", data={"email": "carol@globex.test"})
    assert r.json()["app_login"] is True
    # a required org without an active connection cannot lock its users out
    await env.gate.connections.deactivate(env.connection.id)
    r = await env.client.post("/login", data={"email": "alice@acme.test"})
    assert r.json()["app_login"] is True


async def test_multipart_login_intercepted_and_passed(env: Env) -> None:
    r = await env.client.post("/login", files={"email": (None, "alice@acme.test")})
    assert r.status_code == 303
    r = await env.client.post("/login", files={"email": (None, "bob@example.com")})
    assert r.status_code == 200 and "bob@example.com" in r.json()["body"]


async def test_chunked_body_replayed(env: Env) -> None:
    async def chunks() -> Any:
        yield b"email=bob%40exa"
        yield b"mple.com&password=1"

    r = await env.client.post(
        "/login", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.json()["body"] == "email=bob%40example.com&password=1"


async def test_huge_body_413(env: Env) -> None:
    big = b"email=bob%40example.com&pad=" + b"x" * (70 * 1024)
    r = await env.client.post(
        "/login", content=big, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413 and "payload_too_large" in r.text and "Traceback" not in r.text
    r = await env.client.post("/login", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b"{not json", "application/json"),
        (b"\xff\xfe=\xff", "application/x-www-form-urlencoded"),
        (b"[1, 2", "application/vnd.api+json"),
    ],
)
async def test_malformed_login_bodies_400(env: Env, body: bytes, ctype: str) -> None:
    r = await env.client.post("/login", content=body, headers={"content-type": ctype})
    assert r.status_code in (400, 422), r.text
    assert "malformed_body" in r.text and "Traceback" not in r.text


async def test_other_routes_untouched(env: Env) -> None:
    r = await env.client.get("/login")
    assert r.json()["app_login"] is True
    r = await env.client.get("/dashboard")
    assert r.text == "dash"
    r = await env.client.get("/sso-gate/nope")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_anonymous_requests_do_not_touch_the_database(env: Env) -> None:
    statements: list[str] = []
    engine = env.gate._rt.engine.sync_engine
    listener = lambda *a: statements.append(a[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        for _ in range(5):
            await env.client.get("/")
            await env.client.get("/dashboard")
        # a garbage session cookie is rejected by HMAC, before any query
        env.client.cookies.set("sso_gate_session", "garbage.value.sig", domain="app.test")
        await env.client.get("/")
        # repeated logins of a known domain hit the routing cache
        await env.client.post("/login", data={"email": "bob@example.com"})
        n = len(statements)
        await env.client.post("/login", data={"email": "bob@example.com"})
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert n <= 1 and len(statements) == n, statements


async def test_non_http_scopes_pass_through(env: Env) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        assert "sso_gate" not in scope

    wrapped = env.gate.wrap(app)

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        pass

    await wrapped({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    await wrapped({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    assert seen == ["lifespan", "websocket"]


async def test_install_on_starlette_app(database_url: str) -> None:
    from tests.web.conftest import make_env

    e = await make_env(database_url)
    app = inner_app()
    e.gate.install(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app.test"
    ) as c:
        r = await c.post("/login", data={"email": "alice@acme.test"})
        assert r.status_code == 303
        r = await c.get("/sso-gate/sso/me")
        assert r.status_code == 401
    await e.client.aclose()
    await e.gate.aclose()


async def test_unexpected_errors_are_a_plain_500(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(env.gate.sso, "complete_oidc", broken)
    r = await env.client.get(f"/sso-gate/sso/oidc/{env.connection.id}/callback?code=a&state=b")
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "secret internals" not in r.text and "Traceback" not in r.text


async def test_redis_down_is_a_clear_503(database_url: str) -> None:
    from tests.web.conftest import make_env

    e = await make_env(database_url, redis_url="redis://127.0.0.1:1/0")
    r = await e.client.post("/login", data={"email": "alice@acme.test"})
    assert r.status_code == 503 and "onetime_store_unavailable" in r.text
    await e.client.aclose()
    await e.gate.aclose()


async def test_odd_bodies_and_headers_are_4xx(env: Env) -> None:
    many = "&".join(f"f{i}=x" for i in range(1200)).encode()
    r = await env.client.post(
        "/login", content=many, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 422 and "malformed_body" in r.text
    r = await env.client.post(
        "/login",
        content=b"email=bob%40example.com",
        headers={"content-type": "application/x-www-form-urlencoded", "content-length": "23"},
    )
    assert r.status_code == 200


async def test_domain_with_newline_refused(env: Env) -> None:
    from sso_gate import ValidationError

    with pytest.raises(ValidationError):
        await env.gate.organizations.create("X", domains=["abc\n.com"])
    with pytest.raises(ValidationError):
        await env.gate.organizations.create("X", domains=["abc.com\n"[:-1] + "\n.x"])
    assert await env.gate.routing.for_email("a@abc\n.com") is None
