"""No secret ever reaches a log line or an error response.

One gate serves every flow that handles a secret — OIDC and SAML sign-ins that succeed and fail
(in-process fake IdPs), sessions, SCIM with right, wrong and rotated tokens, the management API
with a wrong key, webhook endpoints (create, rotate, deliveries), portal links (used, reused),
metrics with a wrong token, readiness of a database URL with a password — while every
``sso_gate`` logger records at DEBUG, through caplog and through the JSON formatter. Then every
secret value is looked for in the captured text and in the body and headers of every error
response (status >= 400). Responses that hand a secret out on purpose (a webhook secret on
create, a portal link) are successes and not searched; the logs of them are.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import zlib
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from lxml import etree

from sso_gate import SSOGate
from sso_gate.logs import JSONFormatter
from sso_gate.settings import Secret
from tests.conftest import ADMIN_KEY, make_settings
from tests.fakes.idp import FakeIdP, new_key
from tests.fakes.saml_idp import FakeSamlIdP, encode
from tests.web.conftest import BASE, inner_app

pytestmark = pytest.mark.anyio
METRICS_TOKEN = "metrics-" + secrets.token_urlsafe(24)


class Recorder:
    """Every response the test client got, and the secrets seen on the way."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []
        self.secrets: dict[str, str] = {}

    def secret(self, name: str, value: str | None) -> None:
        assert value, name
        self.secrets[f"{name}#{len(self.secrets)}"] = value

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)

    def cookies(self, response: httpx.Response) -> None:
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for morsel in jar.values():
                if morsel.value:
                    self.secret(f"cookie {morsel.key}", morsel.value)


