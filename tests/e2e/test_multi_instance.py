"""Three instances of the example app (uvicorn processes) sharing PostgreSQL and Redis, with
requests alternating between them as a load balancer without sticky sessions would send them.

All three have the same configuration, including the public ``SSO_GATE_BASE_URL`` (the load
balancer's address, which the IdPs know); the test plays the load balancer by choosing the
instance for each request (:meth:`Cluster.on` rewrites a public URL to one instance).

* an OIDC login (real ``oidc-provider``) started on one instance completes on another, and the
  session is honoured by the third;
* OIDC state is single-use across instances: one callback sent to all three at once signs in
  exactly once;
* a signed SAML response (``FakeSamlIdP``) accepted by one instance is refused as a replay by
  the others, also when all three receive it at once;
* a session revoked by SCIM deprovisioning (``PATCH active=false``) on one instance is refused by
  another within ``SSO_GATE_SESSION_CACHE_TTL`` (+ 1 s), measured;
* every instance runs its inline webhook worker: a real receiver gets each event exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis
import sqlalchemy as sa

from sso_gate import Settings, SSOGate
from sso_gate.store.tables import webhook_attempts, webhook_deliveries

from ..conftest import POSTGRES_URL, REDIS_URL, _reset_postgres
from ..fakes.saml_idp import FakeSamlIdP, encode
from ..peers.oidc_provider import drive_login, run_oidc_provider
from .conftest import (
    AppStack,
    _stop,
    _wait_ready,
    app_env,
    free_port,
    need,
    require_oidc_provider,
    start_app,
)
from .test_webhooks_processes import FAST_RETRIES, Receiver, db_rows, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.e2e, pytest.mark.postgres]

INSTANCES = 3
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADMIN_KEY = "multi-instance-admin-key-" + secrets.token_hex(8)


@dataclass
class Cluster:
    public_url: str  # SSO_GATE_BASE_URL of every instance (the load balancer's address)
    env: dict[str, str]
    instances: list[AppStack]
    receiver: Receiver
    saml_idp: FakeSamlIdP
    acme_org: str = ""
    acme_conn: str = ""
    initech_conn: str = ""  # SAML, SP-initiated
    unsolicited_conn: str = ""  # SAML, IdP-initiated allowed
    directory_id: str = ""
    scim_token: str = ""
    sp_entity_ids: dict[str, str] = field(default_factory=dict)

    def on(self, i: int, url: str) -> str:
        """``url`` (a path, or a URL on the public address) sent to instance ``i``."""
        base = self.instances[i % len(self.instances)].base_url
        if url.startswith(self.public_url):
            return base + url[len(self.public_url) :]
        assert url.startswith("/"), url
        return base + url

    def acs(self, connection_id: str) -> str:
        return f"{self.public_url}/sso-gate/sso/saml/{connection_id}/acs"

    def scim(self, path: str) -> str:
        return f"/sso-gate/scim/v2/{self.directory_id}{path}"

    @property
    def scim_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.scim_token}",
            "Content-Type": "application/scim+json",
        }

    def logs(self) -> str:
        return "\n".join(f"--- {s.base_url}\n{s.log_tail(25)}" for s in self.instances)


async def _seed(cluster: Cluster, provider: str) -> list[dict[str, object]]:
    gate = SSOGate.from_env(cluster.env)
    try:
        await gate.migrate()
        acme = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
        client_secret = secrets.token_urlsafe(24)
        conn = await gate.connections.create_oidc(
            acme.id, issuer=provider, client_id="acme-client", client_secret=client_secret
        )
        cluster.acme_org, cluster.acme_conn = acme.id, conn.id
        directory, token = await gate.directories.create(acme.id)
        cluster.directory_id, cluster.scim_token = directory.id, token

        initech = await gate.organizations.create(
            "Initech", domains=["initech.test"], sso_policy="required"
        )
        for attr, unsolicited in (("initech_conn", False), ("unsolicited_conn", True)):
            saml = await gate.connections.create_saml(
                initech.id,
                metadata_xml=cluster.saml_idp.metadata(),
                allow_idp_initiated=unsolicited,
                idp_initiated_landing="/dashboard",
            )
            assert saml.saml is not None
            setattr(cluster, attr, saml.id)
            cluster.sp_entity_ids[saml.id] = saml.saml.sp_entity_id
        await gate.webhooks.create(cluster.receiver.url, ["*"])
        return [
            {
                "client_id": "acme-client",
                "client_secret": client_secret,
                "redirect_uris": [gate.connections.redirect_uri(conn.id)],
                "token_endpoint_auth_method": "client_secret_basic",
                "id_token_signed_response_alg": "RS256",
            }
        ]
    finally:
        await gate.aclose()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need(POSTGRES_URL and REDIS_URL, "SSO_GATE_TEST_POSTGRES_URL and SSO_GATE_TEST_REDIS_URL")
    assert POSTGRES_URL is not None and REDIS_URL is not None
    require_oidc_provider()
    _reset_postgres(POSTGRES_URL)
    workdir = tmp_path_factory.mktemp("multi-instance")
    ports: list[int] = []
    for _ in range(INSTANCES + 3):
        ports.append(free_port(tuple(ports)))
    public_port, provider_port, receiver_port, *app_ports = ports
    env = app_env(public_port, POSTGRES_URL, REDIS_URL)
    env.update(
        SSO_GATE_ADMIN_API_KEY=ADMIN_KEY,
        SSO_GATE_ALLOW_PRIVATE_URLS="true",  # the webhook receiver is on loopback
        SSO_GATE_WEBHOOK_RETRY_SCHEDULE=FAST_RETRIES,
        SSO_GATE_WORKER_POLL_INTERVAL="0.2",
        SSO_GATE_WEBHOOK_TIMEOUT="3",
    )
    instances = [
        AppStack(base_url=f"http://127.0.0.1:{port}", env=env, log=workdir / f"app-{i}.log")
        for i, port in enumerate(app_ports)
    ]
    receiver = Receiver(port=receiver_port, log=workdir / "received.jsonl")
    c = Cluster(env["SSO_GATE_BASE_URL"], env, instances, receiver, FakeSamlIdP())
    clients = asyncio.run(_seed(c, f"http://127.0.0.1:{provider_port}"))
    receiver.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [start_app(s) for s in instances]  # all three boot (and migrate) at once
        with run_oidc_provider(clients, port=provider_port):
            for proc, stack in zip(procs, instances, strict=True):
                _wait_ready(proc, stack)
            yield c
    finally:
        for proc in procs:
            _stop(proc)
        receiver.stop()


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15, follow_redirects=False) as client:
        yield client


def session_cookie(response: httpx.Response) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("sso_gate_session="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


async def oidc_callback(
    browser: httpx.AsyncClient, cluster: Cluster, email: str, start_on: int
) -> str:
    """Submit the app's login form on instance ``start_on``, log in at the provider and return
    the callback URL (on the public address, not yet requested)."""
    r = await browser.post(
        cluster.on(start_on, "/login?next=/dashboard"), data={"email": email, "password": ""}
    )
    assert r.status_code == 303, r.text
    callback = await drive_login(browser, r.headers["location"], email)
    assert callback.startswith(cluster.public_url + "/sso-gate/sso/oidc/"), callback
    return callback


async def signed_in_as(browser: httpx.AsyncClient, cluster: Cluster, i: int) -> str | None:
    """Who instance ``i``'s app thinks the browser is (SSO only), or None."""
    r = await browser.get(cluster.on(i, "/dashboard"))
    if r.status_code == 303:
        return None
    assert r.status_code == 200, r.text
    found = re.search(r"Signed in as (\S+) with SSO", r.text)
    return found.group(1) if found else None


