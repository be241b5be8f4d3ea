"""Helpers of the portal SSO tests: a gate wired to the in-process fake IdPs, and a browser-like
walk through the SSO pages (create a connection, give the IdP's side, run a test sign-in)."""

from __future__ import annotations

import base64
import html
import re
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from lxml import etree

from sso_gate import SSOGate
from tests.conftest import make_settings
from tests.fakes.idp import ISSUER, FakeIdP
from tests.fakes.saml_idp import FakeSamlIdP, encode
from tests.portal.conftest import FakeDNS, PortalEnv

META_URL = "https://idp.example.test/metadata.xml"
DOWN_URL = "https://down.example.test/metadata.xml"
BAD_ISSUER = "https://bad-discovery.test"
P = "/sso-gate/portal"


@dataclass
class SsoEnv:
    penv: PortalEnv
    saml_idp: FakeSamlIdP
    oidc_idp: FakeIdP
    served: dict[str, str]
    logins: list[Any] = field(default_factory=list)

    @property
    def gate(self) -> SSOGate:
        return self.penv.gate

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if request.url.host == "idp.test":
            return self.oidc_idp.handle(request)
        if url in self.served:
            return httpx.Response(200, text=self.served[url])
        if request.url.host == "down.example.test":
            raise httpx.ConnectError("connection refused", request=request)
        if url.startswith(BAD_ISSUER):
            return httpx.Response(200, json={"issuer": BAD_ISSUER})
        return httpx.Response(404)


@asynccontextmanager
async def sso_env(database_url: str) -> AsyncIterator[SsoEnv]:
    """A gate whose HTTP client reaches the fake OIDC IdP and serves SAML metadata URLs."""
    saml_idp, oidc_idp = FakeSamlIdP(), FakeIdP()
    env = SsoEnv(None, saml_idp, oidc_idp, {META_URL: saml_idp.metadata()})  # type: ignore[arg-type]
    gate = SSOGate(
        make_settings(database_url, allow_private_urls=True),
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(env.handle)),
    )
    await gate.migrate()
    org = await gate.organizations.create("Acme", domains=["acme.test"])
    other = await gate.organizations.create("Globex", ["globex.test"])
    env.penv = PortalEnv(gate, org, other, FakeDNS())

    @gate.on_login
    def hook(profile: Any, request: Any) -> None:
        env.logins.append(profile)

    try:
        yield env
    finally:
        await gate.aclose()


def location(r: httpx.Response) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    return r.headers["location"]


async def new_connection(
    client: httpx.AsyncClient, env: SsoEnv, setup: str = "okta:saml"
) -> tuple[str, httpx.Response]:
    page = await client.get(f"{P}/sso")
    if page.status_code == 401:  # one portal link per client (links are rate limited)
        page = await env.penv.open(client, "sso")
    target = location(await env.penv.post(client, "/sso/new", page, setup=setup))
    return target.rsplit("/", 1)[-1], await client.get(target)


async def save_saml(
    client: httpx.AsyncClient, env: SsoEnv, conn_id: str, page: httpx.Response, **data: str
) -> httpx.Response:
    data = data or {"source": "xml", "metadata_xml": env.saml_idp.metadata()}
    r = await env.penv.post(client, f"/sso/{conn_id}/metadata", page, **data)
    return await client.get(location(r)) if r.status_code == 303 else r


def start_link(page: httpx.Response) -> str:
    match = re.search(r'href="([^"]+/test\?t=[^"]+)"', page.text)
    assert match, page.text[:3000]
    return html.unescape(match.group(1))


async def saml_test(
    client: httpx.AsyncClient, env: SsoEnv, conn_id: str, page: httpx.Response, **kw: Any
) -> httpx.Response:
    """Click "Test sign-in", let the fake IdP answer, follow to the result page."""
    query = parse_qs(urlsplit(location(await client.get(start_link(page)))).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    rid = etree.fromstring(xml).get("ID")
    conn = await env.gate.connections.get(conn_id)
    assert conn.saml is not None
    acs = env.gate.connections.saml_urls(conn_id)["acs_url"]
    args = {"acs_url": acs, "audience": conn.saml.sp_entity_id, "in_response_to": rid} | kw
    response = env.saml_idp.response(
        env.saml_idp.signed_assertion(**args), acs_url=acs, in_response_to=rid
    )
    r = await client.post(
        f"/sso-gate/sso/saml/{conn_id}/acs",
        data={"SAMLResponse": encode(response), "RelayState": "x"},
    )
    target = location(r)
    assert target.startswith(f"{P}/sso/test/") and "set-cookie" not in r.headers
    return await client.get(target)


async def oidc_test(
    client: httpx.AsyncClient, env: SsoEnv, conn_id: str, page: httpx.Response
) -> httpx.Response:
    code, params = env.oidc_idp.accept(location(await client.get(start_link(page))))
    query = urlencode({"code": code, "state": params["state"], "iss": ISSUER})
    r = await client.get(f"/sso-gate/sso/oidc/{conn_id}/callback?{query}")
    assert location(r).startswith(f"{P}/sso/test/") and "sso_gate_session" not in str(r.headers)
    return await client.get(location(r))


def check_row(page: httpx.Response, key: str) -> str:
    match = re.search(rf'<div class="check" data-check="{key}".*?</dl>', page.text, re.S)
    assert match, page.text[:4000]
    return match.group(0)
