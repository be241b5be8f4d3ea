"""Portal SSO setup: provider choice, steps with the connection's real URLs, the IdP's side
(SAML metadata by URL, upload or paste; OIDC issuer/client), plain-language errors, activation,
certificate renewal, CSRF, organization scoping and audit. Test sign-ins:
``test_portal_sso_signin.py``."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from sso_gate.models import OIDC_CONNECTION_TYPES, SAML_CONNECTION_TYPES
from sso_gate.saml.attributes import PRESETS
from sso_gate.web.portal._guides import PROVIDERS
from tests.fakes.idp import CLIENT_ID, CLIENT_SECRET, ISSUER
from tests.fakes.saml_idp import make_cert, pem
from tests.portal.sso_env import (
    BAD_ISSUER,
    DOWN_URL,
    META_URL,
    P,
    SsoEnv,
    location,
    new_connection,
    save_saml,
    sso_env,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def senv(database_url: str) -> AsyncIterator[SsoEnv]:
    async with sso_env(database_url) as env:
        yield env


# -- provider choice and steps ---------------------------------------------------------------


def test_guides_cover_every_provider_and_match_the_attribute_presets() -> None:
    names = {p.name for p in PROVIDERS.values()}
    for wanted in (
        "Okta",
        "Entra ID",
        "Google Workspace",
        "OneLogin",
        "JumpCloud",
        "PingOne",
        "AD FS",
        "Auth0",
        "Keycloak",
        "Other SAML",
        "Other OpenID Connect",
    ):
        assert any(wanted in n for n in names), wanted
    for provider in PROVIDERS.values():
        for protocol in provider.protocols:
            guide = getattr(provider, protocol)
            types = SAML_CONNECTION_TYPES if protocol == "saml" else OIDC_CONNECTION_TYPES
            assert guide.connection_type in types
            for step in guide.steps:
                for f in step.fields:
                    assert (
                        not f.value.startswith("$")
                        or f.value[1:]
                        in (
                            "acs_url sp_entity_id sp_metadata_url acs_url_regex auth0_settings "
                            "redirect_uri scopes"
                        ).split()
                    )
                if protocol != "saml":
                    continue
                preset = PRESETS[SAML_CONNECTION_TYPES[guide.connection_type]]
                for profile_field, name, _source in step.attributes:
                    assert name in preset[profile_field], (provider.key, name)


async def test_provider_list_and_every_guide_renders(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        page = await senv.penv.open(client, "sso")
        assert page.status_code == 200 and 'id="providers"' in page.text
        for provider in PROVIDERS.values():
            assert html.escape(provider.name) in page.text
            for protocol in provider.protocols:
                assert f'value="{provider.key}:{protocol}"' in page.text
        assert 'value="adfs:oidc"' not in page.text and 'value="generic_oidc:saml"' not in page.text
        for provider in PROVIDERS.values():
            for protocol in provider.protocols:
                conn_id, shown = await new_connection(client, senv, f"{provider.key}:{protocol}")
                conn = await senv.gate.connections.get(conn_id)
                assert conn.state == "draft"
                assert conn.connection_type == getattr(provider, protocol).connection_type
                assert shown.status_code == 200 and 'data-state="draft"' in shown.text
                assert "Test sign-in with" not in shown.text  # nothing to test yet
        listing = await client.get(f"{P}/sso")
        assert listing.text.count("data-connection=") == sum(
            len(p.protocols) for p in PROVIDERS.values()
        )
        r = await senv.penv.post(client, "/sso/new", listing, setup="okta:ws-fed")
        assert r.status_code == 422


async def test_saml_steps_show_the_connections_real_urls(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv, "okta:saml")
        urls = senv.gate.connections.saml_urls(conn_id)
        conn = await senv.gate.connections.get(conn_id)
        assert conn.saml is not None and conn.saml.sp_entity_id == urls["sp_metadata_url"]
        steps = page.text[page.text.index('id="steps"') :]
        assert "Audience URI (SP Entity ID)" in steps and "Single sign-on URL" in steps
        assert f'<code id="v3-1">{urls["acs_url"]}</code>' in steps
        assert f'<code id="v3-2">{urls["sp_metadata_url"]}</code>' in steps
        assert 'data-copy="v3-1"' in steps and ">user.firstName<" in steps
        assert urls["sp_metadata_url"] in page.text and "nameid-format:emailAddress" in page.text
        # the SP metadata of a draft is already served, for IdPs that import it
        sp = await client.get(urlsplit(urls["sp_metadata_url"]).path)
        assert sp.status_code == 200 and urls["acs_url"] in sp.text
        # OneLogin's regex validator, Auth0's settings JSON
        conn_id, page = await new_connection(client, senv, "onelogin:saml")
        acs = senv.gate.connections.saml_urls(conn_id)["acs_url"]
        assert html.escape("^" + re.escape(acs) + "$") in page.text
        conn_id, page = await new_connection(client, senv, "auth0:saml")
        assert '"audience": "http://app.test/sso-gate/sso/saml/' in html.unescape(page.text)
        # OIDC: the redirect URI
        conn_id, page = await new_connection(client, senv, "entra_id:oidc")
        redirect = senv.gate.connections.redirect_uri(conn_id)
        assert f">{redirect}</code>" in page.text and "Redirect URI (Web)" in page.text
        assert "openid email profile" in page.text


# -- the IdP's side: SAML ----------------------------------------------------------------------


async def test_saml_metadata_by_paste_url_and_upload(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page)
        assert "Identity provider saved" in page.text and 'id="idp-saved"' in page.text
        assert "https://idp.example.test/metadata" in page.text and 'id="certificates"' in page.text
        assert 'data-state="valid"' in page.text and "Test sign-in with Okta" in page.text
        conn = await senv.gate.connections.get(conn_id)
        assert conn.saml is not None and conn.saml.idp_certificates and conn.state == "draft"

        page = await save_saml(client, senv, conn_id, page, source="url", metadata_url=META_URL)
        assert "Identity provider saved" in page.text and "Refresh metadata now" in page.text
        conn = await senv.gate.connections.get(conn_id)
        assert conn.saml is not None and conn.saml.metadata_url == META_URL

        conn_id, page = await new_connection(client, senv, "google:saml")
        r = await client.post(
            f"{P}/sso/{conn_id}/metadata",
            data={"csrf": senv.penv.csrf(page), "source": "file"},
            files={
                "metadata_file": ("GoogleIDPMetadata.xml", senv.saml_idp.metadata(), "text/xml")
            },
        )
        page = await client.get(location(r))
        assert "Identity provider saved" in page.text
        conn = await senv.gate.connections.get(conn_id)
        assert conn.saml is not None and conn.saml.idp_entity_id == senv.saml_idp.entity_id


@pytest.mark.parametrize(
    ("data", "summary"),
    [
        ({"source": "xml", "metadata_xml": "this is not xml"}, "This is not XML"),
        ({"source": "xml", "metadata_xml": "<a><b></a>"}, "This is not XML"),
        ({"source": "xml", "metadata_xml": "no-cert"}, "has no signing certificate"),
        ({"source": "xml", "metadata_xml": "expired"}, "signing certificate has expired"),
        ({"source": "xml", "metadata_xml": "<x:Thing xmlns:x='urn:x'/>"}, "not usable SAML"),
        ({"source": "url", "metadata_url": DOWN_URL}, "could not download the metadata"),
        ({"source": "url", "metadata_url": "https://idp.example.test/404"}, "could not download"),
        ({"source": "url", "metadata_url": ""}, "Fill in the field"),
    ],
)
async def test_saml_metadata_errors_in_plain_language(
    senv: SsoEnv, data: dict[str, str], summary: str
) -> None:
    if data.get("metadata_xml") == "no-cert":
        data["metadata_xml"] = re.sub(
            r"<md:KeyDescriptor.*?</md:KeyDescriptor>", "", senv.saml_idp.metadata()
        )
    elif data.get("metadata_xml") == "expired":
        _, cert = make_cert(days=-1, not_before_days=-30)
        data["metadata_xml"] = senv.saml_idp.metadata(certs=[pem(cert)])
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        r = await save_saml(client, senv, conn_id, page, **data)
        assert r.status_code == 422 and 'role="alert"' in r.text
        assert summary in r.text and "Technical details" in r.text
        assert 'aria-invalid="true"' in r.text and "Traceback" not in r.text
        assert (await senv.gate.connections.get(conn_id)).saml.idp_certificates == ()  # type: ignore[union-attr]


async def test_bad_uploads(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        csrf = {"csrf": senv.penv.csrf(page), "source": "file"}
        url = f"{P}/sso/{conn_id}/metadata"
        r = await client.post(
            url, data=csrf, files={"metadata_file": ("x.xml", b"\xff\xfe\x00", "")}
        )
        assert r.status_code == 422 and "This is not XML" in r.text
        r = await client.post(url, data=csrf, files={"metadata_file": ("x.xml", b"", "text/xml")})
        assert r.status_code == 422 and "Fill in the field" in r.text
        big = b"<a>" + b"x" * (3 * 1024 * 1024) + b"</a>"
        r = await client.post(url, data=csrf, files={"metadata_file": ("x.xml", big, "text/xml")})
        assert r.status_code == 413 and "too large" in r.text and "Traceback" not in r.text


# -- the IdP's side: OIDC ----------------------------------------------------------------------


async def test_oidc_settings_checked_and_secret_never_shown(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv, "okta:oidc")
        post = senv.penv.post
        r = await post(
            client,
            f"/sso/{conn_id}/oidc",
            page,
            issuer="https://down.example.test",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        assert r.status_code == 422 and "could not reach Okta" in r.text
        assert CLIENT_SECRET not in r.text and 'value="https://down.example.test"' in r.text
        r = await post(
            client,
            f"/sso/{conn_id}/oidc",
            page,
            issuer=BAD_ISSUER,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        assert r.status_code == 422 and "discovery document is not valid" in r.text
        r = await post(
            client,
            f"/sso/{conn_id}/oidc",
            page,
            issuer="not a url",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        assert r.status_code == 422 and "must be an https:// address" in r.text
        r = await post(client, f"/sso/{conn_id}/oidc", page, issuer=ISSUER, client_id=CLIENT_ID)
        assert r.status_code == 422 and "client secret" in r.text
        assert (await senv.gate.connections.get(conn_id)).oidc.issuer == ""  # type: ignore[union-attr]

        r = await post(
            client,
            f"/sso/{conn_id}/oidc",
            page,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
        page = await client.get(location(r))
        assert "Identity provider saved" in page.text and "A secret is saved" in page.text
        assert CLIENT_SECRET not in page.text
        # an empty secret keeps the stored one
        r = await post(client, f"/sso/{conn_id}/oidc", page, issuer=ISSUER, client_id=CLIENT_ID)
        page = await client.get(location(r))
        conn = await senv.gate.connections.get(conn_id)
        assert conn.oidc is not None and conn.oidc.client_secret.reveal() == CLIENT_SECRET
        assert CLIENT_SECRET not in page.text
    entries = (await senv.gate.audit.list(senv.penv.org.id, limit=100)).data
    assert entries and all(CLIENT_SECRET not in str(e.to_dict()) for e in entries)


# -- activation, certificates ------------------------------------------------------------------


async def test_activate_deactivate_and_audit(senv: SsoEnv) -> None:
    await senv.gate.organizations.update(senv.penv.org.id, sso_policy="required")
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        r = await senv.penv.post(client, f"/sso/{conn_id}/activate", page)
        assert r.status_code == 422 and "before activating" in r.text
        page = await save_saml(client, senv, conn_id, page)
        r = await senv.penv.post(client, f"/sso/{conn_id}/activate", page)
        page = await client.get(location(r))
        assert "Connection activated" in page.text and 'data-state="active"' in page.text
        assert (await senv.gate.routing.for_email("bob@acme.test")).connection_id == conn_id  # type: ignore[union-attr]
        r = await senv.penv.post(client, f"/sso/{conn_id}/delete", page)
        assert r.status_code == 409
        r = await senv.penv.post(client, f"/sso/{conn_id}/deactivate", page)
        page = await client.get(location(r))
        assert 'data-state="inactive"' in page.text
        r = await senv.penv.post(client, f"/sso/{conn_id}/delete", page)
        assert "Connection deleted" in (await client.get(location(r))).text
    audit = (await senv.gate.audit.list(senv.penv.org.id, limit=100)).data
    by_action = {e.action: e for e in audit}
    for action in (
        "connection.created",
        "connection.updated",
        "connection.activated",
        "connection.deactivated",
        "connection.deleted",
    ):
        assert by_action[action].actor["type"] == "portal_session", action


async def test_certificate_renewal(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page, source="url", metadata_url=META_URL)
        assert page.text.count("<tr data-sha256=") == 1
        _, expired = make_cert("Old", days=-1, not_before_days=-30)
        r = await senv.penv.post(
            client, f"/sso/{conn_id}/certificate", page, certificate=pem(expired)
        )
        assert r.status_code == 422 and "has expired" in r.text
        r = await senv.penv.post(client, f"/sso/{conn_id}/certificate", page, certificate="junk")
        assert r.status_code == 422 and "not a valid X.509 certificate" in r.text
        _, new = make_cert("New IdP cert", days=700)
        r = await senv.penv.post(client, f"/sso/{conn_id}/certificate", page, certificate=pem(new))
        page = await client.get(location(r))
        assert "Certificate added" in page.text and page.text.count("<tr data-sha256=") == 2
        assert new.not_valid_after_utc.strftime("%Y-%m-%d") in page.text
        # refresh from the metadata URL picks up a rotated certificate
        conn_id, page = await new_connection(client, senv)
        page = await save_saml(client, senv, conn_id, page, source="url", metadata_url=META_URL)
        senv.served[META_URL] = senv.saml_idp.metadata(certs=[pem(new)])
        r = await senv.penv.post(client, f"/sso/{conn_id}/refresh", page)
        page = await client.get(location(r))
        assert (
            "Metadata refreshed" in page.text
            and new.fingerprint(
                __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
            ).hex()
            in page.text
        )
        senv.served.pop(META_URL)
        r = await senv.penv.post(client, f"/sso/{conn_id}/refresh", page)
        assert r.status_code == 422 and "could not download" in r.text


# -- security ----------------------------------------------------------------------------------


async def test_every_post_checks_csrf(senv: SsoEnv) -> None:
    async with senv.penv.client() as client:
        conn_id, page = await new_connection(client, senv)
        for path in (
            "/sso/new",
            *(
                f"/sso/{conn_id}/{a}"
                for a in (
                    "metadata",
                    "oidc",
                    "certificate",
                    "refresh",
                    "activate",
                    "deactivate",
                    "delete",
                )
            ),
        ):
            r = await client.post(
                P + path, data={"setup": "okta:saml", "source": "url", "metadata_url": META_URL}
            )
            assert r.status_code == 403, path
            r = await client.post(P + path, data={"csrf": "0" * 64, "setup": "okta:saml"})
            assert r.status_code == 403, path
        conn = await senv.gate.connections.get(conn_id)
        assert conn.saml is not None and conn.saml.idp_certificates == () and conn.state == "draft"
        assert len((await senv.gate.connections.list(organization_id=senv.penv.org.id)).data) == 1


async def test_another_organizations_connections_are_404(senv: SsoEnv) -> None:
    theirs = await senv.gate.connections.create_saml(
        senv.penv.other.id, metadata_xml=senv.saml_idp.metadata(), state="inactive"
    )
    async with senv.penv.client() as client:
        page = await senv.penv.open(client, "sso")
        assert theirs.id not in page.text
        assert (await client.get(f"{P}/sso/{theirs.id}")).status_code == 404
        assert (await client.get(f"{P}/sso/{theirs.id}/test?t=x")).status_code == 404
        for action in ("metadata", "oidc", "certificate", "refresh", "activate", "delete"):
            r = await senv.penv.post(
                client,
                f"/sso/{theirs.id}/{action}",
                page,
                source="xml",
                metadata_xml=senv.saml_idp.metadata(),
            )
            assert r.status_code == 404, action
        assert (await client.get(f"{P}/sso/conn_nope")).status_code == 404
    after = await senv.gate.connections.get(theirs.id)
    assert after.state == "inactive" and after.updated_at == theirs.updated_at
    # a session for another intent cannot reach the SSO pages
    async with senv.penv.client() as client:
        await senv.penv.open(client, "domain_verification")
        assert (await client.get(f"{P}/sso")).status_code == 403