# -- OIDC ---------------------------------------------------------------------------------------


async def test_oidc_login_started_on_one_instance_completes_on_another(
    cluster: Cluster, browser: httpx.AsyncClient
) -> None:
    email = "alice.smith@acme.test"
    callback = await oidc_callback(browser, cluster, email, start_on=0)
    r = await browser.get(cluster.on(1, callback))
    assert r.status_code == 303, r.text + cluster.logs()
    assert r.headers["location"] == "/dashboard"
    assert session_cookie(r) is not None
    for i in (2, 0, 1):
        assert await signed_in_as(browser, cluster, i) == email
    me = await browser.get(cluster.on(2, "/sso-gate/sso/me"))
    assert me.status_code == 200 and me.json()["profile"]["connection_id"] == cluster.acme_conn


async def test_oidc_state_is_single_use_across_instances(
    cluster: Cluster, browser: httpx.AsyncClient
) -> None:
    callback = await oidc_callback(browser, cluster, "bob.brown@acme.test", start_on=2)
    state = parse_qs(urlsplit(callback).query)["state"][0]
    key = f"sso_gate:oidc_state:{state}"
    assert REDIS_URL is not None
    with redis.Redis.from_url(REDIS_URL) as shared:
        assert shared.exists(key) == 1  # the flow lives in Redis, not in instance 2
        # The same callback reaches all three instances at once (a double-click, a replay
        # racing the browser): exactly one signs in.
        answers = await asyncio.gather(*(browser.get(cluster.on(i, callback)) for i in range(3)))
        assert shared.exists(key) == 0
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [303, 400, 400], [(r.status_code, r.text[:200]) for r in answers]
    for r in answers:
        if r.status_code == 400:
            assert "invalid_state" in r.text and session_cookie(r) is None
    # Later replays, on any instance, too.
    for i in range(3):
        again = await browser.get(cluster.on(i, callback), headers={"accept": "application/json"})
        assert again.status_code == 400 and again.json()["code"] == "invalid_state"


