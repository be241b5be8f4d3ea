"""Portal directory setup: provider choice, creation with the token shown once, the SCIM base URL
working with that token, rotation with grace, the provisioning request log, counts, scoping,
CSRF and auditing."""

from __future__ import annotations

import re

import httpx
import pytest

from sso_gate.models import DIRECTORY_TYPES
from tests.portal.conftest import PortalEnv

pytestmark = pytest.mark.anyio

TOKEN = re.compile(r"scim_[A-Za-z0-9_-]{40,}")
PORTAL = "/sso-gate/portal"


async def create(
    penv: PortalEnv, client: httpx.AsyncClient, provider: str = "okta", name: str = ""
) -> tuple[str, str, httpx.Response]:
    """Create a directory through the portal: (directory id, token, the page that showed it)."""
    page = await client.get(f"{PORTAL}/dsync/new", params={"provider": provider})
    assert page.status_code == 200, page.text
    r = await penv.post(client, "/dsync", page, provider=provider, name=name)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    match = re.match(rf"{PORTAL}/dsync/(directory_\w+)\?reveal=[\w-]+$", location)
    assert match, location
    shown = await client.get(location)
    assert shown.status_code == 200
    tokens = set(TOKEN.findall(shown.text))
    assert len(tokens) == 1, tokens
    return match.group(1), tokens.pop(), shown


def scim(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "content-type": "application/scim+json"}


def user(name: str) -> dict[str, object]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": name, "primary": True}],
        "active": True,
    }


async def test_providers_map_to_directory_types_and_google_is_explained(penv: PortalEnv) -> None:
    from sso_gate.web.portal.dsync import PROVIDERS

    assert {p.type for p in PROVIDERS.values()} - {None} <= set(DIRECTORY_TYPES)
    async with penv.client() as client:
        page = await penv.open(client, "dsync")
        assert page.status_code == 200
        for label in ("Okta", "Microsoft Entra ID", "Google Workspace", "OneLogin", "JumpCloud"):
            assert label in page.text
        google = await client.get(f"{PORTAL}/dsync/new", params={"provider": "google"})
        assert google.status_code == 200
        assert "cannot push users" in google.text and 'action="/sso-gate/portal/dsync"' not in (
            google.text
        )
        assert "provider=generic" in google.text  # another route is suggested
        # a forged post for Google is refused with the explanation, nothing is created
        r = await penv.post(client, "/dsync", page, provider="google")
        assert r.status_code == 422 and "cannot send users over SCIM" in r.text
        r = await penv.post(client, "/dsync", page, provider="myspace")
        assert r.status_code == 422 and "Choose your identity provider" in r.text
        unknown = await client.get(f"{PORTAL}/dsync/new", params={"provider": "myspace"})
        assert unknown.status_code == 404
    assert (await penv.gate.directories.list(organization_id=penv.org.id)).data == ()


async def test_create_shows_the_token_once_and_it_works_for_scim(penv: PortalEnv) -> None:
    gate = penv.gate
    async with penv.client() as client:
        await penv.open(client, "dsync")
        directory_id, token, shown = await create(penv, client, "okta", name="Acme Okta")
        base_url = gate.directories.scim_base_url(directory_id)
        assert base_url in shown.text
        # Okta's own field names, in order, with the values to enter
        for wording in (
            "Provisioning → Integration",
            "SCIM connector base URL",
            "Unique identifier field for users",
            "userName",
            "Authentication Mode",
            "HTTP Header",
        ):
            assert wording in shown.text, wording
        # reloading the same URL, or opening the directory later: the token is gone
        again = await client.get(shown.url.raw_path.decode())
        assert again.status_code == 200 and token not in again.text
        assert "no longer shown" in again.text
        later = await client.get(f"{PORTAL}/dsync/{directory_id}")
        assert token not in later.text and token[:9] in later.text  # the hint only
        listing = await client.get(f"{PORTAL}/dsync")
        assert "Acme Okta" in listing.text and token not in listing.text
        # the SCIM base URL answers with the shown token, through the same app
        path = base_url.removeprefix("http://app.test")
        users = await client.get(f"{path}/Users", headers=scim(token))
        assert users.status_code == 200, users.text
        assert users.json()["totalResults"] == 0
    directory = await gate.directories.get(directory_id)
    assert directory.organization_id == penv.org.id
    assert directory.type == "okta scim v2.0" and directory.name == "Acme Okta"
    audit = await gate.audit.list(penv.org.id, actions=["dsync.activated"])
    assert audit.data[0].actor["type"] == "portal_session"


