"""SAML sign-in through the gate against the in-process fake IdP: the whole SP flow, and the
attacks that need the gate around the verifier (replay, browser binding, cross-tenant, RelayState,
IdP-initiated, metadata)."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from sso_gate import SSOGate, ValidationError
from sso_gate.models import Connection, Organization
from tests.conftest import make_settings
from tests.fakes.saml_idp import (
    FakeSamlIdP,
    encode,
    encrypt_assertion,
    make_cert,
    pem,
    strip_placeholder,
)
from tests.web.conftest import BASE, inner_app

pytestmark = pytest.mark.anyio
META_URL = "https://idp.example.test/metadata.xml"


@dataclass
class SamlEnv:
    gate: SSOGate
    idp: FakeSamlIdP
    org: Organization
    connection: Connection
    client: httpx.AsyncClient
    served_metadata: list[str]

    @property
    def acs(self) -> str:
        return self.gate.connections.saml_urls(self.connection.id)["acs_url"]

    @property
    def sp_entity(self) -> str:
        assert self.connection.saml is not None
        return self.connection.saml.sp_entity_id

    async def start(
        self, client: httpx.AsyncClient | None = None, **query: str
    ) -> tuple[str, dict[str, str]]:
        """Start SSO; returns (AuthnRequest ID, redirect query params)."""
        c = client or self.client
        r = await c.get(
            "/sso-gate/sso/authorize", params={"connection": self.connection.id, **query}
        )
        assert r.status_code == 303, r.text
        params = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
        xml = zlib.decompress(base64.b64decode(params["SAMLRequest"]), -15)
        return etree.fromstring(xml).get("ID"), params

    def response_for(self, request_id: str | None, **kw: object) -> str:
        args: dict[str, object] = {"acs_url": self.acs, "audience": self.sp_entity}
        a = self.idp.signed_assertion(**(args | {"in_response_to": request_id} | kw))
        return encode(self.idp.response(a, acs_url=self.acs, in_response_to=request_id))

    async def post_acs(
        self,
        saml_response: str,
        client: httpx.AsyncClient | None = None,
        relay_state: str = "opaque",
    ) -> httpx.Response:
        c = client or self.client
        return await c.post(
            f"/sso-gate/sso/saml/{self.connection.id}/acs",
            data={"SAMLResponse": saml_response, "RelayState": relay_state},
        )

    async def login(self, client: httpx.AsyncClient | None = None) -> httpx.Response:
        c = client or self.client
        rid, _ = await self.start(c)
        r = await self.post_acs(self.response_for(rid), c)
        assert r.status_code == 303, r.text
        return await c.get(r.headers["location"])


async def make_saml_env(database_url: str, **conn_kw: object) -> SamlEnv:
    idp = FakeSamlIdP()
    served = [idp.metadata()]

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == META_URL:
            return httpx.Response(200, text=served[-1])
        return httpx.Response(404)

    gate = SSOGate(
        make_settings(database_url, allow_private_urls=True),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    await gate.migrate()
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    kw: dict[str, object] = {"metadata_xml": idp.metadata()} | conn_kw
    conn = await gate.connections.create_saml(org.id, **kw)  # type: ignore[arg-type]
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())), base_url=BASE
    )
    return SamlEnv(gate, idp, org, conn, client, served)


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[SamlEnv]:
    e = await make_saml_env(database_url)
    yield e
    await e.client.aclose()
    await e.gate.aclose()


async def me(e: SamlEnv, client: httpx.AsyncClient | None = None) -> httpx.Response:
    return await (client or e.client).get("/sso-gate/sso/me")


# -- happy paths -------------------------------------------------------------------------------


async def test_sp_initiated_login(env: SamlEnv) -> None:
    rid, params = await env.start(return_to="/dashboard")
    assert params["RelayState"] and "Signature" not in params
    r = await env.post_acs(env.response_for(rid))
    assert r.status_code == 303 and "/complete?token=" in r.headers["location"]
    assert "set-cookie" not in r.headers  # no session before the browser binding is checked
    done = await env.client.get(r.headers["location"])
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"
    prof = (await me(env)).json()["profile"]
    assert prof["email"] == "alice@acme.test" and prof["first_name"] == "Alice"
    assert prof["last_name"] == "Anderson" and prof["groups"] == ["Engineering", "Admins"]
    assert prof["connection_type"] == "GenericSAML" and prof["idp_id"] == "alice@acme.test"
    assert prof["raw_attributes"]["name_id"] == "alice@acme.test"


async def test_login_form_routes_to_saml(env: SamlEnv) -> None:
    r = await env.client.post("/login", data={"email": "alice@acme.test"})
    assert r.status_code == 303 and r.headers["location"].startswith(
        "https://idp.example.test/sso?SAMLRequest="
    )


async def test_signed_response_and_encrypted_assertion(database_url: str) -> None:
    e = await make_saml_env(database_url, encrypt_assertions=True)
    rid, _ = await e.start()
    assert e.connection.saml is not None
    a = e.idp.signed_assertion(acs_url=e.acs, audience=e.sp_entity, in_response_to=rid)
    enc = encrypt_assertion(a, e.connection.saml.sp_certificate)
    r = await e.post_acs(encode(e.idp.response(enc, acs_url=e.acs, in_response_to=rid)))
    assert r.status_code == 303, r.text
    assert (await e.client.get(r.headers["location"])).status_code == 303
    assert (await me(e)).json()["profile"]["email"] == "alice@acme.test"
    # plaintext is refused when encryption is required
    rid, _ = await e.start()
    r = await e.post_acs(e.response_for(rid))
    assert r.status_code == 400 and "encryption_required" in r.text
    await e.client.aclose()
    await e.gate.aclose()


@pytest.mark.parametrize(
    ("data_alg", "key_alg", "ok"),
    [
        (
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
            True,
        ),
        (
            "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
            False,
        ),
    ],
)
async def test_encryption_algorithms(
    database_url: str, data_alg: str, key_alg: str, ok: bool
) -> None:
    e = await make_saml_env(database_url, encrypt_assertions=True)
    rid, _ = await e.start()
    assert e.connection.saml is not None
    a = e.idp.signed_assertion(acs_url=e.acs, audience=e.sp_entity, in_response_to=rid)
    enc = encrypt_assertion(a, e.connection.saml.sp_certificate, data_alg=data_alg, key_alg=key_alg)
    r = await e.post_acs(encode(e.idp.response(enc, acs_url=e.acs, in_response_to=rid)))
    if ok:
        assert r.status_code == 303
    else:
        assert r.status_code == 400 and "weak_algorithm" in r.text
    await e.client.aclose()
    await e.gate.aclose()


async def test_signed_authn_request_verifies_with_sp_certificate(database_url: str) -> None:
    e = await make_saml_env(database_url, sign_requests=True)
    _, params = await e.start()
    assert params["SigAlg"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    signed = urlencode([(k, params[k]) for k in ("SAMLRequest", "RelayState", "SigAlg")]).encode()
    md = (await e.client.get(f"/sso-gate/sso/saml/{e.connection.id}/metadata")).text
    assert 'AuthnRequestsSigned="true"' in md
    cert_b64 = md.split("<ds:X509Certificate>")[1].split("</ds:X509Certificate>")[0]
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_b64))
    cert.public_key().verify(  # type: ignore[union-attr,call-arg]
        base64.b64decode(params["Signature"]),
        signed,
        padding.PKCS1v15(),
        hashes.SHA256(),  # type: ignore[arg-type]
    )
    await e.client.aclose()
    await e.gate.aclose()


async def test_post_binding_start(database_url: str) -> None:
    e = await make_saml_env(database_url, sso_binding="post", sign_requests=True)
    r = await e.client.get("/sso-gate/sso/authorize", params={"connection": e.connection.id})
    assert (
        r.status_code == 200
        and 'name="SAMLRequest"' in r.text
        and "sso_gate_flow=" in r.headers["set-cookie"]
    )
    value = r.text.split('name="SAMLRequest" value="')[1].split('"')[0]
    xml = base64.b64decode(value)
    assert b"<ds:Signature" in xml and b"AuthnRequest" in xml
    await e.client.aclose()
    await e.gate.aclose()


async def test_sp_metadata(env: SamlEnv) -> None:
    r = await env.client.get(f"/sso-gate/sso/saml/{env.connection.id}/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith(
        "application/samlmetadata+xml"
    )
    assert f'entityID="{env.sp_entity}"' in r.text and env.acs in r.text
    assert "<ds:X509Certificate>" in r.text and "PRIVATE" not in r.text
    r = await env.client.get("/sso-gate/sso/saml/conn_nope/metadata")
    assert r.status_code == 404


# -- attacks that need the gate -----------------------------------------------------------------


async def test_replayed_response_refused(env: SamlEnv) -> None:
    rid, _ = await env.start()
    value = env.response_for(rid)
    assert (await env.post_acs(value)).status_code == 303
    again = await env.post_acs(value)
    assert again.status_code == 400 and "unknown_in_response_to" in again.text


async def test_replayed_idp_initiated_assertion_refused(database_url: str) -> None:
    e = await make_saml_env(
        database_url, allow_idp_initiated=True, idp_initiated_landing="/dashboard"
    )
    value = e.response_for(None)
    r = await e.post_acs(value, relay_state="https://evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"  # never the RelayState
    assert (await me(e)).status_code == 200
    again = await e.post_acs(value)
    assert again.status_code == 400 and "assertion_replayed" in again.text
    await e.client.aclose()
    await e.gate.aclose()


async def test_idp_initiated_refused_by_default(env: SamlEnv) -> None:
    r = await env.post_acs(env.response_for(None))
    assert r.status_code == 400 and "unsolicited_response" in r.text
    assert (await me(env)).status_code == 401


async def test_response_to_another_browsers_request_refused(env: SamlEnv) -> None:
    rid, _ = await env.start()  # the victim's... no: the attacker's flow, in env.client
    other = httpx.AsyncClient(transport=env.client._transport, base_url=BASE)
    r = await env.post_acs(env.response_for(rid), other)
    assert r.status_code == 303
    done = await other.get(r.headers["location"])
    assert done.status_code == 400 and "browser_mismatch" in done.text
    assert (await me(env, other)).status_code == 401
    await other.aclose()


async def test_completion_token_single_use(env: SamlEnv) -> None:
    rid, _ = await env.start()
    r = await env.post_acs(env.response_for(rid))
    assert (await env.client.get(r.headers["location"])).status_code == 303
    again = await env.client.get(r.headers["location"])
    assert again.status_code == 400 and "invalid_state" in again.text


async def test_cross_tenant_response_refused(env: SamlEnv) -> None:
    """Globex's IdP genuinely signs a response; it is posted to Acme's ACS."""
    globex_idp = FakeSamlIdP(entity_id="https://globex-idp.test")
    org2 = await env.gate.organizations.create("Globex", domains=["globex.test"])
    conn2 = await env.gate.connections.create_saml(org2.id, metadata_xml=globex_idp.metadata())
    rid, _ = await env.start()
    a = globex_idp.signed_assertion(
        acs_url=env.acs, audience=env.sp_entity, in_response_to=rid, issuer=env.idp.entity_id
    )
    r = await env.post_acs(
        encode(
            globex_idp.response(a, acs_url=env.acs, in_response_to=rid, issuer=env.idp.entity_id)
        )
    )
    assert r.status_code == 400 and "invalid_signature" in r.text
    # and a flow started for Globex cannot complete at Acme's ACS
    r2 = await env.client.get("/sso-gate/sso/authorize", params={"connection": conn2.id})
    rid2 = etree.fromstring(
        zlib.decompress(
            base64.b64decode(parse_qs(urlsplit(r2.headers["location"]).query)["SAMLRequest"][0]),
            -15,
        )
    ).get("ID")
    r = await env.post_acs(env.response_for(rid2))
    assert r.status_code == 400 and "connection_mismatch" in r.text
    assert (await me(env)).status_code == 401


async def test_email_outside_org_domains_refused(env: SamlEnv) -> None:
    rid, _ = await env.start()
    r = await env.post_acs(env.response_for(rid, name_id="mallory@globex.test"))
    assert r.status_code == 400 and "email_domain_mismatch" in r.text


async def test_hook_not_called_on_refusal(env: SamlEnv) -> None:
    calls: list[object] = []
    env.gate.on_login(lambda p, r: calls.append(p))
    rid, _ = await env.start()
    await env.post_acs(env.response_for(rid, audience="https://other-sp.test"))
    assert calls == [] and (await me(env)).status_code == 401


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"SAMLResponse": "%%%"}, 400, "malformed_base64"),
        ({"SAMLResponse": base64.b64encode(b"hello").decode()}, 400, "malformed_xml"),
        ({"SAMLResponse": base64.b64encode(b"<html/>").decode()}, 400, "wrong_root"),
        ({"RelayState": "x"}, 400, "missing_saml_response"),
    ],
)
async def test_acs_bad_input(env: SamlEnv, form: dict[str, str], status: int, code: str) -> None:
    r = await env.client.post(f"/sso-gate/sso/saml/{env.connection.id}/acs", data=form)
    assert r.status_code == status and code in r.text and "Traceback" not in r.text


async def test_acs_unknown_connection_and_wrong_content(env: SamlEnv) -> None:
    r = await env.client.post("/sso-gate/sso/saml/conn_nope/acs", data={"SAMLResponse": "x"})
    assert r.status_code == 400 and "unknown_connection" in r.text
    r = await env.client.post(
        f"/sso-gate/sso/saml/{env.connection.id}/acs",
        content=b"{}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "invalid_content_type" in r.text
    r = await env.client.post(
        f"/sso-gate/sso/saml/{env.connection.id}/acs", data={"SAMLResponse": "A" * 2_000_000}
    )
    assert r.status_code == 413


# -- metadata ------------------------------------------------------------------------------------


async def test_metadata_errors(env: SamlEnv) -> None:
    c = env.gate.connections
    no_cert = (
        env.idp.metadata().split("<md:KeyDescriptor")[0]
        + "<md:SingleSignOnService"
        + env.idp.metadata().split("<md:SingleSignOnService", 1)[1]
    )
    with pytest.raises(ValidationError, match="no usable signing certificate"):
        await c.create_saml(env.org.id, metadata_xml=no_cert)
    _, old = make_cert("Expired", days=-1, not_before_days=-30)
    with pytest.raises(ValidationError, match="expired on"):
        await c.create_saml(env.org.id, metadata_xml=env.idp.metadata(certs=[pem(old)]))
    for bad in ("not xml", "<html/>", '<!DOCTYPE x [<!ENTITY a "b">]><x/>'):
        with pytest.raises(ValidationError):
            await c.create_saml(env.org.id, metadata_xml=bad)
    with pytest.raises(ValidationError, match="exactly one"):
        await c.create_saml(env.org.id)


async def test_metadata_url_private_address_refused(database_url: str) -> None:
    g = SSOGate(make_settings(database_url))
    await g.migrate()
    org = await g.organizations.create("Acme")
    for url in ("http://127.0.0.1:8080/md", "http://169.254.169.254/latest/", "http://10.0.0.1/md"):
        with pytest.raises(ValidationError) as info:
            await g.connections.create_saml(org.id, metadata_url=url)
        assert info.value.code == "private_address"
    await g.aclose()


async def test_certificate_renewal_event(env: SamlEnv) -> None:
    import sqlalchemy as sa

    from sso_gate.store.tables import events

    key, soon = make_cert("Expiring", days=10)
    await env.gate.connections.create_saml(
        env.org.id, metadata_xml=env.idp.metadata(certs=[pem(soon)])
    )
    async with env.gate._rt.read() as conn:
        rows = (
            await conn.execute(
                sa.select(events).where(
                    events.c.event == "connection.saml_certificate_renewal_required"
                )
            )
        ).all()
    assert len(rows) == 1 and rows[0].data["days_until_expiry"] in (9, 10)


async def test_metadata_url_refreshed_when_idp_rotates(database_url: str) -> None:
    e = await make_saml_env(database_url, metadata_xml=None, metadata_url=META_URL)
    assert e.connection.saml is not None and e.connection.saml.metadata_url == META_URL
    # the IdP rotates its key; its metadata now lists only the new certificate
    e.idp.key, e.idp.cert = make_cert("Rotated")
    e.served_metadata.append(e.idp.metadata())
    # cooldown: pretend the last refresh was long ago
    e.gate.connections._cache.clear()
    import sqlalchemy as sa

    from sso_gate.store.tables import connections

    async with e.gate._rt.transaction() as conn:
        row = (
            await conn.execute(sa.select(connections).where(connections.c.id == e.connection.id))
        ).one()
        cfg = dict(row.config)
        cfg["saml"] = {**cfg["saml"], "metadata_refreshed_at": "2020-01-01T00:00:00.000Z"}
        await conn.execute(
            sa.update(connections).where(connections.c.id == e.connection.id).values(config=cfg)
        )
    e.gate.connections._cache.clear()
    rid, _ = await e.start()  # begin() refreshes stale metadata on schedule
    r = await e.post_acs(e.response_for(rid))
    assert r.status_code == 303, r.text
    await e.client.aclose()
    await e.gate.aclose()


async def test_update_idp_certificates(env: SamlEnv) -> None:
    new_key, new_cert = make_cert("New")
    env.idp.key, env.idp.cert = new_key, new_cert
    rid, _ = await env.start()
    r = await env.post_acs(env.response_for(rid))
    assert r.status_code == 400 and "invalid_signature" in r.text
    await env.gate.connections.update_saml_idp(env.connection.id, metadata_xml=env.idp.metadata())
    rid, _ = await env.start()
    assert (await env.post_acs(env.response_for(rid))).status_code == 303


_ = (strip_placeholder, dt)


# -- single logout -------------------------------------------------------------------------------


def idp_logout_request(
    e: SamlEnv, name_id: str = "alice@acme.test", key: object = None, signed: bool = True
) -> str:
    from sso_gate.saml.request import logout_request_xml, redirect_url

    req = logout_request_xml(
        sp_entity_id=e.idp.entity_id,  # the issuer of an IdP-initiated request is the IdP
        destination=e.gate.connections.saml_urls(e.connection.id)["slo_url"],
        name_id=name_id,
        name_id_format=None,
        session_index=None,
        now=dt.datetime.now(dt.UTC),
    )
    url = redirect_url("/x", req.xml, relay_state="rs", key=(key or e.idp.key) if signed else None)  # type: ignore[arg-type]
    return url.split("?", 1)[1]


async def test_sp_initiated_logout_reaches_idp(env: SamlEnv) -> None:
    await env.login()
    r = await env.client.post("/sso-gate/sso/logout?return_to=/bye", headers={"origin": BASE})
    assert r.status_code == 303 and r.headers["location"].startswith(
        "https://idp.example.test/slo?SAMLRequest="
    )
    assert "Signature=" in r.headers["location"]
    assert (await me(env)).status_code == 401
    q = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
    req = etree.fromstring(zlib.decompress(base64.b64decode(q["SAMLRequest"]), -15))
    assert req.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}NameID") == "alice@acme.test"
    # the IdP answers with a LogoutResponse: the browser lands on return_to
    from sso_gate.saml.logout import logout_response_xml
    from sso_gate.saml.request import redirect_url

    xml = logout_response_xml(
        in_response_to=req.get("ID"),
        destination="x",
        issuer=env.idp.entity_id,
        now=dt.datetime.now(dt.UTC),
    )
    back = redirect_url(
        f"/sso-gate/sso/saml/{env.connection.id}/slo",
        xml,
        relay_state=q["RelayState"],
        key=env.idp.key,
        param="SAMLResponse",
    )
    r = await env.client.get(back)
    assert r.status_code == 303 and r.headers["location"] == "/bye"


async def test_idp_initiated_logout(env: SamlEnv) -> None:
    await env.login()
    query = idp_logout_request(env)
    r = await env.client.get(f"/sso-gate/sso/saml/{env.connection.id}/slo?{query}")
    assert r.status_code == 303 and r.headers["location"].startswith(
        "https://idp.example.test/slo?SAMLResponse="
    )
    assert "RelayState=rs" in r.headers["location"] and "Signature=" in r.headers["location"]
    assert (await me(env)).status_code == 401
    again = await env.client.get(f"/sso-gate/sso/saml/{env.connection.id}/slo?{query}")
    assert again.status_code == 400 and "replayed" in again.text


@pytest.mark.parametrize("how", ["unsigned", "attacker_key"])
async def test_forged_idp_logout_refused(env: SamlEnv, how: str) -> None:
    await env.login()
    key, _ = make_cert("attacker")
    query = idp_logout_request(
        env, key=key if how == "attacker_key" else None, signed=how != "unsigned"
    )
    r = await env.client.get(f"/sso-gate/sso/saml/{env.connection.id}/slo?{query}")
    assert r.status_code == 400 and ("unsigned" in r.text or "invalid_signature" in r.text)
    assert (await me(env)).status_code == 200


async def test_slo_bad_input(env: SamlEnv) -> None:
    for q in (
        "",
        "SAMLRequest=%%%",
        "SAMLRequest=" + base64.b64encode(zlib.compress(b"x" * 1_000_000)[2:-4]).decode(),
    ):
        r = await env.client.get(f"/sso-gate/sso/saml/{env.connection.id}/slo?{q}")
        assert r.status_code == 400 and "Traceback" not in r.text


async def test_periodic_certificate_check(env: SamlEnv) -> None:
    """A certificate that drifts into the 30-day window is reported once by the daily check."""
    import sqlalchemy as sa

    from sso_gate.store.tables import events

    async def count() -> int:
        async with env.gate._rt.read() as conn:
            q = (
                sa.select(sa.func.count())
                .select_from(events)
                .where(events.c.event == "connection.saml_certificate_renewal_required")
            )
            return int((await conn.execute(q)).scalar_one())

    assert await env.gate.connections.check_saml_certificates() == 0
    env.gate._rt.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=340)  # type: ignore[method-assign]
    assert await env.gate.connections.check_saml_certificates() == 1
    assert await env.gate.connections.check_saml_certificates() == 0
    assert await count() == 1