# -- SAML ---------------------------------------------------------------------------------------


def _request_id(start: httpx.Response) -> str:
    """The AuthnRequest ID of an SP-initiated start (redirect or POST binding)."""
    if start.status_code == 303:
        encoded = parse_qs(urlsplit(start.headers["location"]).query)["SAMLRequest"][0]
        xml = zlib.decompress(base64.b64decode(encoded), -15)
    else:
        found = re.search(r'name="SAMLRequest" value="([^"]+)"', start.text)
        assert found, start.text
        xml = base64.b64decode(unescape(found.group(1)))
    match = re.search(rb'ID="([^"]+)"', xml)
    assert match, xml
    return match.group(1).decode()


def saml_response(cluster: Cluster, conn: str, email: str, in_response_to: str | None) -> str:
    idp, acs = cluster.saml_idp, cluster.acs(conn)
    assertion = idp.signed_assertion(
        acs_url=acs,
        audience=cluster.sp_entity_ids[conn],
        name_id=email,
        in_response_to=in_response_to,
    )
    return encode(idp.response(assertion, acs_url=acs, in_response_to=in_response_to))


async def test_saml_login_across_instances_and_replay_refused_by_the_others(
    cluster: Cluster, browser: httpx.AsyncClient
) -> None:
    conn = cluster.initech_conn
    start = await browser.get(
        cluster.on(0, f"/sso-gate/sso/authorize?connection={conn}&return_to=/dashboard")
    )
    assert start.status_code in (200, 303), start.text
    form = {"SAMLResponse": saml_response(cluster, conn, "erin@initech.test", _request_id(start))}
    acs_path = cluster.acs(conn)
    accepted = await browser.post(cluster.on(1, acs_path), data=form)
    assert accepted.status_code == 303, accepted.text + cluster.logs()
    done = await browser.get(cluster.on(2, accepted.headers["location"]))
    assert done.status_code == 303 and session_cookie(done) is not None, done.text
    assert await signed_in_as(browser, cluster, 0) == "erin@initech.test"
    for i in (0, 2, 1):
        replay = await browser.post(
            cluster.on(i, acs_path), data=form, headers={"accept": "application/json"}
        )
        assert replay.status_code == 400, replay.text
        # the request it answers was consumed by instance 1, everywhere
        assert replay.json()["code"] == "unknown_in_response_to"


async def test_saml_assertion_replay_cache_is_shared(cluster: Cluster) -> None:
    """IdP-initiated (no request to consume): only the shared replay cache stops a replay."""
    conn = cluster.unsolicited_conn
    form = {"SAMLResponse": saml_response(cluster, conn, "frank@initech.test", None)}
    acs_path = cluster.acs(conn)
    async with httpx.AsyncClient(timeout=15) as a, httpx.AsyncClient(timeout=15) as b:
        answers = await asyncio.gather(
            *(
                client.post(
                    cluster.on(i, acs_path), data=form, headers={"accept": "application/json"}
                )
                for i, client in enumerate((a, b, a))
            )
        )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [303, 400, 400], [(r.status_code, r.text[:200]) for r in answers]
    for r in answers:
        if r.status_code == 400:
            assert r.json()["code"] == "assertion_replayed" and session_cookie(r) is None
        else:
            assert r.headers["location"] == "/dashboard" and session_cookie(r) is not None


