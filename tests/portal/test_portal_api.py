"""Portal links and domain verification through the management API and the CLI."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from sso_gate.cli import cli
from tests.conftest import ADMIN_KEY
from tests.portal.conftest import BASE, PortalEnv

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_create_link_and_use_it(penv: PortalEnv) -> None:
    async with penv.client() as client:
        r = await client.post(
            "/sso-gate/api/portal/links",
            json={"organization_id": penv.org.id, "intent": "domain_verification"},
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["object"] == "portal_link" and body["intent"] == "domain_verification"
        opened = await client.get(body["link"].replace(BASE, ""))
        assert opened.status_code == 303
        r = await client.post(
            "/sso-gate/api/portal/generate_link",
            json={"organization": penv.org.id, "intent": "sso"},
            headers=AUTH,
        )
        assert r.status_code == 200 and r.json()["link"].startswith(BASE + "/sso-gate/portal/l/")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"organization_id": "org_nope", "intent": "sso"}, 404, None),
        ({"intent": "sso"}, 422, "organization_id"),
        ({"organization_id": "ORG", "intent": "admin"}, 422, "intent"),
        ({"organization_id": "ORG", "intent": "sso", "return_url": "ftp://x"}, 422, "return_url"),
        ({"organization_id": "ORG", "intent": "sso", "extra": 1}, 422, "extra"),
    ],
)
async def test_bad_link_requests(
    penv: PortalEnv, body: dict[str, object], status: int, field: str | None
) -> None:
    body = {k: (penv.org.id if v == "ORG" else v) for k, v in body.items()}
    async with penv.client() as client:
        r = await client.post("/sso-gate/api/portal/links", json=body, headers=AUTH)
        assert r.status_code == status, r.text
        if field:
            assert r.json()["field"] == field
        assert (await client.post("/sso-gate/api/portal/links", json=body)).status_code == 401


async def test_domain_verification_api(penv: PortalEnv) -> None:
    base = f"/sso-gate/api/organizations/{penv.org.id}"
    async with penv.client() as client:
        r = await client.post(
            f"{base}/domain_verifications", json={"domain": "acme.test"}, headers=AUTH
        )
        assert r.status_code == 201, r.text
        record = r.json()["verification_txt_record"]
        assert r.json()["state"] == "pending" and record.startswith("sso-gate-verification=")
        r = await client.post(f"{base}/domain_verifications/acme.test/verify", headers=AUTH)
        assert r.status_code == 200 and r.json()["state"] == "failed"
        penv.dns.records["acme.test"] = [record]
        r = await client.post(f"{base}/domain_verifications/acme.test/verify", headers=AUTH)
        assert r.json()["state"] == "verified"
        r = await client.put(
            f"{base}/domain_verification_policy",
            json={"require_verified_domains": True},
            headers=AUTH,
        )
        assert r.status_code == 200 and r.json()["require_verified_domains"] is True
        r = await client.put(
            f"{base}/domain_verification_policy",
            json={"require_verified_domains": "yes"},
            headers=AUTH,
        )
        assert r.status_code == 422
        r = await client.post(f"{base}/domain_verifications/nope.test/verify", headers=AUTH)
        assert r.status_code == 404
        r = await client.post(
            f"{base}/domain_verifications", json={"domain": "gmail.com"}, headers=AUTH
        )
        assert r.status_code == 422
        spec = (await client.get("/sso-gate/api/openapi.json", headers=AUTH)).json()
        assert "/portal/links" in spec["paths"]
        assert "/organizations/{id}/domain_verifications/{domain}/verify" in spec["paths"]


def test_cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", "cli-test-key-0123456789")
    monkeypatch.setenv("SSO_GATE_BASE_URL", "https://app.example.com")
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", database_url)
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    r = runner.invoke(cli, ["org", "create", "--name", "Acme"])
    assert r.exit_code == 0, r.output
    org_id = json.loads(r.stdout)["id"]
    r = runner.invoke(cli, ["portal-link", "--org", org_id, "--intent", "sso"])
    assert r.exit_code == 0, r.output
    link = json.loads(r.stdout)["link"]
    assert link.startswith("https://app.example.com/sso-gate/portal/l/")
    assert "works once" in r.stderr
    r = runner.invoke(cli, ["portal-link", "--org", "org_nope", "--intent", "sso"])
    assert r.exit_code == 1 and r.stderr.startswith("error: ")
    r = runner.invoke(cli, ["domain", "add", "--org", org_id, "acme.test"])
    assert r.exit_code == 0 and "sso-gate-verification=" in r.stderr
    r = runner.invoke(cli, ["domain", "require-verified", "--org", org_id])
    assert r.exit_code == 0 and json.loads(r.stdout)["require_verified_domains"] is True


async def test_the_api_client_is_not_a_portal_session(penv: PortalEnv) -> None:
    async with penv.client() as client:
        r = await client.get("/sso-gate/portal/domains", headers=AUTH)
        assert r.status_code == 401
    assert isinstance(client, httpx.AsyncClient)
