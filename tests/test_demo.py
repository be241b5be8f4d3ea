"""`sso-gate demo`: the seeded app works end to end in-process (dev IdP, SQLite)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sso_gate import ConfigurationError
from sso_gate.demo import build_demo, seed
from sso_gate.devidp import DevIdP
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


async def test_demo_sso_and_password_logins(database_url: str) -> None:
    demo = build_demo(base_url="http://localhost:8000", database_url=database_url)
    transport = httpx.ASGITransport(app=demo.app)
    demo.gate._rt.http = httpx.AsyncClient(transport=transport)  # back-channel stays in-process
    await seed(demo)
    await seed(demo)  # idempotent
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
        # SSO-required domain: to the dev IdP, pick the user, back with a session
        r = await c.post("/login", data={"email": "alice@acme.test", "password": "password"})
        assert r.status_code == 303 and "/dev-idp/authorize" in r.headers["location"]
        page = await c.get(r.headers["location"])
        assert "sso_gate development IdP" in page.text
        form = dict(httpx.QueryParams(r.headers["location"].split("?", 1)[1]))
        r = await c.post("/dev-idp/authorize", data={**form, "email": "alice@acme.test"})
        assert r.status_code == 303 and "/sso-gate/sso/oidc/" in r.headers["location"]
        r = await c.get(r.headers["location"])
        assert r.status_code == 303, r.text
        dash = await c.get("/dashboard")
        assert "alice@acme.test" in dash.text and "signed in with SSO" in dash.text
        me = (await c.get("/sso-gate/sso/me")).json()
        assert me["profile"]["groups"] == ["Engineering", "Admins"]
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
        r = await c.post("/login", data={"email": "bob@example.com", "password": "password"})
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        assert "signed in with password" in (await c.get("/dashboard")).text
        r = await c.post("/login", data={"email": "bob@example.com", "password": "wrong"})
        assert "error" in r.headers["location"]
        api = await c.get(
            "/sso-gate/api/organizations",
            headers={"Authorization": f"Bearer {demo.admin_api_key}"},
        )
        assert sorted(o["name"] for o in api.json()["data"]) == ["Acme", "Globex", "Initech"]
    await demo.gate._rt.http.aclose()
    await demo.gate.aclose()


def test_dev_idp_refuses_production(tmp_path: Path) -> None:
    s = make_settings(
        f"sqlite:///{tmp_path / 'x.db'}", environment="production", base_url="https://app.test"
    )
    with pytest.raises(ConfigurationError, match="development"):
        DevIdP(s, issuer="https://app.test/dev-idp", clients={})


async def test_demo_saml_login(database_url: str) -> None:
    demo = build_demo(base_url="http://localhost:8000", database_url=database_url)
    transport = httpx.ASGITransport(app=demo.app)
    demo.gate._rt.http = httpx.AsyncClient(transport=transport)
    await seed(demo)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as c:
        r = await c.post("/login", data={"email": "erin@initech.test", "password": "password"})
        assert r.status_code == 303 and "/dev-idp/saml/sso?SAMLRequest=" in r.headers["location"]
        assert "Signature=" in r.headers["location"]  # Initech's connection signs AuthnRequests
        page = await c.get(r.headers["location"])
        assert "development IdP" in page.text
        q = dict(httpx.QueryParams(r.headers["location"].split("?", 1)[1]))
        post = await c.post(
            "/dev-idp/saml/sso",
            data={
                "SAMLRequest": q["SAMLRequest"],
                "RelayState": q["RelayState"],
                "email": "erin@initech.test",
            },
        )
        saml_response = post.text.split('name="SAMLResponse" value="')[1].split('"')[0]
        relay = post.text.split('name="RelayState" value="')[1].split('"')[0]
        acs = post.text.split('action="')[1].split('"')[0].replace("http://localhost:8000", "")
        r = await c.post(acs, data={"SAMLResponse": saml_response, "RelayState": relay})
        assert r.status_code == 303, r.text
        r = await c.get(r.headers["location"])
        assert r.status_code == 303
        me = (await c.get("/sso-gate/sso/me")).json()
        assert me["profile"]["email"] == "erin@initech.test"
        assert me["profile"]["connection_type"] == "SimpleSamlPhpSAML"
        assert me["profile"]["groups"] == ["Finance"]
    await demo.gate._rt.http.aclose()
    await demo.gate.aclose()