@pytest.fixture
def json_lines() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("sso_gate")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def _transport(idp: FakeIdP, rec: Recorder) -> httpx.MockTransport:
    """The fake OIDC IdP, a webhook receiver (one that answers, one that fails)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.test":
            if request.url.path == "/token":
                form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
                rec.secret("pkce verifier", form.get("code_verifier"))
                rec.secret("authorization code", form.get("code"))
            response = idp.handle(request)
            if request.url.path == "/token" and response.status_code == 200:
                body = json.loads(response.content)
                rec.secret("id token", body["id_token"])
                rec.secret("access token", body["access_token"])
            return response
        if request.url.host == "hooks.example.com":
            return httpx.Response(200, text="ok")
        return httpx.Response(503, text="down")

    return httpx.MockTransport(handle)


async def _oidc(c: httpx.AsyncClient, idp: FakeIdP, conn_id: str, rec: Recorder) -> None:
    async def start() -> tuple[str, dict[str, str]]:
        r = await c.get("/sso-gate/sso/authorize", params={"email": "alice@acme.test"})
        assert r.status_code == 303, r.text
        rec.cookies(r)
        code, params = idp.accept(r.headers["location"])
        rec.secret("state", params["state"])
        rec.secret("nonce", params["nonce"])
        rec.secret("code", code)
        return code, params

    def callback(code: str, state: str) -> str:
        q = httpx.QueryParams({"code": code, "state": state, "iss": idp.issuer})
        return f"/sso-gate/sso/oidc/{conn_id}/callback?{q}"

    # success: a session
    code, params = await start()
    r = await c.get(callback(code, params["state"]))
    assert r.status_code == 303, r.text
    rec.cookies(r)
    session = c.cookies.get("sso_gate_session")
    assert session
    assert (await c.get("/sso-gate/sso/me")).status_code == 200
    assert (await c.get("/")).json()["sso_user"] == "alice@acme.test"
    # replayed callback, forged state, refused client secret, a token signed by another key
    r = await c.get(callback(code, params["state"]))
    assert r.status_code >= 400
    code, params = await start()
    assert (await c.get(callback(code, "forged-" + secrets.token_urlsafe(16)))).status_code >= 400
    code, params = await start()
    right = idp.client_secret
    idp.client_secret = "another-" + secrets.token_urlsafe(8)
    rec.secret("other client secret", idp.client_secret)
    assert (await c.get(callback(code, params["state"]))).status_code >= 400
    idp.client_secret = right
    code, params = await start()
    saved, idp.key = idp.key, new_key("k1")  # same kid, another key: the signature fails
    assert (await c.get(callback(code, params["state"]))).status_code >= 400
    idp.key = saved
    # logout (same origin) revokes the session; the old cookie is then refused
    r = await c.post("/sso-gate/sso/logout", headers={"Origin": BASE, "Accept": "application/json"})
    assert r.status_code == 200, r.text
    c.cookies.set("sso_gate_session", session, domain="app.test")
    assert (await c.get("/sso-gate/sso/me")).status_code == 401
    c.cookies.clear()


async def _saml(
    c: httpx.AsyncClient, gate: SSOGate, conn_id: str, idp: FakeSamlIdP, rec: Recorder
) -> None:
    urls = gate.connections.saml_urls(conn_id)
    acs, audience = urls["acs_url"], urls["sp_metadata_url"]

    async def start() -> str:
        r = await c.get("/sso-gate/sso/authorize", params={"connection": conn_id})
        assert r.status_code == 303, r.text
        rec.cookies(r)
        q = parse_qs(urlsplit(r.headers["location"]).query)
        xml = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15)
        return str(etree.fromstring(xml).get("ID"))

    def response(request_id: str, signer: FakeSamlIdP, **kw: Any) -> str:
        args = {"acs_url": acs, "audience": audience, "name_id": "erin@initech.test"} | kw
        assertion = signer.signed_assertion(in_response_to=request_id, **args)
        for sig in assertion.iter("{http://www.w3.org/2000/09/xmldsig#}SignatureValue"):
            rec.secret("saml signature", (sig.text or "").strip())
        encoded = encode(signer.response(assertion, acs_url=acs, in_response_to=request_id))
        rec.secret("SAMLResponse", encoded)
        return encoded

    async def post(saml_response: str) -> httpx.Response:
        return await c.post(
            f"/sso-gate/sso/saml/{conn_id}/acs",
            data={"SAMLResponse": saml_response, "RelayState": "relay"},
        )

    ok = response(await start(), idp)
    r = await post(ok)
    assert r.status_code == 303, r.text
    rec.secret("completion token", parse_qs(urlsplit(r.headers["location"]).query)["token"][0])
    r = await c.get(r.headers["location"])
    assert r.status_code == 303, r.text
    rec.cookies(r)
    assert (await post(ok)).status_code >= 400  # replay
    other_audience = response(await start(), idp, audience="https://other.test")
    assert (await post(other_audience)).status_code >= 400
    assert (await post(response(await start(), FakeSamlIdP()))).status_code >= 400  # wrong key
    assert (await post(base64.b64encode(b"<not-xml").decode())).status_code >= 400
    c.cookies.clear()


async def test_no_secret_in_logs_or_error_responses(
    database_url: str, caplog: pytest.LogCaptureFixture, json_lines: list[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="sso_gate")
    rec = Recorder()
    idp = FakeIdP()
    keys = (Secret("k1-" + secrets.token_urlsafe(24)), Secret("k0-" + secrets.token_urlsafe(24)))
    settings = make_settings(
        database_url,
        secret_keys=keys,
        metrics_token=Secret(METRICS_TOKEN),
        allow_private_urls=True,
        webhook_retry_schedule=(0.0,),
    )
    gate = SSOGate(settings, http_client=httpx.AsyncClient(transport=_transport(idp, rec)))
    await gate.migrate()
    for key in keys:
        rec.secret("secret key", key.reveal())
    rec.secret("admin api key", ADMIN_KEY)
    rec.secret("metrics token", METRICS_TOKEN)
    rec.secret("client secret", idp.client_secret)

    acme = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    oidc = await gate.connections.create_oidc(
        acme.id, issuer=idp.issuer, client_id=idp.client_id, client_secret=idp.client_secret
    )
    initech = await gate.organizations.create("Initech", domains=["initech.test"])

    c = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())),
        base_url=BASE,
        event_hooks={"response": [rec.hook]},
    )
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        await _oidc(c, idp, oidc.id, rec)

        saml_idp = FakeSamlIdP()
        saml = await gate.connections.create_saml(initech.id, metadata_xml=saml_idp.metadata())
        assert saml.saml is not None
        rec.secret("sp private key", saml.saml.sp_private_key.reveal())
        await _saml(c, gate, saml.id, saml_idp, rec)

        # management API: wrong and missing keys, then the right one
        wrong = "wrong-" + secrets.token_urlsafe(24)
        rec.secret("wrong admin key", wrong)
        for headers in ({"Authorization": f"Bearer {wrong}"}, {"Authorization": wrong}, {}):
            assert (await c.get("/sso-gate/api/organizations", headers=headers)).status_code == 401

        # SCIM: right, wrong, rotated and revoked tokens
        r = await c.post(
            "/sso-gate/api/directories", json={"organization_id": acme.id}, headers=admin
        )
        assert r.status_code == 201, r.text
        directory = r.json()
        rec.secret("scim token", directory["bearer_token"])
        base = f"/sso-gate/scim/v2/{directory['id']}"
        bearer = {"Authorization": f"Bearer {directory['bearer_token']}"}
        user = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bob@acme.test",
            "password": "pa55-" + secrets.token_urlsafe(12),
            "active": True,
        }
        rec.secret("scim password", user["password"])
        r = await c.post(f"{base}/Users", json=user, headers=bearer)
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        assert (await c.post(f"{base}/Users", json=user, headers=bearer)).status_code == 409
        wrong_scim = "scim-" + secrets.token_urlsafe(24)
        rec.secret("wrong scim token", wrong_scim)
        for auth in (f"Bearer {wrong_scim}", wrong_scim, f"Basic {wrong_scim}"):
            r = await c.get(f"{base}/Users", headers={"Authorization": auth})
            assert r.status_code == 401
        r = await c.post(f"/sso-gate/api/directories/{directory['id']}/rotate_token", headers=admin)
        assert r.status_code == 200, r.text
        rotated = r.json()["bearer_token"]
        rec.secret("rotated scim token", rotated)
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        }
        r = await c.patch(
            f"{base}/Users/{uid}", json=patch, headers={"Authorization": f"Bearer {rotated}"}
        )
        assert r.status_code == 200, r.text
        r = await c.post(
            f"/sso-gate/api/directories/{directory['id']}/revoke_tokens", headers=admin
        )
        assert r.status_code < 300, r.text
        r = await c.get(f"{base}/Users", headers={"Authorization": f"Bearer {rotated}"})
        assert r.status_code == 401

        # webhooks: create, rotate, deliver (one receiver answers, one fails)
        for url in ("https://hooks.example.com/in", "https://down.example.com/in"):
            r = await c.post(
                "/sso-gate/api/webhook_endpoints", json={"url": url, "events": ["*"]}, headers=admin
            )
            assert r.status_code == 201, r.text
            rec.secret("webhook secret", r.json()["secret"])
            rec.secret("webhook secret body", r.json()["secret"].removeprefix("whsec_"))
            eid = r.json()["id"]
            r = await c.post(f"/sso-gate/api/webhook_endpoints/{eid}/rotate_secret", headers=admin)
            assert r.status_code == 200, r.text
            rec.secret("rotated webhook secret", r.json()["secret"])
        await c.post("/sso-gate/api/organizations", json={"name": "Hooli"}, headers=admin)
        await gate.worker.drain()
        await gate.worker.drain()

        # portal link: used, then reused (410) — and a made-up one
        r = await c.post(
            "/sso-gate/api/portal/links",
            json={"organization_id": acme.id, "intent": "sso"},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        link = r.json()["link"]
        rec.secret("portal link token", link.rsplit("/", 1)[1])
        r = await c.get(link.replace(BASE, ""))
        assert r.status_code == 303, r.text
        rec.cookies(r)
        r = await c.get(r.headers["location"], follow_redirects=True)
        assert r.status_code == 200, r.text
        c.cookies.clear()
        assert (await c.get(link.replace(BASE, ""))).status_code == 410
        made_up = secrets.token_urlsafe(32)
        rec.secret("made-up portal token", made_up)
        assert (await c.get(f"/sso-gate/portal/l/{made_up}")).status_code == 410

        # metrics with a wrong token; with the right one
        wrong_metrics = "metrics-" + secrets.token_urlsafe(24)
        rec.secret("wrong metrics token", wrong_metrics)
        r = await c.get("/sso-gate/metrics", headers={"Authorization": f"Bearer {wrong_metrics}"})
        assert r.status_code == 401
        r = await c.get("/sso-gate/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert r.status_code == 200
        metrics_text = r.text
    finally:
        await c.aclose()
        await gate.aclose()

    # readiness of a database whose URL carries a password
    password = "pg-" + secrets.token_urlsafe(16)
    rec.secret("database password", password)
    down = SSOGate(make_settings(f"postgresql://app:{password}@127.0.0.1:1/db"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=down.wrap(inner_app())),
        base_url=BASE,
        event_hooks={"response": [rec.hook]},
    ) as dc:
        r = await dc.get("/sso-gate/readyz")
        assert r.status_code == 503
        r = await dc.get("/sso-gate/api/organizations", headers=admin)
        assert r.status_code == 503
    await down.aclose()

    # -- the search ------------------------------------------------------------------------------
    records = caplog.records
    assert records, "nothing was logged: the capture is not working"
    assert any(rec_.name == "sso_gate.access" for rec_ in records)
    failures = [r.getMessage() for r in records if r.name == "sso_gate.sso"]
    assert len(failures) >= 7 and all(m.startswith("sign-in failed on conn_") for m in failures)
    logged = "\n".join(
        [caplog.text, *json_lines]
        + [f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in records]
    )
    errors = [r for r in rec.responses if r.status_code >= 400]
    assert len(errors) >= 20
    texts = {"logs": logged, "metrics": metrics_text}
    for i, r in enumerate(errors):
        texts[f"error response {i} {r.request.method} {r.request.url.path} {r.status_code}"] = (
            r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        )
    leaks = [
        f"{name} in {where}"
        for name, secret in rec.secrets.items()
        for where, text in texts.items()
        if secret in text
    ]
    assert leaks == []
    assert len(rec.secrets) >= 30
