"""The example app behind the gate, against a real SAML IdP (SimpleSAMLphp), over real HTTP.

One ``httpx.AsyncClient`` per sign-in plays the browser (the IdP keeps a login session in its
cookie, so a fresh client per user and per flow); ``drive_login`` fills SimpleSAMLphp's login
form and hands back the auto-POST form, which the test posts to the ACS itself. Each connection
has its own SP at the IdP (entity ID = its SP metadata URL), registered when the connection is
created (see ``conftest.py``): flags such as signed AuthnRequests or encrypted assertions are
set per SP entry, so one SimpleSAMLphp process serves every scenario.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from lxml import etree

from ..peers.simplesamlphp import (
    SamlPost,
    SimpleSamlPhpError,
    drive_login,
    idp_initiated_url,
)
from .conftest import SamlStack

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ALICE = "alice@acme.test"
JSON = {"accept": "application/json"}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        yield client


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def session_cookie_header(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("sso_gate_session="):
            return header
    return None


def authn_request(redirect_url: str) -> etree._Element:
    """The AuthnRequest carried by an HTTP-Redirect binding URL (deflated, base64)."""
    raw = zlib.decompress(base64.b64decode(query(redirect_url)["SAMLRequest"]), -15)
    return etree.fromstring(raw)


def response_xml(post: SamlPost) -> etree._Element:
    return etree.fromstring(base64.b64decode(post.saml_response))


def form(post: SamlPost) -> dict[str, str]:
    data = {"SAMLResponse": post.saml_response}
    if post.relay_state is not None:
        data["RelayState"] = post.relay_state
    return data


async def start_with_login_form(client: httpx.AsyncClient, stack: SamlStack) -> str:
    """Submit the app's login form with Alice's email; return the IdP URL the gate sends to."""
    r = await client.post(
        stack.url("/login?next=/dashboard"), data={"email": ALICE, "password": ""}
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(stack.idp.sso_url + "?"), location  # the gate answered
    return location


async def start_with_authorize(
    client: httpx.AsyncClient, stack: SamlStack, connection_id: str
) -> str:
    """Start SSO explicitly for one connection (``GET {prefix}/sso/authorize?connection=``)."""
    params = urlencode({"connection": connection_id, "return_to": "/dashboard"})
    r = await client.get(stack.url(f"/sso-gate/sso/authorize?{params}"))
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(stack.idp.sso_url + "?"), location
    return location


async def post_to_acs(
    client: httpx.AsyncClient, stack: SamlStack, post: SamlPost, connection_id: str
) -> httpx.Response:
    assert post.action == stack.acs_url(connection_id)
    return await client.post(post.action, data=form(post), headers=JSON)


async def finish(
    client: httpx.AsyncClient, stack: SamlStack, post: SamlPost, connection_id: str
) -> httpx.Response:
    """ACS (verifies, parks the result) then the same-site completion step (binds, signs in);
    return the completion's response."""
    acs = await post_to_acs(client, stack, post, connection_id)
    assert acs.status_code == 303, f"{acs.text}\n{stack.log_tail()}"
    location = acs.headers["location"]
    assert location.startswith(f"/sso-gate/sso/saml/{connection_id}/complete?token="), location
    assert session_cookie_header(acs) is None  # nothing signed in before the browser binding
    done = await client.get(stack.url(location))
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/dashboard"
    assert session_cookie_header(done) is not None
    return done


@asynccontextmanager
async def sign_in(
    stack: SamlStack, connection_id: str, user: tuple[str, str] = ("alice", "alicepass")
) -> AsyncIterator[tuple[httpx.AsyncClient, SamlPost]]:
    """A whole SP-initiated sign-in through ``/sso/authorize``, in a fresh client."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        location = await start_with_authorize(client, stack, connection_id)
        post = await drive_login(client, location, *user)
        await finish(client, stack, post, connection_id)
        yield client, post


async def redis_exists(stack: SamlStack, key: str) -> bool | None:
    """Whether ``key`` is in the stack's Redis (None when the stack has no Redis)."""
    url = stack.env.get("SSO_GATE_REDIS_URL")
    if url is None:
        return None
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return bool(await client.exists(key))
    finally:
        await client.aclose()


async def profile_of(client: httpx.AsyncClient, stack: SamlStack) -> dict[str, Any]:
    me = await client.get(stack.url("/sso-gate/sso/me"))
    assert me.status_code == 200, me.text
    profile: dict[str, Any] = me.json()["profile"]
    return profile


# -- the main flow, on each backend ----------------------------------------------------------


