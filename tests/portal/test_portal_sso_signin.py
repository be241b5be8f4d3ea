"""Portal "Test connection": real sign-ins through the in-process fake IdPs (SAML and OIDC) whose
result page shows the normalized profile, or which check failed with expected vs received
values; never an app session, never ``on_login``."""

from __future__ import annotations

import base64
import html
import zlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from lxml import etree

from tests.fakes.idp import CLIENT_ID, CLIENT_SECRET, ISSUER
from tests.fakes.saml_idp import encode, make_cert
from tests.portal.sso_env import (
    P,
    SsoEnv,
    check_row,
    location,
    new_connection,
    oidc_test,
    saml_test,
    save_saml,
    sso_env,
    start_link,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def senv(database_url: str) -> AsyncIterator[SsoEnv]:
    async with sso_env(database_url) as env:
        yield env


# -- test sign-in ------------------------------------------------------------------------------


async def test_saml_test_sign_in_shows_the_profile(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page)
        result = await saml_test(client, senv, conn_id, page)
        assert result.status_code == 200 and 'data-state="succeeded"' in result.text
        assert "Signed in as alice@acme.test" in result.text
        assert '<dd data-field="first_name">Alice</dd>' in result.text
        assert '<dd data-field="groups">Engineering, Admins</dd>' in result.text
        assert 'data-ok="false"' not in result.text and 'data-check="audience"' in result.text
        assert result.headers["content-security-policy"].startswith("default-src 'none'")
        # the result can be reloaded, but only by this portal session
        assert (await client.get(str(result.url))).status_code == 200
        async with senv.penv.client() as other:
            await senv.penv.open(other, "sso")
            assert (await other.get(str(result.url))).status_code == 404
        # a used test link cannot start another test
        assert (await client.get(start_link(page))).status_code == 410
        # no app session, no on_login; still a draft
        assert (await client.get("/sso-gate/sso/me")).status_code == 401
    assert senv.logins == []
    assert (await senv.gate.connections.get(conn_id)).state == "draft"
    audit = await senv.gate.audit.list(senv.penv.org.id, actions=["authentication.sso_succeeded"])
    assert audit.data  # the test sign-in is on the record


async def test_saml_test_refused_by_the_idp(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv, "jumpcloud:saml")
        page = await save_saml(client, senv, conn_id, page)
        query = parse_qs(urlsplit(location(await client.get(start_link(page)))).query)
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
        rid = etree.fromstring(xml).get("ID")
        acs = senv.gate.connections.saml_urls(conn_id)["acs_url"]
        refused = senv.saml_idp.response(
            None,
            acs_url=acs,
            in_response_to=rid,
            status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        )
        r = await client.post(
            f"/sso-gate/sso/saml/{conn_id}/acs", data={"SAMLResponse": encode(refused)}
        )
        result = await client.get(location(r))
        assert "JumpCloud refused the sign-in" in result.text and "saml_status_error" in result.text
        row = check_row(result, "status")
        assert 'data-ok="false"' in row and "Responder" in row


async def test_saml_test_failure_shows_expected_and_received(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page)
        sp_entity = senv.gate.connections.saml_urls(conn_id)["sp_metadata_url"]
        result = await saml_test(client, senv, conn_id, page, audience="https://wrong.example/sp")
        assert 'data-state="failed"' in result.text
        assert "Okta sent the sign-in to another audience" in result.text
        assert "wrong_audience" in result.text
        row = check_row(result, "audience")
        assert 'data-ok="false"' in row and sp_entity in row and "https://wrong.example/sp" in row
        assert 'data-ok="true"' in check_row(result, "issuer")
        # a wrong signing certificate names both fingerprints
        page = await client.get(f"{P}/sso/{conn_id}")
        senv.saml_idp.key, senv.saml_idp.cert = make_cert("Rotated IdP")
        result = await saml_test(client, senv, conn_id, page)
        assert "not signed with the certificate we have for Okta" in result.text
        row = check_row(result, "certificate")
        assert 'data-ok="false"' in row
        assert senv.saml_idp.cert.fingerprint(hashes.SHA256()).hex()[:16] in row
    assert senv.logins == []


async def test_saml_recipient_message_names_both(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page)
        acs = senv.gate.connections.saml_urls(conn_id)["acs_url"]
        result = await saml_test(client, senv, conn_id, page, recipient="https://evil.test/acs")
        assert "wrong_recipient" in result.text
        message = f"Recipient 'https://evil.test/acs' is not this connection's ACS URL '{acs}'"
        assert message in html.unescape(result.text)
        row = check_row(result, "recipient")
        assert 'data-ok="false"' in row and acs in row and "https://evil.test/acs" in row


async def test_oidc_test_sign_in_success_and_failure(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv, "keycloak:oidc")
        r = await senv.penv.post(
            client,
            f"/sso/{conn_id}/oidc",
            page,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        page = await client.get(location(r))
        result = await oidc_test(client, senv, conn_id, page)
        assert 'data-state="succeeded"' in result.text, result.text[:3000]
        assert "Signed in as alice@acme.test" in result.text
        assert '<dd data-field="last_name">Anderson</dd>' in result.text
        assert 'data-ok="true"' in check_row(result, "audience")
        assert (await client.get("/sso-gate/sso/me")).status_code == 401

        senv.oidc_idp.claim_overrides = {"aud": "someone-else"}
        result = await oidc_test(client, senv, conn_id, await client.get(f"{P}/sso/{conn_id}"))
        assert 'data-state="failed"' in result.text and "invalid_audience" in result.text
        assert "issued to another client" in result.text
        row = check_row(result, "audience")
        assert 'data-ok="false"' in row and CLIENT_ID in row and "someone-else" in row
        senv.oidc_idp.claim_overrides = {"iss": "https://impostor.test"}
        result = await oidc_test(client, senv, conn_id, await client.get(f"{P}/sso/{conn_id}"))
        row = check_row(result, "issuer")
        assert 'data-ok="false"' in row and "https://impostor.test" in row and ISSUER in row
    assert senv.logins == []


async def test_a_test_flow_never_becomes_an_app_session(senv: SsoEnv) -> None:
    """Even when the portal's marker is gone, a test response is refused by the normal path."""
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page)
        await senv.gate.connections.activate(conn_id)
        query = parse_qs(urlsplit(location(await client.get(start_link(page)))).query)
        rid = etree.fromstring(zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)).get(
            "ID"
        )
        await senv.gate.onetime.take(f"portal_sso_test_flow:saml:{rid}")
        conn = await senv.gate.connections.get(conn_id)
        acs = senv.gate.connections.saml_urls(conn_id)["acs_url"]
        assertion = senv.saml_idp.signed_assertion(
            acs_url=acs,
            audience=conn.saml.sp_entity_id,
            in_response_to=rid,  # type: ignore[union-attr]
        )
        r = await client.post(
            f"/sso-gate/sso/saml/{conn_id}/acs",
            data={
                "SAMLResponse": encode(
                    senv.saml_idp.response(assertion, acs_url=acs, in_response_to=rid)
                )
            },
        )
        assert r.status_code == 400 and "test_flow_mismatch" in r.text
        # and a draft cannot be used for a real sign-in
        draft_id, _ = await new_connection(client, senv)
        r = await client.get(f"/sso-gate/sso/authorize?connection={draft_id}")
        assert r.status_code == 400 and "connection_inactive" in r.text
    assert senv.logins == []
