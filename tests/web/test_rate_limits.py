"""Abuse controls: every protected surface answers 429 + Retry-After over its limit, in the form
its caller reads (HTML page, JSON, SCIM error), and recovers once the window has passed.

Time is a fake clock injected into the limiter: nothing sleeps.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from sso_gate import SSOGate
from sso_gate.models import Connection, Organization
from sso_gate.store.ratelimit import MemoryRateLimiter, RedisRateLimiter
from sso_gate.web._ratelimit import RateLimits
from tests.conftest import ADMIN_KEY, REDIS_URL, make_settings
from tests.fakes.idp import FakeIdP
from tests.web.conftest import BASE, inner_app

pytestmark = pytest.mark.anyio

ALICE = "198.51.100.7"
BOB = "198.51.100.8"
API = {"Authorization": f"Bearer {ADMIN_KEY}"}
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    gate: SSOGate
    app: Any
    clock: FakeClock
    idp: FakeIdP
    org: Organization
    conn: Connection
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def client(self, ip: str = ALICE) -> httpx.AsyncClient:
        """A client whose connection comes from ``ip`` (the ASGI ``client``)."""
        if ip not in self.clients:
            transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
            self.clients[ip] = httpx.AsyncClient(transport=transport, base_url=BASE)
        return self.clients[ip]

    async def aclose(self) -> None:
        for c in self.clients.values():
            await c.aclose()
        await self.gate.aclose()


async def make_env(database_url: str, **settings: Any) -> Env:
    idp = FakeIdP()
    clock = FakeClock()
    gate = SSOGate(
        make_settings(database_url, **settings),
        http_client=idp.client(),
        rate_limiter=MemoryRateLimiter(clock=clock),
    )
    await gate.migrate()
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    conn = await gate.connections.create_oidc(
        org.id, issuer=idp.issuer, client_id=idp.client_id, client_secret=idp.client_secret
    )
    return Env(gate, gate.wrap(inner_app()), clock, idp, org, conn)


@pytest.fixture
async def env_factory(database_url: str) -> AsyncIterator[Any]:
    made: list[Env] = []

    async def factory(**settings: Any) -> Env:
        e = await make_env(database_url, **settings)
        made.append(e)
        return e

    yield factory
    for e in made:
        await e.aclose()


def assert_429(r: httpx.Response, retry_after: int) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == str(retry_after)


# -- login interception -------------------------------------------------------------------------


async def test_intercepted_login_post_is_limited_per_ip(env_factory: Any) -> None:
    env = await env_factory(rate_limit_login="3/minute")
    c = env.client()
    for _ in range(3):
        r = await c.post("/login", data={"email": "alice@acme.test", "password": "x"})
        assert r.status_code == 303  # to the IdP
    r = await c.post("/login", data={"email": "alice@acme.test", "password": "x"})
    assert_429(r, 20)  # 3/minute: one more every 20 s
    assert r.headers["content-type"].startswith("text/html")
    assert "Too many requests" in r.text and "rate_limited" in r.text
    # an XHR/JSON login gets JSON
    r = await c.post("/login", json={"email": "alice@acme.test"})
    assert_429(r, 20)
    assert r.json() == {
        "code": "rate_limited",
        "message": "too many sign-in attempts from this address; try again in 20 seconds",
        "retry_after": 20,
    }
    env.clock.now += 20
    r = await c.post("/login", data={"email": "alice@acme.test", "password": "x"})
    assert r.status_code == 303
    env.clock.now += 60  # a whole window: the whole burst is back
    for _ in range(3):
        r = await c.post("/login", data={"email": "alice@acme.test", "password": "x"})
        assert r.status_code == 303


async def test_password_logins_are_never_limited(env_factory: Any) -> None:
    """A login of a non-SSO domain passes through to the app untouched, limits or not."""
    env = await env_factory(rate_limit_login="1/hour", rate_limit_org="1/hour")
    c = env.client()
    for _ in range(10):
        r = await c.post("/login", data={"email": "bob@example.com", "password": "pw"})
        assert r.status_code == 200 and r.json()["app_login"] is True
    limiter: Any = env.gate.rate_limiter
    assert len(limiter) == 0  # nothing was even counted


async def test_different_ips_are_independent(env_factory: Any) -> None:
    env = await env_factory(rate_limit_login="2/minute")
    for _ in range(2):
        assert (await env.client(ALICE).get(authorize())).status_code == 303
    assert_429(await env.client(ALICE).get(authorize()), 30)
    assert (await env.client(BOB).get(authorize())).status_code == 303
    # an IPv6 client counts as its /64
    assert (await env.client("2001:db8:1:2::1").get(authorize())).status_code == 303
    assert (await env.client("2001:db8:1:2::ffff").get(authorize())).status_code == 303
    assert_429(await env.client("2001:db8:1:2:aaaa::9").get(authorize()), 30)
    assert (await env.client("2001:db8:1:3::1").get(authorize())).status_code == 303


def authorize(**query: str) -> str:
    from urllib.parse import urlencode

    return "/sso-gate/sso/authorize?" + urlencode(query or {"email": "alice@acme.test"})


# -- authorize, callback, ACS -------------------------------------------------------------------


async def test_authorize_is_limited_html_or_json(env_factory: Any) -> None:
    env = await env_factory(rate_limit_login="2/minute")
    c = env.client()
    assert (await c.get(authorize())).status_code == 303
    assert (await c.get(authorize(organization=env.org.id))).status_code == 303
    r = await c.get(authorize(connection=env.conn.id))
    assert_429(r, 30)
    assert r.headers["content-type"].startswith("text/html")
    r = await c.get(authorize(), headers={"Accept": "application/json"})
    assert_429(r, 30)
    assert r.json()["code"] == "rate_limited" and r.json()["retry_after"] == 30
    env.clock.now += 30
    assert (await c.get(authorize())).status_code == 303


async def test_oidc_callback_is_limited(env_factory: Any) -> None:
    env = await env_factory(rate_limit_callback="2/minute")
    c = env.client()
    url = f"/sso-gate/sso/oidc/{env.conn.id}/callback?code=x&state=forged"
    for _ in range(2):
        assert (await c.get(url)).status_code == 400  # counted, whatever the outcome
    r = await c.get(url)
    assert_429(r, 30)
    assert "Too many requests" in r.text
    # a real sign-in is refused too while over the limit, and completes after the wait
    start = await c.get(authorize())
    code, params = env.idp.accept(start.headers["location"])
    done = f"/sso-gate/sso/oidc/{env.conn.id}/callback?code={code}&state={params['state']}"
    done += f"&iss={env.idp.issuer}"
    assert_429(await c.get(done), 30)
    env.clock.now += 30
    r = await c.get(done)
    assert r.status_code == 303 and "sso_gate_session=" in r.headers["set-cookie"]


async def test_saml_acs_is_limited(env_factory: Any) -> None:
    env = await env_factory(rate_limit_callback="2/minute")
    c = env.client()
    url = "/sso-gate/sso/saml/conn_unknown/acs"
    for _ in range(2):
        r = await c.post(url, data={"SAMLResponse": "PHg+", "RelayState": "r"})
        assert r.status_code != 429
    r = await c.post(url, data={"SAMLResponse": "PHg+", "RelayState": "r"})
    assert_429(r, 30)
    assert r.headers["content-type"].startswith("text/html")
    env.clock.now += 30
    r = await c.post(url, data={"SAMLResponse": "PHg+", "RelayState": "r"})
    assert r.status_code != 429


async def test_organization_limit_is_independent_of_ip(env_factory: Any) -> None:
    """One organization's sign-ins from many addresses share one bucket (start and finish);
    another organization is not affected."""
    env = await env_factory(rate_limit_org="4/minute")
    other = await env.gate.organizations.create("Globex", domains=["globex.test"])
    await env.gate.connections.create_oidc(
        other.id,
        issuer=env.idp.issuer,
        client_id=env.idp.client_id,
        client_secret=env.idp.client_secret,
    )
    ips = [f"203.0.113.{i}" for i in range(1, 6)]
    assert (await env.client(ips[0]).get(authorize())).status_code == 303
    assert (await env.client(ips[1]).get(authorize(organization=env.org.id))).status_code == 303
    r = await env.client(ips[2]).post("/login", data={"email": "carol@acme.test"})
    assert r.status_code == 303  # an intercepted login counts for its organization too
    cb = f"/sso-gate/sso/oidc/{env.conn.id}/callback?code=x&state=forged"
    assert (await env.client(ips[3]).get(cb)).status_code == 400
    r = await env.client(ips[4]).get(authorize(connection=env.conn.id))
    assert_429(r, 15)
    assert "for this organization" in r.text
    r = await env.client(ips[4]).post("/login", json={"email": "dave@acme.test"})
    assert_429(r, 15)
    assert_429(await env.client(ips[4]).get(cb), 15)
    # another organization, from the same addresses
    assert (await env.client(ips[4]).get(authorize(email="x@globex.test"))).status_code == 303
    env.clock.now += 15
    assert (await env.client(ips[4]).get(authorize())).status_code == 303


# -- X-Forwarded-For --------------------------------------------------------------------------


async def test_forwarded_for_is_honoured_only_from_trusted_proxies(env_factory: Any) -> None:
    env = await env_factory(rate_limit_login="1/minute", trusted_proxies=("10.0.0.0/8",))
    proxy = env.client("10.0.0.5")
    for client_ip in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        r = await proxy.get(authorize(), headers={"X-Forwarded-For": client_ip})
        assert r.status_code == 303, client_ip  # each client its own bucket
    r = await proxy.get(authorize(), headers={"X-Forwarded-For": "203.0.113.1"})
    assert_429(r, 60)
    # a hop list: the rightmost address that is not a trusted proxy is the client
    r = await proxy.get(authorize(), headers={"X-Forwarded-For": "198.51.100.99, 203.0.113.4"})
    assert r.status_code == 303
    # an untrusted peer's header is ignored: its own address is counted, whatever it claims
    direct = env.client("192.0.2.10")
    r = await direct.get(authorize(), headers={"X-Forwarded-For": "203.0.113.50"})
    assert r.status_code == 303
    r = await direct.get(authorize(), headers={"X-Forwarded-For": "203.0.113.51"})
    assert_429(r, 60)


# -- SCIM ---------------------------------------------------------------------------------------


async def test_scim_is_limited_per_directory_with_a_scim_error(env_factory: Any) -> None:
    env = await env_factory(rate_limit_scim="2/second", rate_limit_scim_ip="off")
    d1, t1 = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    d2, t2 = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    c = env.client()
    h1 = {"Authorization": f"Bearer {t1}"}
    h2 = {"Authorization": f"Bearer {t2}"}
    for _ in range(2):
        assert (await c.get(f"/sso-gate/scim/v2/{d1.id}/Users", headers=h1)).status_code == 200
    r = await c.get(f"/sso-gate/scim/v2/{d1.id}/Users", headers=h1)
    assert_429(r, 1)
    assert r.headers["content-type"] == "application/scim+json"
    body = r.json()
    assert body["schemas"] == [SCIM_ERROR] and body["status"] == "429"
    assert "SCIM requests for this directory" in body["detail"]
    # the same caller, another directory: its own bucket; even from other addresses d1 is full
    assert (await c.get(f"/sso-gate/scim/v2/{d2.id}/Users", headers=h2)).status_code == 200
    r = await env.client(BOB).post(f"/sso-gate/scim/v2/{d1.id}/Users", headers=h1, json={})
    assert_429(r, 1)
    env.clock.now += 0.5
    assert (await c.get(f"/sso-gate/scim/v2/{d1.id}/Users", headers=h1)).status_code == 200


async def test_scim_is_limited_per_ip(env_factory: Any) -> None:
    env = await env_factory(rate_limit_scim_ip="3/minute")
    d1, t1 = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    d2, t2 = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    c = env.client()
    for d, t in ((d1, t1), (d2, t2), (d1, t1)):
        r = await c.get(f"/sso-gate/scim/v2/{d.id}/Users", headers={"Authorization": f"Bearer {t}"})
        assert r.status_code == 200
    # wrong tokens count too (token guessing), and the answer is a SCIM error
    r = await c.get(f"/sso-gate/scim/v2/{d2.id}/Users", headers={"Authorization": "Bearer nope"})
    assert_429(r, 20)
    assert r.json()["status"] == "429"
    other = env.client(BOB)
    r = await other.get(
        f"/sso-gate/scim/v2/{d2.id}/Users", headers={"Authorization": f"Bearer {t2}"}
    )
    assert r.status_code == 200


# -- management API -----------------------------------------------------------------------------


async def test_api_is_limited_per_ip(env_factory: Any) -> None:
    env = await env_factory(rate_limit_api_ip="2/minute")
    c = env.client()
    assert (await c.get("/sso-gate/api/organizations", headers=API)).status_code == 200
    assert (await c.get("/sso-gate/api/organizations", headers={})).status_code == 401
    r = await c.get("/sso-gate/api/organizations", headers=API)
    assert_429(r, 30)
    assert r.json()["code"] == "rate_limited"
    assert r.headers["content-type"] == "application/json"
    assert (
        await env.client(BOB).get("/sso-gate/api/organizations", headers=API)
    ).status_code == 200
    env.clock.now += 30
    assert (await c.get("/sso-gate/api/organizations", headers=API)).status_code == 200


async def test_api_is_limited_per_key(env_factory: Any) -> None:
    env = await env_factory(rate_limit_api="2/minute", rate_limit_api_ip="off")
    ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert (await env.client(ips[0]).get("/sso-gate/api/organizations", headers=API)).is_success
    assert (await env.client(ips[1]).get("/sso-gate/api/connections", headers=API)).is_success
    r = await env.client(ips[2]).get("/sso-gate/api/organizations", headers=API)
    assert_429(r, 30)
    assert "with this key" in r.json()["message"]
    # another (wrong) key is another bucket: it gets its 401
    r = await env.client(ips[2]).get(
        "/sso-gate/api/organizations", headers={"Authorization": "Bearer wrong-key-0123456789"}
    )
    assert r.status_code == 401
    # the key itself is never kept in clear
    limiter: Any = env.gate.rate_limiter
    assert not any(ADMIN_KEY in k for k in limiter._tats)


# -- portal links ----------------------------------------------------------------------------


async def test_portal_link_redemption_is_limited(env_factory: Any) -> None:
    env = await env_factory(rate_limit_portal="3/minute")
    c = env.client()
    for _ in range(3):
        r = await c.get(f"/sso-gate/portal/l/{secrets.token_urlsafe(32)}")
        assert r.status_code == 410  # guessed tokens
    link = await env.gate.portal.create_link(env.org.id, "sso")
    token = link.link.rsplit("/", 1)[1]
    r = await c.get(f"/sso-gate/portal/l/{token}")
    assert_429(r, 20)
    assert r.headers["content-type"].startswith("text/html")
    # a valid link is refused too while over the limit, and works after the wait
    env.clock.now += 20
    r = await c.get(f"/sso-gate/portal/l/{token}")
    assert r.status_code == 303
    # the rest of the portal is not counted
    for _ in range(5):
        assert (await c.get("/sso-gate/portal/theme.css")).status_code == 200


# -- disabled ---------------------------------------------------------------------------------


async def test_disabled_limits(env_factory: Any) -> None:
    env = await env_factory(rate_limits=False, rate_limit_login="1/hour")
    limits = RateLimits(env.gate)
    sentinel = object()
    assert limits.wrap(sentinel) is sentinel  # type: ignore[arg-type]  # (no wrapper at all)
    c = env.client()
    for _ in range(5):
        assert (await c.get(authorize())).status_code == 303
        r = await c.post("/login", data={"email": "alice@acme.test"})
        assert r.status_code == 303


async def test_single_limit_off(env_factory: Any) -> None:
    env = await env_factory(
        rate_limit_login="0", rate_limit_org="off", rate_limit_callback="1/hour"
    )
    c = env.client()
    for _ in range(5):
        assert (await c.get(authorize())).status_code == 303
    cb = f"/sso-gate/sso/oidc/{env.conn.id}/callback?code=x&state=forged"
    assert (await c.get(cb)).status_code == 400
    assert_429(await c.get(cb), 3600)


# -- Redis: shared by instances; down ---------------------------------------------------------


@pytest.mark.skipif(not REDIS_URL, reason="needs SSO_GATE_TEST_REDIS_URL")
async def test_redis_limits_are_shared_by_two_gates(database_url: str) -> None:
    settings = make_settings(database_url, redis_url=REDIS_URL, rate_limit_api_ip="3/minute")
    gates = [SSOGate(settings), SSOGate(settings)]
    assert all(isinstance(g.rate_limiter, RedisRateLimiter) for g in gates)
    await gates[0].migrate()
    # a random /64 of its own: fresh keys in a reused Redis database
    ip = f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=g.wrap(inner_app()), client=(ip, 1)), base_url=BASE
        )
        for g in gates
    ]
    try:
        codes = [
            (await clients[i % 2].get("/sso-gate/api/organizations", headers=API)).status_code
            for i in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        r = await clients[0].get("/sso-gate/api/organizations", headers=API)
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 20
    finally:
        for c in clients:
            await c.aclose()
        for g in gates:
            await g.aclose()


async def test_redis_down_limits_still_apply_per_instance(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Documented: rate limits fail open to per-instance limits (SCIM and the API keep
    working, still limited); a warning is logged."""
    settings = make_settings(
        database_url, redis_url="redis://127.0.0.1:1/0", rate_limit_api_ip="2/minute"
    )
    gate = SSOGate(settings)
    await gate.migrate()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app()), client=(ALICE, 1)), base_url=BASE
    )
    try:
        codes = [
            (await client.get("/sso-gate/api/organizations", headers=API)).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    finally:
        await client.aclose()
        await gate.aclose()