async def test_the_reveal_code_works_for_its_own_session_only(penv: PortalEnv) -> None:
    async with penv.client() as client:
        await penv.open(client, "dsync")
        page = await client.get(f"{PORTAL}/dsync/new", params={"provider": "entra"})
        r = await penv.post(client, "/dsync", page, provider="entra")
        location = r.headers["location"]
    async with penv.client() as other:
        await penv.open(other, "dsync")
        stolen = await other.get(location)
        assert stolen.status_code == 200 and not TOKEN.search(stolen.text)
    async with penv.client() as client2:
        await penv.open(client2, "dsync")
        bogus = await client2.get(location.split("?")[0] + "?reveal=" + "A" * 43)
        assert bogus.status_code == 200 and not TOKEN.search(bogus.text)


async def test_entra_steps_and_rotation_with_grace(penv: PortalEnv) -> None:
    gate = penv.gate
    async with penv.client() as client:
        await penv.open(client, "dsync")
        directory_id, old, shown = await create(penv, client, "entra")
        assert (await gate.directories.get(directory_id)).name == "Acme Microsoft Entra ID"
        for wording in ("Provisioning Mode", "Automatic", "Admin Credentials", "Tenant URL"):
            assert wording in shown.text
        assert "Secret Token" in shown.text
        r = await penv.post(client, f"/dsync/{directory_id}/rotate", shown)
        assert r.status_code == 303
        rotated = await client.get(r.headers["location"])
        tokens = set(TOKEN.findall(rotated.text))
        assert len(tokens) == 1 and old not in tokens
        new = tokens.pop()
        assert "new bearer token" in rotated.text and "24 hours" in rotated.text
        assert new not in (await client.get(r.headers["location"])).text
        path = gate.directories.scim_base_url(directory_id).removeprefix("http://app.test")
        # both work during the grace period
        assert (await client.get(f"{path}/Users", headers=scim(new))).status_code == 200
        assert (await client.get(f"{path}/Users", headers=scim(old))).status_code == 200
    audit = await gate.audit.list(penv.org.id, actions=["dsync.token.rotated"])
    assert audit.data[0].actor["type"] == "portal_session"
    assert audit.data[0].targets[0]["id"] == directory_id


async def test_recent_requests_and_counts(penv: PortalEnv) -> None:
    gate = penv.gate
    async with penv.client() as client:
        await penv.open(client, "dsync")
        directory_id, token, _ = await create(penv, client, "generic")
        path = gate.directories.scim_base_url(directory_id).removeprefix("http://app.test")
        created = await client.post(
            f"{path}/Users", json=user("ada@acme.test"), headers=scim(token)
        )
        assert created.status_code == 201, created.text
        group = await client.post(
            f"{path}/Groups",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineering",
                "members": [{"value": created.json()["id"]}],
            },
            headers=scim(token),
        )
        assert group.status_code == 201, group.text
        bad = await client.post(f"{path}/Users", json={"name": {}}, headers=scim(token))
        assert bad.status_code == 400
        error_detail = bad.json()["detail"]
        missing = await client.get(f"{path}/Users/nope", headers=scim(token))
        assert missing.status_code == 404
        # a wrong token is not logged (it could be anyone probing)
        assert (await client.get(f"{path}/Users", headers=scim("scim_x"))).status_code == 401

        page = await client.get(f"{PORTAL}/dsync/{directory_id}")
        table = page.text[page.text.index('<table id="requests">') :]
        table = table[table.index("<tbody>") : table.index("</tbody>")]
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        assert len(rows) == 4, rows
        # newest first: the 404, the 400 with its error, the group, the user
        assert "GET /Users/nope" in rows[0] and 'data-status="404"' in rows[0]
        assert "POST /Users" in rows[1] and 'data-status="400"' in rows[1]
        assert error_detail in rows[1].replace("&#39;", "'").replace("&#34;", '"')
        assert "Create group" in rows[2] and 'data-status="201"' in rows[2]
        assert "Create user" in rows[3] and 'data-status="201"' in rows[3]
        assert '<dd data-count="users">1</dd>' in page.text
        assert '<dd data-count="groups">1</dd>' in page.text
        listing = await client.get(f"{PORTAL}/dsync")
        assert '<dd data-count="users">1</dd>' in listing.text
    counts = await gate.directories.counts(directory_id)
    assert (counts.users, counts.groups) == (1, 1)
    recent = await gate.directories.recent_requests(directory_id, limit=2)
    assert [r.status for r in recent] == [404, 400]


