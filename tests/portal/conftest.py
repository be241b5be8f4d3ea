"""Portal test helpers: a gate with an app, an organization, and a browser-like client that
opens portal links and submits forms with their CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sso_gate import SSOGate
from sso_gate.models import Organization
from tests.conftest import make_settings
from tests.web.conftest import inner_app

BASE = "http://app.test"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


@dataclass
class FakeDNS:
    records: dict[str, list[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    async def __call__(self, name: str) -> list[str]:
        self.calls.append(name)
        return list(self.records.get(name, []))


@dataclass
class PortalEnv:
    gate: SSOGate
    org: Organization
    other: Organization
    dns: FakeDNS

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.gate.wrap(inner_app()))
        return httpx.AsyncClient(transport=transport, base_url=BASE)

    async def open(
        self, client: httpx.AsyncClient, intent: str, org_id: str | None = None
    ) -> httpx.Response:
        link = await self.gate.portal.create_link(org_id or self.org.id, intent)
        r = await client.get(link.link.replace(BASE, ""))
        assert r.status_code == 303, r.text
        return await client.get(r.headers["location"])

    @staticmethod
    def csrf(page: httpx.Response) -> str:
        match = CSRF.search(page.text)
        assert match, page.text[:500]
        return match.group(1)

    async def post(
        self, client: httpx.AsyncClient, path: str, page: httpx.Response, **data: Any
    ) -> httpx.Response:
        return await client.post(f"/sso-gate/portal{path}", data={"csrf": self.csrf(page), **data})


@pytest.fixture
async def penv(database_url: str) -> AsyncIterator[PortalEnv]:
    gate = SSOGate(make_settings(database_url, allow_private_urls=True))
    await gate.migrate()
    dns = FakeDNS()
    gate.domains.resolver = dns
    org = await gate.organizations.create("Acme")
    other = await gate.organizations.create("Globex", ["globex.test"])
    yield PortalEnv(gate, org, other, dns)
    await gate.aclose()
