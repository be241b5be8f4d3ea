"""on_login hook, scope["sso_gate"], @requires_sso and RequireSSO: one predicate, two surfaces."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sso_gate import Profile, RequireSSO, check_access, requires_sso
from tests.web.conftest import Env, make_env

pytestmark = pytest.mark.anyio


def prof(**kw: object) -> Profile:
    base: dict[str, object] = dict(
        id="prof_1",
        idp_id="s",
        email="a@acme.test",
        first_name=None,
        last_name=None,
        organization_id="org_A",
        connection_id="conn_1",
        connection_type="GenericOIDC",
        groups=("Engineering",),
        role="member",
        roles=("member", "billing"),
    )
    base.update(kw)
    return Profile(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({}, 200),
        ({"org": "org_A"}, 200),
        ({"org": ["org_B", "org_A"]}, 200),
        ({"org": "org_B"}, 403),
        ({"groups": "Engineering"}, 200),
        ({"groups": ["Admins"]}, 403),
        ({"roles": "billing"}, 200),
        ({"roles": "member"}, 200),
        ({"roles": "owner"}, 403),
        ({"org": "org_A", "groups": "Admins"}, 403),
    ],
)
def test_check_access(kwargs: dict[str, object], status: int) -> None:
    assert check_access(prof(), **kwargs).status == status  # type: ignore[arg-type]
    assert check_access(None, **kwargs).status == 401  # type: ignore[arg-type]


def starlette_app() -> Starlette:
    @requires_sso()
    async def any_user(request: Request) -> Response:
        return PlainTextResponse(request.scope["sso_gate"].profile.email)

    @requires_sso(groups="Admins")
    def admins(request: Request) -> Response:  # sync endpoints work too
        return PlainTextResponse("admin area")

    @requires_sso(groups="Nobody")
    async def nobody(request: Request) -> Response:
        return PlainTextResponse("never")

    return Starlette(
        routes=[Route("/any", any_user), Route("/admin", admins), Route("/nobody", nobody)]
    )


async def test_requires_sso_decorator(database_url: str) -> None:
    env = await make_env(database_url)
    app = env.gate.wrap(starlette_app())
    env.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app.test"
    )
    r = await env.client.get("/any")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = await env.client.get("/any?x=1", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fany%3Fx%3D1"
    await env.login()
    assert (await env.client.get("/any")).text == "alice@acme.test"
    assert (await env.client.get("/admin")).text == "admin area"
    r = await env.client.get("/nobody", headers={"accept": "text/html"})
    assert r.status_code == 403
    await env.client.aclose()
    await env.gate.aclose()


async def test_require_sso_fastapi_dependency(database_url: str) -> None:
    env = await make_env(database_url)
    api = FastAPI()

    @api.get("/me")
    async def me(profile: Profile = Depends(RequireSSO())) -> dict[str, str]:
        return {"email": profile.email}

    @api.get("/admins")
    async def admins(profile: Profile = Depends(RequireSSO(groups=["Admins"]))) -> dict[str, str]:
        return {"ok": profile.email}

    @api.get("/soft")
    async def soft(
        profile: Profile | None = Depends(RequireSSO(org="org_other", auto_error=False)),
    ) -> dict[str, bool]:
        return {"allowed": profile is not None}

    env.gate.install(api)
    env.client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api), base_url="http://app.test"
    )
    r = await env.client.get("/me")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "SSO"
    await env.login()
    assert (await env.client.get("/me")).json() == {"email": "alice@acme.test"}
    assert (await env.client.get("/admins")).status_code == 200
    assert (await env.client.get("/soft")).json() == {"allowed": False}
    await env.client.aclose()
    await env.gate.aclose()


async def test_on_login_hook_can_answer(env: Env) -> None:
    seen: list[tuple[str, str]] = []

    @env.gate.on_login
    async def hook(profile: Profile, request: Request) -> Response:
        seen.append((profile.email, request.url.path))
        resp = JSONResponse({"welcome": profile.first_name})
        resp.set_cookie("app_session", "app-" + profile.id)
        return resp

    r = await env.login()
    assert r.json() == {"welcome": "Alice"}
    cookies = r.headers.get_list("set-cookie")
    assert any(c.startswith("app_session=app-prof_") for c in cookies)
    assert any(c.startswith("sso_gate_session=") for c in cookies)
    assert seen[0][0] == "alice@acme.test" and seen[0][1].endswith("/callback")


async def test_on_login_hook_returning_none_keeps_default(env: Env) -> None:
    env.gate.on_login(lambda profile, request: None)
    r = await env.login()
    assert r.status_code == 303 and r.headers["location"] == "/"


async def test_idp_down_during_callback_is_clear(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    env.idp.down = True
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 502 and "idp_timeout" in r.text and "Traceback" not in r.text
    assert (await env.client.get("/sso-gate/sso/me")).status_code == 401