# -- sessions revoked by SCIM -------------------------------------------------------------------


async def test_scim_deprovisioning_on_one_instance_is_refused_by_another_within_the_ttl(
    cluster: Cluster, browser: httpx.AsyncClient
) -> None:
    ttl = Settings.from_env(cluster.env).session_cache_ttl  # the documented delay (default 5 s)
    email = "dave.deprovisioned@acme.test"
    async with httpx.AsyncClient(timeout=15, headers=cluster.scim_headers) as scim:
        created = await scim.post(
            cluster.on(1, cluster.scim("/Users")),
            json={"schemas": [SCIM_USER], "userName": email, "active": True},
        )
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]

        callback = await oidc_callback(browser, cluster, email, start_on=1)
        assert (await browser.get(cluster.on(2, callback))).status_code == 303
        # Instance 0 checks the cookie last, right before the revocation: its cache entry is
        # as fresh as it can be, so it waits the longest.
        assert await signed_in_as(browser, cluster, 0) == email
        revoked_at = time.monotonic()
        patch = await scim.patch(
            cluster.on(1, cluster.scim(f"/Users/{user_id}")),
            json={
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
    assert patch.status_code in (200, 204), patch.text
    # The instance that revoked and one that never cached the cookie refuse at once.
    assert await signed_in_as(browser, cluster, 1) is None
    assert await signed_in_as(browser, cluster, 2) is None
    accepted_for = 0.0
    while await signed_in_as(browser, cluster, 0) is not None:
        accepted_for = time.monotonic() - revoked_at
        assert accepted_for <= ttl + 1, f"instance 0 still accepts {accepted_for:.1f} s later"
        await asyncio.sleep(0.1)
    refused_after = time.monotonic() - revoked_at
    print(f"revocation on instance 1 refused by instance 0 after {refused_after:.2f} s (ttl {ttl})")
    assert refused_after <= ttl + 1
    me = await browser.get(cluster.on(0, "/sso-gate/sso/me"))
    assert me.status_code == 401


# -- webhooks -----------------------------------------------------------------------------------


async def test_inline_workers_in_every_instance_deliver_each_event_once(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(timeout=15, headers=cluster.scim_headers) as scim:

        async def create(n: int) -> None:
            r = await scim.post(
                cluster.on(n, cluster.scim("/Users")),
                json={"schemas": [SCIM_USER], "userName": f"burst{n}@acme.test", "active": True},
            )
            assert r.status_code == 201, r.text

        for batch in range(6):
            await asyncio.gather(*(create(batch * 6 + k) for k in range(6)))

    env = cluster.env
    deliveries = webhook_deliveries.c

    def expected() -> set[str]:
        rows = asyncio.run(db_rows(env, sa.select(deliveries.event_id)))
        return {r.event_id for r in rows}

    await asyncio.to_thread(
        wait_for,
        lambda: set(cluster.receiver.accepted_ids()) == expected(),
        30,
        "every event at the receiver",
    )
    await asyncio.sleep(1.0)  # anything delivered twice would show up now
    want = await asyncio.to_thread(expected)
    accepted = cluster.receiver.accepted_ids()
    assert len(want) >= 36 and set(accepted) == want
    assert max(accepted.values()) == 1, [k for k, v in accepted.items() if v > 1]
    attempts = await db_rows(
        env, sa.select(webhook_attempts.c.delivery_id, webhook_attempts.c.worker)
    )
    assert len(attempts) == len({a.delivery_id for a in attempts}) == len(want)
    processes = Counter(a.worker.rsplit(":", 1)[0] for a in attempts)  # host:pid
    print(f"deliveries per instance: {dict(processes)}")
    assert len(processes) >= 2, f"only one instance delivered: {dict(processes)}"
