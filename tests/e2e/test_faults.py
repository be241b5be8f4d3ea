"""Faults, with real processes: the example app under uvicorn reaches PostgreSQL and Redis
through TCP proxies the test cuts and restores, and its identity providers are HTTP stubs whose
endpoints the test makes fail, hang or trickle (``tests/peers/faults.py``).

* PostgreSQL stopped under traffic: gate endpoints answer 503 ``storage_unavailable`` (never
  500, never a hang), the app's anonymous and password traffic keeps working, nothing is half
  written (every directory user has its event, the audit chain verifies), and everything recovers
  by itself when the database returns, the inline webhook worker included.
* Redis down (refused, then a black hole): sign-in starts, OIDC callbacks and SAML responses fail
  closed with 503 ``onetime_store_unavailable`` within the socket timeout; nothing is lost or
  replayable after it returns.
* An IdP down, hanging or trickling one byte at a time: every call is bounded by
  ``SSO_GATE_HTTP_TIMEOUT``; the last good discovery document and keys are used where that is
  safe (sign-ins keep working while discovery and JWKS are down), a clear 502 otherwise (token
  endpoint down, a new signing key that cannot be fetched); SAML metadata URLs that stop
  answering keep the last good metadata without slowing every sign-in.

Webhook receivers that are down are covered by ``test_webhooks_processes.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa

from sso_gate import SSOGate
from sso_gate._time import isoformat, utcnow
from sso_gate.store.tables import connections as connections_table
from sso_gate.store.tables import directory_users, webhook_deliveries
from sso_gate.store.tables import events as events_table

from ..conftest import POSTGRES_URL, REDIS_URL, _reset_postgres
from ..fakes.idp import FakeIdP, new_key
from ..fakes.saml_idp import FakeSamlIdP, encode
from ..peers.faults import FaultLoop, HttpStub, TcpProxy
from .conftest import AppStack, _stop, _wait_ready, app_env, free_port, need, start_app
from .test_multi_instance import _request_id
from .test_webhooks_processes import FAST_RETRIES, Receiver, db_rows, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.postgres]

HTTP_TIMEOUT = 1.0  # SSO_GATE_HTTP_TIMEOUT of the app under test
DB_TIMEOUT = 2.0  # SSO_GATE_DATABASE_TIMEOUT
ADMIN_KEY = "faults-admin-key-" + secrets.token_hex(8)
JSON = {"accept": "application/json"}
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BOB = {"email": "bob@example.com", "password": "correct horse battery staple"}
METADATA_PATH = "/saml/metadata"


def _proxied(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = (parts.username + "@" if parts.username else "") + f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class FaultStack:
    app: AppStack
    direct_env: dict[str, str]  # the same gate, straight to PostgreSQL (for the test's checks)
    pg: TcpProxy
    redis: TcpProxy
    idp: FakeIdP
    idp_stub: HttpStub
    cold_idp: FakeIdP  # its issuer is never fetched before the test that uses it
    cold_stub: HttpStub
    saml_idp: FakeSamlIdP
    receiver: Receiver
    ids: dict[str, str] = field(default_factory=dict)

    def scim(self, path: str) -> str:
        return self.app.url(f"/sso-gate/scim/v2/{self.ids['directory']}{path}")

    @property
    def scim_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.ids['scim_token']}",
            "Content-Type": "application/scim+json",
        }

    def callback_for(self, authorization_url: str, email: str) -> str:
        """The user signs in at the (fake) IdP: the callback URL it redirects to."""
        self.idp.email = email
        code, params = self.idp.accept(authorization_url)
        query = urlencode({"code": code, "state": params["state"], "iss": self.idp.issuer})
        return f"{params['redirect_uri']}?{query}"


async def _seed(st: FaultStack) -> None:
    gate = SSOGate.from_env(st.direct_env)
    try:
        await gate.migrate()
        acme = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
        conn = await gate.connections.create_oidc(
            acme.id,
            issuer=st.idp.issuer,
            client_id=st.idp.client_id,
            client_secret=st.idp.client_secret,
        )
        directory, token = await gate.directories.create(acme.id)
        globex = await gate.organizations.create(
            "Globex", domains=["globex.test"], sso_policy="required"
        )
        await gate.connections.create_oidc(
            globex.id,
            issuer=st.cold_idp.issuer,
            client_id=st.cold_idp.client_id,
            client_secret=st.cold_idp.client_secret,
        )
        initech = await gate.organizations.create(
            "Initech", domains=["initech.test"], sso_policy="required"
        )
        saml = await gate.connections.create_saml(
            initech.id,
            metadata_url=st.idp_stub.url + METADATA_PATH,
            allow_idp_initiated=True,
            idp_initiated_landing="/dashboard",
        )
        assert saml.saml is not None
        # The metadata was fetched two days ago: the next sign-in refreshes it.
        async with gate._rt.transaction() as db:
            row = (
                await db.execute(
                    sa.select(connections_table).where(connections_table.c.id == saml.id)
                )
            ).one()
            config = dict(row.config)
            config["saml"] = {
                **config["saml"],
                "metadata_refreshed_at": isoformat(utcnow() - timedelta(days=2)),
            }
            await db.execute(
                connections_table.update()
                .where(connections_table.c.id == saml.id)
                .values(config=config)
            )
        await gate.webhooks.create(st.receiver.url, ["dsync.user.created"])
        st.ids.update(
            acme_org=acme.id,
            acme_conn=conn.id,
            directory=directory.id,
            scim_token=token,
            saml_conn=saml.id,
            sp_entity_id=saml.saml.sp_entity_id,
        )
    finally:
        await gate.aclose()


@pytest.fixture(scope="module")
def st(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    need(POSTGRES_URL and REDIS_URL, "SSO_GATE_TEST_POSTGRES_URL and SSO_GATE_TEST_REDIS_URL")
    assert POSTGRES_URL is not None and REDIS_URL is not None
    _reset_postgres(POSTGRES_URL)
    workdir = tmp_path_factory.mktemp("faults")
    loop = FaultLoop()
    pg_parts, redis_parts = urlsplit(POSTGRES_URL), urlsplit(REDIS_URL)
    pg = TcpProxy(loop, pg_parts.hostname or "127.0.0.1", pg_parts.port or 5432)
    redis = TcpProxy(loop, redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379)
    saml_idp = FakeSamlIdP()
    idp, cold_idp = FakeIdP(), FakeIdP()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == METADATA_PATH:
            xml = saml_idp.metadata(sso_url=idp.issuer + "/saml/sso")
            return httpx.Response(200, text=xml, headers={"content-type": "application/xml"})
        return idp.handle(request)

    idp_stub, cold_stub = HttpStub(loop, handle), HttpStub(loop, cold_idp.handle)
    for listener in (pg, redis, idp_stub, cold_stub):
        listener.start()
    idp.issuer, cold_idp.issuer = idp_stub.url, cold_stub.url
    taken = (pg.port, redis.port, idp_stub.port, cold_stub.port)
    app_port = free_port(taken)
    receiver = Receiver(port=free_port((*taken, app_port)), log=workdir / "received.jsonl")
    env = app_env(app_port, _proxied(POSTGRES_URL, pg), _proxied(REDIS_URL, redis))
    env.update(
        SSO_GATE_ADMIN_API_KEY=ADMIN_KEY,
        SSO_GATE_HTTP_TIMEOUT=str(HTTP_TIMEOUT),
        SSO_GATE_DATABASE_TIMEOUT=str(DB_TIMEOUT),
        SSO_GATE_ALLOW_PRIVATE_URLS="true",  # SAML metadata and webhooks on loopback
        SSO_GATE_WEBHOOK_RETRY_SCHEDULE=FAST_RETRIES,
        SSO_GATE_WORKER_POLL_INTERVAL="0.2",
        SSO_GATE_WEBHOOK_TIMEOUT="3",
    )
    direct_env = {**env, "SSO_GATE_DATABASE_URL": POSTGRES_URL, "SSO_GATE_REDIS_URL": REDIS_URL}
    app = AppStack(base_url=env["SSO_GATE_BASE_URL"], env=env, log=workdir / "app.log")
    stack = FaultStack(
        app, direct_env, pg, redis, idp, idp_stub, cold_idp, cold_stub, saml_idp, receiver
    )
    asyncio.run(_seed(stack))
    receiver.start()
    proc = start_app(app)
    try:
        _wait_ready(proc, app)
        yield stack
    finally:
        _stop(proc)
        receiver.stop()
        loop.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15, follow_redirects=False) as c:
        yield c


def session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("sso_gate_session="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


async def start_oidc(client: httpx.AsyncClient, st: FaultStack, email: str) -> str:
    r = await client.post(st.app.url("/login"), data={"email": email, "password": ""})
    assert r.status_code == 303, r.text + st.app.log_tail()
    location = r.headers["location"]
    assert location.startswith(st.idp.issuer + "/authorize?"), location
    return location


async def oidc_login(client: httpx.AsyncClient, st: FaultStack, email: str) -> httpx.Response:
    callback = st.callback_for(await start_oidc(client, st, email), email)
    return await client.get(callback, headers=JSON)


async def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


# -- PostgreSQL ---------------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    started: float
    ended: float
    status: int  # 0: no answer (timeout or transport error)
    code: str | None = None
    name: str | None = None  # the SCIM userName sent


class Traffic:
    """Requests of every kind, one after another, until stopped; every answer recorded."""

    KINDS = ("anonymous", "password", "consumer", "scim", "api", "session")

    def __init__(self, st: FaultStack, cookie: str) -> None:
        self.st = st
        self.cookie = cookie
        self.samples: list[Sample] = []
        self.stop = asyncio.Event()

    async def _one(self, client: httpx.AsyncClient, kind: str, n: int) -> Sample:
        app, name = self.st.app, None
        started = time.monotonic()
        try:
            if kind == "anonymous":
                r = await client.get(app.url("/"))
            elif kind == "password":  # a password login of a domain the gate has cached
                r = await client.post(app.url("/login"), data=BOB)
            elif kind == "consumer":  # gmail.com never needs the database
                r = await client.post(
                    app.url("/login"), data={"email": f"u{n}@gmail.com", "password": "x"}
                )
            elif kind == "scim":
                name = f"traffic{n}@acme.test"
                r = await client.post(
                    self.st.scim("/Users"),
                    headers=self.st.scim_headers,
                    json={"schemas": [SCIM_USER], "userName": name, "active": True},
                )
            elif kind == "api":
                r = await client.get(
                    app.url("/sso-gate/api/organizations"),
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                )
            else:
                r = await client.get(
                    app.url("/sso-gate/sso/me"),
                    headers={"cookie": f"sso_gate_session={self.cookie}"},
                )
        except httpx.HTTPError:
            return Sample(kind, started, time.monotonic(), 0, name=name)
        code = None
        if r.headers.get("content-type", "").startswith(("application/json", "application/scim")):
            body = r.json()
            code = body.get("code") or body.get("detail") if isinstance(body, dict) else None
        return Sample(kind, started, time.monotonic(), r.status_code, code, name)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
            n = 0
            while not self.stop.is_set():
                kind = self.KINDS[n % len(self.KINDS)]
                self.samples.append(await self._one(client, kind, n))
                n += 1
                await asyncio.sleep(0.01)


async def test_postgres_down_under_traffic(st: FaultStack, client: httpx.AsyncClient) -> None:
    signed_in = await oidc_login(client, st, "alice@acme.test")
    assert signed_in.status_code == 303, signed_in.text
    cookie = session_cookie(signed_in)
    assert cookie is not None
    warm = await client.post(st.app.url("/login"), data=BOB)  # example.com: routed, cached
    assert warm.status_code == 303 and warm.headers["location"] == "/dashboard"
    pending = st.callback_for(await start_oidc(client, st, "ann@acme.test"), "ann@acme.test")

    traffic = Traffic(st, cookie)
    runner = asyncio.create_task(traffic.run())
    try:
        await asyncio.sleep(1.0)
        cut_at = time.monotonic()
        await asyncio.to_thread(st.pg.cut)
        cut_done = time.monotonic()
        await asyncio.sleep(0.5)
        # A sign-in that reaches its callback now cannot be written: 503, no session.
        r, took = await timed(client.get(pending, headers=JSON))
        assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
        assert session_cookie(r) is None and took < 3
        # A login of a domain the gate has not seen: it cannot tell whether SSO is required,
        # so it does not guess (a password login could bypass SSO): 503, the app is not called.
        r = await client.post(
            st.app.url("/login"), json={"email": "someone@unseen.test", "password": "x"}
        )
        assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
        await asyncio.sleep(2.0)
        restored_at = time.monotonic()
        await asyncio.to_thread(st.pg.restore)

        def recovered() -> bool:
            return any(
                s.kind == "scim" and s.status == 201 and s.started > restored_at
                for s in traffic.samples
            )

        deadline = time.monotonic() + 10
        while not recovered() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        traffic.stop.set()
        await runner
        await asyncio.to_thread(st.pg.restore)

    samples = traffic.samples
    by_kind = {k: [s for s in samples if s.kind == k] for k in Traffic.KINDS}
    during = [s for s in samples if s.started > cut_at + 0.2 and s.ended < restored_at]
    after = [s for s in samples if s.started > restored_at]
    summary = {k: sorted({s.status for s in v}) for k, v in by_kind.items()}
    print(f"{len(samples)} requests, {len(during)} during the outage; statuses {summary}")
    assert len(during) >= 30, summary
    # Never a 500, a dropped connection or a slow answer.
    assert all(s.status not in (0, 500) for s in samples), st.app.log_tail()
    assert max(s.ended - s.started for s in samples) < 5
    # The app's own traffic does not notice.
    assert {s.status for s in by_kind["anonymous"]} == {200}
    assert {s.status for s in by_kind["password"]} == {303}
    assert {s.status for s in by_kind["consumer"]} == {401}  # the app's wrong-password page
    # The gate's own endpoints: 503 with a clear error while the database is away.
    for s in during:
        # (a session verified less than SSO_GATE_SESSION_CACHE_TTL ago is still served from the
        # cache: 200 is right for it)
        if s.kind in ("scim", "api") or (s.kind == "session" and s.status != 200):
            assert s.status == 503, s
            assert s.code is not None and (
                s.code == "storage_unavailable" or "database is unavailable" in s.code
            ), s
    # ... and by themselves once it is back.
    recovery = min(s.ended for s in after if s.kind == "scim" and s.status == 201) - restored_at
    print(f"recovered {recovery:.2f} s after PostgreSQL returned")
    assert recovery < 3
    for kind, ok in (("scim", 201), ("api", 200), ("session", 200)):
        late = [s for s in after if s.kind == kind and s.started > restored_at + recovery + 0.2]
        assert late and all(s.status == ok for s in late), (kind, late)

    # No partial writes: a user exists iff it was acknowledged (or its answer was lost with the
    # connection), and every user has exactly its one event; the audit chain is intact.
    sent = {s.name: s.status for s in by_kind["scim"] if s.name}
    users = {
        r.user_name: r.id
        for r in await db_rows(
            st.direct_env,
            sa.select(directory_users.c.id, directory_users.c.user_name).where(
                directory_users.c.directory_id == st.ids["directory"]
            ),
        )
    }
    assert all(name in users for name, status in sent.items() if status == 201)
    ambiguous = [n for n, status in sent.items() if status == 503 and n in users]
    print(
        f"{sum(s == 503 for s in sent.values())} SCIM creates refused, {len(ambiguous)} of them committed"
    )
    # (a create whose COMMIT reached PostgreSQL just before its answer was cut: the client was
    # told 503 and retries into a 409, as with any database; only the one in flight can be it)
    in_flight = {s.name for s in by_kind["scim"] if s.started <= cut_done and s.ended >= cut_at}
    assert set(ambiguous) <= in_flight, (ambiguous, in_flight)
    created = await db_rows(
        st.direct_env,
        sa.select(events_table.c.data).where(events_table.c.event == "dsync.user.created"),
    )
    event_users = sorted(r.data["id"] for r in created)
    assert event_users == sorted(users.values())
    gate = SSOGate.from_env(st.direct_env)
    try:
        report = await gate.audit.verify(st.ids["acme_org"])
    finally:
        await gate.aclose()
    assert report.ok, report

    # The inline webhook worker recovered too: every user's event reaches the receiver once.
    def delivered() -> bool:
        rows = asyncio.run(db_rows(st.direct_env, sa.select(webhook_deliveries.c.event_id)))
        return set(st.receiver.accepted_ids()) == {r.event_id for r in rows}

    await asyncio.to_thread(wait_for, delivered, 20, "webhooks after the outage")
    assert max(st.receiver.accepted_ids().values()) == 1


async def test_postgres_partition_is_a_bounded_503(
    st: FaultStack, client: httpx.AsyncClient
) -> None:
    """PostgreSQL stops answering without closing anything (a network partition): more requests
    than the pool holds at once all get their 503 within a few SSO_GATE_DATABASE_TIMEOUTs."""
    api = st.app.url("/sso-gate/api/organizations")
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert (await client.get(api, headers=auth)).status_code == 200
    await asyncio.to_thread(st.pg.blackhole)
    try:
        gate_calls = [timed(client.get(api, headers=auth)) for _ in range(24)]
        app_calls = [timed(client.get(st.app.url("/"))) for _ in range(4)]
        answers = await asyncio.gather(*gate_calls, *app_calls)
    finally:
        await asyncio.to_thread(st.pg.restore)
    gate_answers, app_answers = answers[:24], answers[24:]
    slowest = max(took for _, took in gate_answers)
    messages = Counter(r.json()["message"] for r, _ in gate_answers)
    print(f"partition: 24 gate requests answered 503 within {slowest:.2f} s: {dict(messages)}")
    for r, _ in gate_answers:
        assert r.status_code == 503 and r.json()["code"] == "storage_unavailable", r.text
    # connect or pre-ping (one timeout each), after waiting for a pooled connection (another)
    assert slowest < 3 * DB_TIMEOUT + 1
    assert all(r.status_code == 200 and took < 2 for r, took in app_answers)
    r, took = await timed(client.get(api, headers=auth))
    assert r.status_code == 200 and took < 2, r.text


# -- Redis --------------------------------------------------------------------------------------


def unsolicited_response(st: FaultStack, email: str) -> dict[str, str]:
    acs = st.app.url(f"/sso-gate/sso/saml/{st.ids['saml_conn']}/acs")
    assertion = st.saml_idp.signed_assertion(
        acs_url=acs, audience=st.ids["sp_entity_id"], name_id=email
    )
    return {"SAMLResponse": encode(st.saml_idp.response(assertion, acs_url=acs))}


async def test_redis_down_fails_closed(st: FaultStack, client: httpx.AsyncClient) -> None:
    started = st.callback_for(await start_oidc(client, st, "carol@acme.test"), "carol@acme.test")
    saml_form = unsolicited_response(st, "ivan@initech.test")
    acs = st.app.url(f"/sso-gate/sso/saml/{st.ids['saml_conn']}/acs")
    authorize = st.app.url("/sso-gate/sso/authorize?email=dan@acme.test")

    async def refused(request: Any, bound: float) -> httpx.Response:
        r, took = await timed(request)
        print(f"redis {fault}: {r.status_code} after {took:.2f} s")
        assert r.status_code == 503, r.text
        assert took < bound, f"{took:.1f} s"
        assert session_cookie(r) is None
        return r

    for fault in ("cut", "blackhole"):
        await asyncio.to_thread(getattr(st.redis, fault))
        # Redis refuses at once; a black hole is bounded by the client's socket timeout (2 s).
        bound = 1.5 if fault == "cut" else 3.5
        try:
            r = await refused(client.get(authorize, headers=JSON), bound)
            assert r.json()["code"] == "onetime_store_unavailable", r.text
            assert "Redis" in r.json()["message"]
            if fault == "cut":  # (each check costs the 2 s timeout in the black hole)
                form = await refused(
                    client.post(st.app.url("/login"), data={"email": "dan@acme.test"}), bound
                )
                assert "Service unavailable" in form.text
                assert "onetime_store_unavailable" in form.text
                # The state check cannot run: the callback is refused, not waved through.
                r = await refused(client.get(started, headers=JSON), bound)
                assert r.json()["code"] == "onetime_store_unavailable"
            # The replay check cannot run: a valid assertion is refused, not accepted unchecked.
            r = await refused(client.post(acs, data=saml_form, headers=JSON), bound)
            assert r.json()["code"] == "onetime_store_unavailable"
            # Nothing else depends on Redis.
            assert (await client.get(st.app.url("/"))).status_code == 200
            assert (await client.post(st.app.url("/login"), data=BOB)).status_code == 303
        finally:
            await asyncio.to_thread(st.redis.restore)

    # Back: the sign-in started before the outage was never consumed, so it completes; the
    # assertion refused during the outage is accepted once, then refused as a replay.
    r = await client.get(started, headers=JSON)
    assert r.status_code == 303 and session_cookie(r) is not None, r.text
    r = await client.post(acs, data=saml_form, headers=JSON)
    assert r.status_code == 303, r.text
    r = await client.post(acs, data=saml_form, headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == "assertion_replayed", r.text


# -- identity providers -------------------------------------------------------------------------

DISCOVERY = "/.well-known/openid-configuration"


async def test_idp_down_or_slow_before_first_use_is_a_bounded_clear_error(
    st: FaultStack, client: httpx.AsyncClient
) -> None:
    """Globex's IdP has never been reached: there is nothing to fall back on."""
    authorize = st.app.url("/sso-gate/sso/authorize?email=gina@globex.test")
    stub = st.cold_stub
    await asyncio.to_thread(stub.stop)
    try:
        r, took = await timed(client.get(authorize, headers=JSON))
    finally:
        await asyncio.to_thread(stub.start)
    assert r.status_code == 502 and r.json()["code"] == "idp_unreachable", r.text
    assert "discovery" in r.json()["message"] and took < 1
    for fault, code in (
        ("hang", "idp_timeout"),
        ("trickle", "idp_timeout"),
        ("error", "idp_http_error"),
    ):
        stub.faults[DISCOVERY] = fault
        r, took = await timed(client.get(authorize, headers=JSON))
        print(f"discovery {fault}: {r.status_code} after {took:.2f} s")
        assert r.status_code == 502 and r.json()["code"] == code, (fault, r.text)
        assert took < HTTP_TIMEOUT + 1, f"{fault}: {took:.1f} s"
    stub.faults.clear()
    r = await client.get(authorize)
    assert r.status_code == 303 and r.headers["location"].startswith(stub.url + "/authorize?")


