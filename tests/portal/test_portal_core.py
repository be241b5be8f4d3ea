"""Portal links, sessions, CSRF, headers, intent and organization scoping, domain verification."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sso_gate import ValidationError
from sso_gate.exceptions import NotFoundError
from tests.portal.conftest import BASE, PortalEnv

pytestmark = pytest.mark.anyio


async def test_link_is_single_use_and_sets_a_scoped_session(penv: PortalEnv) -> None:
    link = await penv.gate.portal.create_link(penv.org.id, "domain_verification")
    assert link.link.startswith(BASE + "/sso-gate/portal/l/")
    assert "l/" not in repr(link)
    async with penv.client() as client:
        r = await client.get(link.link.replace(BASE, ""))
        assert r.status_code == 303 and r.headers["location"] == "/sso-gate/portal/domains"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        page = await client.get("/sso-gate/portal/domains")
        assert page.status_code == 200 and "Acme" in page.text
    async with penv.client() as second:
        again = await second.get(link.link.replace(BASE, ""))
        assert again.status_code == 410 and "already used or has expired" in again.text
        assert (await second.get("/sso-gate/portal/domains")).status_code == 401


async def test_expired_link(penv: PortalEnv) -> None:
    link = await penv.gate.portal.create_link(penv.org.id, "sso")
    later = penv.gate._rt.clock() + timedelta(minutes=6)
    penv.gate._rt.clock = lambda: later  # type: ignore[method-assign]
    async with penv.client() as client:
        assert (await client.get(link.link.replace(BASE, ""))).status_code == 410


async def test_bad_link_requests(penv: PortalEnv) -> None:
    with pytest.raises(ValidationError):
        await penv.gate.portal.create_link(penv.org.id, "everything")
    with pytest.raises(ValidationError):
        await penv.gate.portal.create_link(penv.org.id, "sso", return_url="javascript:alert(1)")
    with pytest.raises(NotFoundError):
        await penv.gate.portal.create_link("org_nope", "sso")


async def test_security_headers(penv: PortalEnv) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "domain_verification")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_intent_scoping(penv: PortalEnv) -> None:
    async with penv.client() as client:
        link = await penv.gate.portal.create_link(penv.org.id, "sso")
        await client.get(link.link.replace(BASE, ""))
        r = await client.get("/sso-gate/portal/domains")
        assert r.status_code == 403 and "another part of the setup" in r.text


async def test_csrf_and_origin_are_checked(penv: PortalEnv) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "domain_verification")
        r = await client.post("/sso-gate/portal/domains", data={"domain": "acme.test"})
        assert r.status_code == 403
        r = await client.post(
            "/sso-gate/portal/domains", data={"domain": "acme.test", "csrf": "0" * 64}
        )
        assert r.status_code == 403
        r = await client.post(
            "/sso-gate/portal/domains",
            data={"domain": "acme.test", "csrf": penv.csrf(page)},
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403
        assert (await penv.gate.organizations.get(penv.org.id)).domains == ()


async def test_domain_verification_flow(penv: PortalEnv) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "domain_verification")
        r = await penv.post(client, "/domains", page, domain="Acme.TEST")
        assert r.status_code == 303
        page = await client.get(r.headers["location"])
        assert "Added acme.test" in page.text and 'data-state="pending"' in page.text
        (domain,) = (await penv.gate.organizations.get(penv.org.id)).domains
        assert domain.txt_record and domain.txt_record in page.text
        # no record yet -> failed with a plain reason
        r = await penv.post(client, "/domains/verify", page, domain="acme.test")
        page = await client.get(r.headers["location"])
        assert 'data-state="failed"' in page.text and "no TXT records at acme.test" in page.text
        # a wrong value is named
        penv.dns.records["acme.test"] = ["sso-gate-verification=wrong", "v=spf1 -all"]
        r = await penv.post(client, "/domains/verify", page, domain="acme.test")
        page = await client.get(r.headers["location"])
        assert "does not match" in page.text
        penv.dns.records["acme.test"] = ['"' + domain.txt_record + '"']
        r = await penv.post(client, "/domains/verify", page, domain="acme.test")
        page = await client.get(r.headers["location"])
        assert 'data-state="verified"' in page.text and "acme.test is verified" in page.text
    events = [
        e.event for e in (await penv.gate.events.list(organization_id=penv.org.id, limit=100)).data
    ]
    assert "organization_domain.verification_failed" in events
    assert events[-1] == "organization_domain.verified"
    audit = await penv.gate.audit.list(penv.org.id, actions=["organization_domain.verified"])
    assert audit.data[0].actor["type"] == "portal_session"


async def test_routing_can_require_verified_domains(penv: PortalEnv) -> None:
    gate = penv.gate
    await gate.domains.add(penv.org.id, "acme.test")
    decision = await gate.routing.for_domain("acme.test")
    assert decision.organization_id == penv.org.id
    async with penv.client() as client:
        page = await penv.open(client, "domain_verification")
        r = await penv.post(client, "/domains/policy", page, required="true")
        assert r.status_code == 303
    assert (await gate.organizations.get(penv.org.id)).require_verified_domains
    assert (await gate.routing.for_domain("acme.test")).organization_id is None
    penv.dns.records["acme.test"] = [
        (await gate.organizations.get(penv.org.id)).domains[0].txt_record or ""
    ]
    await gate.domains.verify(penv.org.id, "acme.test")
    assert (await gate.routing.for_domain("acme.test")).organization_id == penv.org.id


async def test_a_session_never_reaches_another_organization(penv: PortalEnv) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "domain_verification")
        assert "Globex" not in page.text and "globex.test" not in page.text
        # verifying another organization's domain through this session is impossible
        r = await penv.post(client, "/domains/verify", page, domain="globex.test")
        assert r.status_code == 404
        r = await penv.post(client, "/domains", page, domain="globex.test")
        assert r.status_code == 422 and "another organization" in r.text


async def test_sign_out_ends_the_session(penv: PortalEnv) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "domain_verification")
        r = await penv.post(client, "/sign-out", page)
        assert r.status_code == 303
        assert (await client.get("/sso-gate/portal/domains")).status_code == 401


async def test_embedded_portal_hook(penv: PortalEnv) -> None:
    @penv.gate.portal_access
    def admin(request: object) -> tuple[str, list[str]] | None:
        headers = getattr(request, "headers", {})
        return (penv.org.id, ["domain_verification"]) if headers.get("x-app-admin") else None

    async with penv.client() as client:
        assert (await client.get("/sso-gate/portal/domains")).status_code == 401
        client.headers["x-app-admin"] = "1"
        page = await client.get("/sso-gate/portal/domains")
        assert page.status_code == 200 and "Acme" in page.text
        r = await penv.post(client, "/domains", page, domain="acme.test")
        assert r.status_code == 303, r.text
        assert (await client.get("/sso-gate/portal/sso")).status_code in (403, 404)


async def test_portal_actions_are_audited(penv: PortalEnv) -> None:
    link = await penv.gate.portal.create_link(penv.org.id, "domain_verification")
    async with penv.client() as client:
        await client.get(link.link.replace(BASE, ""))
    actions = [e.action for e in (await penv.gate.audit.list(penv.org.id, limit=50)).data]
    assert actions[:2] == ["portal.link_used", "portal.link_created"]