async def test_sp_initiated_login(any_saml_stack: SamlStack, browser: httpx.AsyncClient) -> None:
    stack = any_saml_stack
    conn = stack.conn
    assert conn is not None and conn.saml is not None
    location = await start_with_login_form(browser, stack)

    # The gate's AuthnRequest, as SimpleSAMLphp receives it (unsigned: sign_requests is off).
    params = query(location)
    assert "Signature" not in params and "SigAlg" not in params
    request = authn_request(location)
    request_id = request.get("ID")
    assert request.get("AssertionConsumerServiceURL") == stack.acs_url(conn.id)
    assert request.get("Destination") == stack.idp.sso_url
    assert request.findtext("saml:Issuer", namespaces=NS) == conn.saml.sp_entity_id
    pending = f"sso_gate:saml_req:{request_id}"
    assert await redis_exists(stack, pending) in (None, True)  # in Redis, when configured

    post = await drive_login(browser, location, "alice", "alicepass")
    assert post.relay_state == params["RelayState"]
    root = response_xml(post)
    assert root.get("InResponseTo") == request_id
    assert root.get("Destination") == stack.acs_url(conn.id)

    cookie = session_cookie_header(await finish(browser, stack, post, conn.id))
    assert cookie is not None
    flags = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Path=/" in flags
    assert await redis_exists(stack, pending) in (None, False)  # consumed

    dashboard = await browser.get(stack.url("/dashboard"))
    assert dashboard.status_code == 200
    assert f"Signed in as {ALICE} with SSO" in dashboard.text

    profile = await profile_of(browser, stack)
    assert profile["email"] == ALICE
    assert (profile["first_name"], profile["last_name"]) == ("Alice", "Smith")
    assert profile["groups"] == ["Engineering", "Admins"]
    assert profile["idp_id"] == ALICE  # the emailAddress NameID
    assert profile["organization_id"] == stack.org_id
    assert profile["connection_id"] == conn.id
    assert profile["connection_type"] == "SimpleSamlPhpSAML"
    assert profile["raw_attributes"]["name_id"] == ALICE
    assert profile["raw_attributes"]["session_index"]

    # In SimpleSAMLphp's "Admins" group: the app's /admin opens.
    admin = await browser.get(stack.url("/admin"))
    assert admin.status_code == 200 and f"Hello {ALICE}" in admin.text

    # Another instance on the same database (and Redis) sees the session.
    other = stack.gate()
    try:
        verified = await other.sessions.verify(browser.cookies["sso_gate_session"])
    finally:
        await other.aclose()
    assert verified is not None and verified.profile.email == ALICE


# -- browser binding and replays ---------------------------------------------------------------


async def test_completion_in_another_browser_is_refused(
    any_saml_stack: SamlStack, browser: httpx.AsyncClient
) -> None:
    """The ACS result is bound to the browser that started the flow (its flow cookie): the
    completion URL is useless elsewhere, and single-use."""
    stack = any_saml_stack
    post = await drive_login(
        browser, await start_with_login_form(browser, stack), "alice", "alicepass"
    )
    acs = await post_to_acs(browser, stack, post, stack.conn_id)
    assert acs.status_code == 303
    complete = stack.url(acs.headers["location"])
    async with httpx.AsyncClient(timeout=10) as attacker:
        stolen = await attacker.get(complete, headers=JSON)
        assert stolen.status_code == 400, stolen.text
        assert stolen.json()["code"] == "browser_mismatch"
        assert session_cookie_header(stolen) is None
        assert (await attacker.get(stack.url("/sso-gate/sso/me"))).status_code == 401
    again = await browser.get(complete, headers=JSON)  # consumed by the refused attempt
    assert again.status_code == 400 and again.json()["code"] == "invalid_state"


async def test_replayed_response_is_refused(
    any_saml_stack: SamlStack, browser: httpx.AsyncClient
) -> None:
    stack = any_saml_stack
    post = await drive_login(
        browser, await start_with_login_form(browser, stack), "alice", "alicepass"
    )
    await finish(browser, stack, post, stack.conn_id)

    # The same SAMLResponse again: from the same browser, and from another one.
    async with httpx.AsyncClient(timeout=10) as attacker:
        for client in (browser, attacker):
            r = await post_to_acs(client, stack, post, stack.conn_id)
            assert r.status_code == 400, r.text
            assert r.json()["code"] == "unknown_in_response_to"
            assert session_cookie_header(r) is None
            assert "location" not in r.headers
        assert (await attacker.get(stack.url("/sso-gate/sso/me"))).status_code == 401


# -- signed AuthnRequests ----------------------------------------------------------------------


async def test_signed_authn_requests(any_saml_stack: SamlStack) -> None:
    """SimpleSAMLphp requires signed AuthnRequests from this SP and checks them with the SP
    certificate of the connection: the gate's signature is accepted; an unsigned request, or
    a signed one altered on the way, is refused by the IdP."""
    stack = any_saml_stack
    require = {"require_signed_authn_request": True}
    signing = await stack.add_connection(sp=require, sign_requests=True)
    async with sign_in(stack, signing.id) as (client, _post):
        assert (await profile_of(client, stack))["connection_id"] == signing.id

    async with httpx.AsyncClient(timeout=10) as client:
        location = await start_with_authorize(client, stack, signing.id)
        params = query(location)
        assert params["SigAlg"] == RSA_SHA256 and params["Signature"]
        tampered = re.sub(r"([?&])RelayState=[^&]*", r"\1RelayState=changed", location)
        assert tampered != location
        with pytest.raises(SimpleSamlPhpError, match="Unable to validate signature"):
            await drive_login(client, tampered, "alice", "alicepass")

    not_signing = await stack.add_connection(sp=require, sign_requests=False)
    async with httpx.AsyncClient(timeout=10) as client:
        location = await start_with_authorize(client, stack, not_signing.id)
        assert "Signature" not in query(location)
        with pytest.raises(SimpleSamlPhpError, match="no signature found"):
            await drive_login(client, location, "alice", "alicepass")