async def test_idp_discovery_and_jwks_down_uses_last_good_token_endpoint_down_is_clear(
    st: FaultStack, client: httpx.AsyncClient
) -> None:
    stub, idp = st.idp_stub, st.idp
    assert (await oidc_login(client, st, "hal@acme.test")).status_code == 303  # warm
    hits = stub.hits.copy()
    stub.faults.update({DISCOVERY: "error", "/jwks": "reset"})
    try:
        # Discovery and keys are known: sign-ins keep working while those endpoints are down.
        r = await oidc_login(client, st, "hal@acme.test")
        assert r.status_code == 303 and session_cookie(r) is not None, r.text
        assert stub.hits[DISCOVERY] == hits[DISCOVERY] and stub.hits["/jwks"] == hits["/jwks"]

        # The token endpoint cannot be cached: down or slow, the callback fails, bounded.
        for fault, code in (
            ("hang", "idp_timeout"),
            ("trickle", "idp_timeout"),
            ("reset", "idp_unreachable"),
        ):
            stub.faults["/token"] = fault
            r, took = await timed(oidc_login(client, st, "hal@acme.test"))
            print(f"token endpoint {fault}: {r.status_code} after {took:.2f} s")
            assert r.status_code == 502 and r.json()["code"] == code, (fault, r.text)
            assert "token" in r.json()["message"] and session_cookie(r) is None
            assert took < HTTP_TIMEOUT + 1.5, f"{fault}: {took:.1f} s"
        del stub.faults["/token"]

        # The IdP signs with a new key while its JWKS is down: the token cannot be checked.
        old = idp.key
        idp.key = new_key("k2-" + secrets.token_hex(4))
        idp.published = [old, idp.key]
        r = await oidc_login(client, st, "hal@acme.test")
        assert r.status_code == 502 and r.json()["code"] == "idp_unreachable", r.text
        assert "JWKS" in r.json()["message"] and session_cookie(r) is None
    finally:
        stub.faults.clear()
    # JWKS back: the new key is fetched (unknown kid) and the sign-in works.
    r = await oidc_login(client, st, "hal@acme.test")
    assert r.status_code == 303 and session_cookie(r) is not None, r.text