async def test_another_organizations_directory_is_invisible(penv: PortalEnv) -> None:
    gate = penv.gate
    theirs, their_token = await gate.directories.create(penv.other.id, type="okta scim v2.0")
    async with penv.client() as client:
        page = await penv.open(client, "dsync")
        assert theirs.id not in page.text and "Globex" not in page.text
        assert (await client.get(f"{PORTAL}/dsync/{theirs.id}")).status_code == 404
        assert (await client.get(f"{PORTAL}/dsync/directory_nope")).status_code == 404
        r = await penv.post(client, f"/dsync/{theirs.id}/rotate", page)
        assert r.status_code == 404
    # their token still works: nothing was rotated
    assert (await gate.directories.authenticate(theirs.id, f"Bearer {their_token}")).id == theirs.id


async def test_csrf_and_intent_are_enforced(penv: PortalEnv) -> None:
    gate = penv.gate
    async with penv.client() as client:
        page = await penv.open(client, "dsync")
        r = await client.post(f"{PORTAL}/dsync", data={"provider": "okta"})
        assert r.status_code == 403
        r = await client.post(f"{PORTAL}/dsync", data={"provider": "okta", "csrf": "0" * 64})
        assert r.status_code == 403
        r = await client.post(
            f"{PORTAL}/dsync",
            data={"provider": "okta", "csrf": penv.csrf(page)},
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 403
        assert (await gate.directories.list(organization_id=penv.org.id)).data == ()
        directory_id, token, _ = await create(penv, client)
        r = await client.post(f"{PORTAL}/dsync/{directory_id}/rotate", data={})
        assert r.status_code == 403
        assert (await gate.directories.authenticate(directory_id, f"Bearer {token}")).id
    async with penv.client() as client:
        await penv.open(client, "audit_logs")
        assert (await client.get(f"{PORTAL}/dsync")).status_code == 403


async def test_bad_name_is_a_friendly_422(penv: PortalEnv) -> None:
    async with penv.client() as client:
        await penv.open(client, "dsync")
        page = await client.get(f"{PORTAL}/dsync/new", params={"provider": "onelogin"})
        r = await penv.post(client, "/dsync", page, provider="onelogin", name="x" * 201)
        assert r.status_code == 422
        assert "The name must be 1 to 200 characters." in r.text
        assert 'role="alert"' in r.text
    assert (await penv.gate.directories.list(organization_id=penv.org.id)).data == ()


@pytest.mark.parametrize(
    ("provider", "wording"),
    [
        ("onelogin", "SCIM Bearer Token"),
        ("jumpcloud", "Token Key"),
        ("pingone", "OAuth 2 Bearer Token"),
        ("generic", "Authorization: Bearer"),
    ],
)
async def test_each_provider_gets_its_own_steps(
    penv: PortalEnv, provider: str, wording: str
) -> None:
    async with penv.client() as client:
        await penv.open(client, "dsync")
        directory_id, token, shown = await create(penv, client, provider)
        assert f'data-provider="{provider}"' in shown.text
        assert wording in shown.text
        # the token sits in the step that asks for it, with a copy button
        assert f'<code id="step-token">{token}</code>' in shown.text
        assert 'data-copy="step-url"' in shown.text