# -- encrypted assertions and signature placements ---------------------------------------------


async def test_encrypted_assertion(any_saml_stack: SamlStack) -> None:
    stack = any_saml_stack
    conn = await stack.add_connection(sp={"encrypt_assertion": True}, encrypt_assertions=True)
    async with sign_in(stack, conn.id) as (client, post):
        root = response_xml(post)
        assert root.find("saml:EncryptedAssertion", NS) is not None
        assert root.find("saml:Assertion", NS) is None
        assert ALICE.encode() not in base64.b64decode(post.saml_response)
        profile = await profile_of(client, stack)
        assert profile["email"] == ALICE and profile["groups"] == ["Engineering", "Admins"]


async def test_plaintext_assertion_refused_when_encryption_is_required(
    any_saml_stack: SamlStack, browser: httpx.AsyncClient
) -> None:
    stack = any_saml_stack
    conn = await stack.add_connection(encrypt_assertions=True)  # the IdP does not encrypt
    post = await drive_login(
        browser, await start_with_authorize(browser, stack, conn.id), "alice", "alicepass"
    )
    r = await post_to_acs(browser, stack, post, conn.id)
    assert r.status_code == 400 and r.json()["code"] == "encryption_required"
    assert session_cookie_header(r) is None


@pytest.mark.parametrize(
    ("sign_response", "sign_assertion"),
    [(True, True), (True, False)],
    ids=["response-and-assertion", "response-only"],
)
async def test_signed_response(
    any_saml_stack: SamlStack, sign_response: bool, sign_assertion: bool
) -> None:
    stack = any_saml_stack
    sp = {"sign_response": sign_response, "sign_assertion": sign_assertion}
    conn = await stack.add_connection(sp=sp)
    async with sign_in(stack, conn.id, ("bob", "bobpass")) as (client, post):
        root = response_xml(post)
        assert root.find("ds:Signature", NS) is not None
        assert (root.find("saml:Assertion/ds:Signature", NS) is not None) is sign_assertion
        assert (await profile_of(client, stack))["email"] == "bob@acme.test"


async def test_unsigned_response_and_assertion_are_refused(
    any_saml_stack: SamlStack, browser: httpx.AsyncClient
) -> None:
    stack = any_saml_stack
    conn = await stack.add_connection(sp={"sign_response": False, "sign_assertion": False})
    post = await drive_login(
        browser, await start_with_authorize(browser, stack, conn.id), "alice", "alicepass"
    )
    assert b"<ds:Signature" not in base64.b64decode(post.saml_response)
    r = await post_to_acs(browser, stack, post, conn.id)
    assert r.status_code == 400 and r.json()["code"] == "unsigned"
    assert session_cookie_header(r) is None


# -- IdP-initiated -------------------------------------------------------------------------------


async def test_idp_initiated_is_refused_by_default(
    any_saml_stack: SamlStack, browser: httpx.AsyncClient
) -> None:
    stack = any_saml_stack
    assert stack.conn is not None and stack.conn.saml is not None
    assert not stack.conn.saml.allow_idp_initiated
    url = idp_initiated_url(stack.idp, stack.conn.saml.sp_entity_id)
    post = await drive_login(browser, url, "alice", "alicepass")
    assert response_xml(post).get("InResponseTo") is None
    r = await post_to_acs(browser, stack, post, stack.conn_id)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "unsolicited_response"
    assert session_cookie_header(r) is None
    assert (await browser.get(stack.url("/sso-gate/sso/me"))).status_code == 401


async def test_idp_initiated_when_allowed(
    any_saml_stack: SamlStack, browser: httpx.AsyncClient
) -> None:
    """Allowed per connection: straight from the ACS to the connection's fixed landing page
    (never to the RelayState, which an attacker could choose); each assertion works once."""
    stack = any_saml_stack
    conn = await stack.add_connection(allow_idp_initiated=True)
    assert conn.saml is not None and conn.saml.idp_initiated_landing == "/"
    url = idp_initiated_url(stack.idp, conn.saml.sp_entity_id, "https://evil.example/")
    post = await drive_login(browser, url, "alice", "alicepass")
    assert post.relay_state == "https://evil.example/"

    r = await browser.post(post.action, data=form(post))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert session_cookie_header(r) is not None
    dashboard = await browser.get(stack.url("/dashboard"))
    assert f"Signed in as {ALICE} with SSO" in dashboard.text
    assert (await profile_of(browser, stack))["connection_id"] == conn.id

    async with httpx.AsyncClient(timeout=10) as attacker:
        replay = await post_to_acs(attacker, stack, post, conn.id)
        assert replay.status_code == 400, replay.text
        assert replay.json()["code"] == "assertion_replayed"
        assert session_cookie_header(replay) is None