async def test_saml_metadata_url_down_keeps_the_last_good_metadata(
    st: FaultStack, client: httpx.AsyncClient
) -> None:
    """The connection's metadata is due for a refresh (fetched two days ago, seeded)."""
    conn = st.ids["saml_conn"]
    authorize = st.app.url(f"/sso-gate/sso/authorize?connection={conn}&return_to=/dashboard")
    st.idp_stub.faults[METADATA_PATH] = "hang"
    try:
        timings = []
        for _ in range(3):
            start, took = await timed(client.get(authorize))
            timings.append(took)
            assert start.status_code == 303, start.text
            assert start.headers["location"].startswith(st.idp.issuer + "/saml/sso?")
            acs = st.app.url(f"/sso-gate/sso/saml/{conn}/acs")
            rid = _request_id(start)
            assertion = st.saml_idp.signed_assertion(
                acs_url=acs,
                audience=st.ids["sp_entity_id"],
                name_id="judy@initech.test",
                in_response_to=rid,
            )
            form = {
                "SAMLResponse": encode(
                    st.saml_idp.response(assertion, acs_url=acs, in_response_to=rid)
                )
            }
            done = await client.post(acs, data=form)
            assert done.status_code == 303, done.text
            signed_in = await client.get(st.app.url(done.headers["location"]))
            assert signed_in.status_code == 303 and session_cookie(signed_in) is not None
        print(
            "sign-in starts while the metadata URL hangs: "
            + ", ".join(f"{t:.2f} s" for t in timings)
        )
        # The first start waited for the refresh (bounded); the next ones do not wait again.
        assert timings[0] < HTTP_TIMEOUT + 1
        assert max(timings[1:]) < 0.5, timings
    finally:
        st.idp_stub.faults.clear()
