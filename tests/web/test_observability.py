"""Observability: healthz/readyz, Prometheus metrics, request ids, JSON logs, allowed hosts."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sso_gate import ConfigurationError, Settings, SSOGate
from sso_gate.logs import JSONFormatter, configure_logging, request_id, sane_request_id
from sso_gate.settings import Secret
from sso_gate.store.onetime import RedisOneTimeStore
from sso_gate.web import observability
from tests.conftest import ADMIN_KEY, REDIS_URL, make_settings
from tests.web.conftest import BASE, Env, inner_app, make_env

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
METRICS_TOKEN = "metrics-token-0123456789"


def client_for(gate: SSOGate) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())), base_url=BASE
    )


@pytest.fixture
async def gate_client(database_url: str) -> AsyncIterator[tuple[SSOGate, httpx.AsyncClient]]:
    g = SSOGate(make_settings(database_url))
    await g.migrate()
    async with client_for(g) as c:
        yield g, c
    await g.aclose()


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    e = await make_env(database_url)
    yield e
    await e.client.aclose()
    await e.gate.aclose()


@pytest.fixture(autouse=True)
def _fresh_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "_READY_CACHE_SECONDS", 0.0)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a Prometheus exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, token: str = ADMIN_KEY) -> str:
    r = await client.get("/sso-gate/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


# -- healthz / readyz ----------------------------------------------------------------------------


async def test_healthz_and_readyz(gate_client: tuple[SSOGate, httpx.AsyncClient]) -> None:
    _, c = gate_client
    r = await c.get("/sso-gate/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["cache-control"] == "no-store"
    r = await c.get("/sso-gate/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database"}
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-dir/sub/gate.db",  # the directory does not exist
        "postgresql://postgres:pw@127.0.0.1:1/none",  # nothing listens on port 1
    ],
)
async def test_database_down(url: str) -> None:
    """Liveness never touches the database; readiness says the database is what failed,
    without the URL or its password."""
    gate = SSOGate(make_settings(url))
    async with client_for(gate) as c:
        r = await c.get("/sso-gate/healthz")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await c.get("/sso-gate/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"]["status"] == "fail"
        assert body["checks"]["database"]["error"].startswith("unreachable (")
        assert "pw" not in r.text and "127.0.0.1" not in r.text and "nonexistent" not in r.text
        # anonymous pass-through keeps working
        assert (await c.get("/")).json() == {"home": True, "sso_user": None}
    await gate.aclose()
    # aiosqlite stops the thread of a failed connection without waiting for it; let it finish
    # while this event loop runs, or it reports to a closed loop during a later test
    for _ in range(200):
        if not any("_connection_worker_thread" in t.name for t in threading.enumerate()):
            break
        await asyncio.sleep(0.05)


async def test_database_that_never_answers_times_out() -> None:
    """A server that accepts the connection and then says nothing: readyz answers within
    SSO_GATE_READYZ_TIMEOUT."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gate = SSOGate(make_settings(f"postgresql://postgres@127.0.0.1:{port}/x", readyz_timeout=0.3))
    try:
        async with client_for(gate) as c:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            r = await c.get("/sso-gate/readyz")
            assert loop.time() - t0 < 10  # (asyncpg alone would wait 60 s to connect)
        assert r.status_code == 503
        assert r.json()["checks"]["database"] == {
            "status": "fail",
            "error": "no answer within 0.3 s",
        }
    finally:
        for w in held:
            w.close()
        server.close()
        await gate.aclose()


async def test_readyz_checks_redis(database_url: str) -> None:
    down = SSOGate(make_settings(database_url), onetime=RedisOneTimeStore("redis://127.0.0.1:1/0"))
    await down.migrate()
    async with client_for(down) as c:
        r = await c.get("/sso-gate/readyz")
    await down.aclose()
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["redis"] == {"status": "fail", "error": "onetime_store_unavailable"}

    if REDIS_URL is None:
        return
    up = SSOGate(make_settings(database_url, redis_url=REDIS_URL))
    async with client_for(up) as c:
        r = await c.get("/sso-gate/readyz")
    await up.aclose()
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["redis"]["status"] == "ok"


async def test_readyz_answer_is_reused_for_a_second(
    gate_client: tuple[SSOGate, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, c = gate_client
    monkeypatch.setattr(observability, "_READY_CACHE_SECONDS", 60.0)
    calls = 0
    real = gate.health.readiness

    async def counting() -> dict[str, dict[str, Any]]:
        nonlocal calls
        calls += 1
        return await real()

    monkeypatch.setattr(gate.health, "readiness", counting)
    for _ in range(5):
        assert (await c.get("/sso-gate/readyz")).status_code == 200
    assert calls == 1


# -- metrics -------------------------------------------------------------------------------------


async def test_metrics_auth(database_url: str) -> None:
    # no metrics token: the admin API key
    gate = SSOGate(make_settings(database_url))
    async with client_for(gate) as c:
        assert (await c.get("/sso-gate/metrics")).status_code == 401
        r = await c.get("/sso-gate/metrics", headers={"Authorization": "Bearer wrong-key-123456"})
        assert r.status_code == 401 and "wrong-key" not in r.text
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "sso_gate_http_requests_total" in await scrape(c)
    await gate.aclose()
    # a metrics token: only it (the admin key stays out of scraper configurations)
    gate = SSOGate(make_settings(database_url, metrics_token=Secret(METRICS_TOKEN)))
    async with client_for(gate) as c:
        r = await c.get("/sso-gate/metrics", headers=AUTH)
        assert r.status_code == 401
        await scrape(c, METRICS_TOKEN)
    await gate.aclose()
    # neither: off
    gate = SSOGate(make_settings(database_url, admin_api_key=None))
    async with client_for(gate) as c:
        r = await c.get("/sso-gate/metrics", headers=AUTH)
        assert r.status_code == 404 and r.json()["code"] == "metrics_disabled"
    await gate.aclose()


async def test_request_metrics_use_route_templates(
    gate_client: tuple[SSOGate, httpx.AsyncClient],
) -> None:
    gate, c = gate_client
    org = await gate.organizations.create("Acme", domains=["acme.test"])
    assert (await c.get(f"/sso-gate/api/organizations/{org.id}", headers=AUTH)).status_code == 200
    assert (await c.get("/sso-gate/api/organizations/org_nope", headers=AUTH)).status_code == 404
    assert (await c.get("/sso-gate/no/such/route")).status_code == 404
    assert (await c.get("/sso-gate/portal/l/some-secret-token")).status_code == 410
    assert (await c.get("/")).status_code == 200  # pass-through: not counted
    text = await scrape(c)
    route = "/api/organizations/{id}"
    for status in ("200", "404"):
        assert value(text, "sso_gate_http_requests_total", method="GET", route=route, status=status)
    assert value(text, "sso_gate_http_request_duration_seconds_count", method="GET", route=route)
    assert value(
        text, "sso_gate_http_requests_total", method="GET", route="unmatched", status="404"
    )
    assert value(
        text, "sso_gate_http_requests_total", method="GET", route="/portal/l/{token}", status="410"
    )
    assert org.id not in text and "some-secret-token" not in text and "org_nope" not in text
    routes = {dict(labels).get("route") for (_, labels) in samples(text)}
    assert "/" not in routes and None in routes  # other families have no route label


async def test_login_metrics(env: Env) -> None:
    r = await env.login()
    assert r.status_code == 303, r.text
    url = await env.start()
    code, params = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, "forged-state-0123456789"))
    assert r.status_code == 400
    text = await scrape(env.client)
    assert value(text, "sso_gate_logins_total", protocol="oidc", outcome="succeeded", reason="none")
    failed = {
        dict(labels)["reason"]: v
        for (name, labels), v in samples(text).items()
        if name == "sso_gate_logins_total" and dict(labels)["outcome"] == "failed"
    }
    assert sum(failed.values()) == 1 and "forged-state" not in text, failed


async def test_scim_metrics(gate_client: tuple[SSOGate, httpx.AsyncClient]) -> None:
    gate, c = gate_client
    org = await gate.organizations.create("Acme", domains=["acme.test"])
    d, token = await gate.directories.create(org.id)
    base = f"/sso-gate/scim/v2/{d.id}"
    auth = {"Authorization": f"Bearer {token}"}
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bob@acme.test",
    }
    assert (await c.post(f"{base}/Users", json=user, headers=auth)).status_code == 201
    assert (await c.get(f"{base}/Users", headers=auth)).status_code == 200
    assert (await c.get(f"{base}/Users", headers={"Authorization": "Bearer nope"})).status_code == (
        401
    )
    assert (await c.get(f"{base}/Groups/unknown-id", headers=auth)).status_code == 404
    assert (await c.get(f"{base}/Whatever", headers=auth)).status_code == 404
    text = await scrape(c)
    for method, resource, status in [
        ("POST", "Users", "201"),
        ("GET", "Users", "200"),
        ("GET", "Users", "401"),
        ("GET", "Groups", "404"),
        ("GET", "unknown", "404"),
    ]:
        assert (
            value(
                text,
                "sso_gate_scim_requests_total",
                method=method,
                resource=resource,
                status=status,
            )
            == 1
        ), (method, resource, status)
    assert d.id not in text and token not in text


async def test_webhook_delivery_metrics(database_url: str) -> None:
    def receiver(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.host == "ok.example.com" else 500)

    settings = make_settings(database_url, allow_private_urls=True, webhook_retry_schedule=(0.0,))
    gate = SSOGate(settings, http_client=httpx.AsyncClient(transport=httpx.MockTransport(receiver)))
    await gate.migrate()
    await gate.webhooks.create("https://ok.example.com/hook", ["organization.created"])
    await gate.webhooks.create("https://down.example.com/hook", ["organization.created"])
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    async with client_for(gate) as c:
        text = await scrape(c)
    await gate.aclose()
    assert value(text, "sso_gate_webhook_deliveries_total", outcome="succeeded") == 1
    assert value(text, "sso_gate_webhook_deliveries_total", outcome="retrying") == 1
    assert value(text, "sso_gate_webhook_deliveries_total", outcome="failed") == 1
    assert value(text, "sso_gate_webhook_delivery_duration_seconds_count") == 3


def test_login_reason_label_is_bounded() -> None:
    from sso_gate.metrics import GateMetrics

    m = GateMetrics()
    m.login("saml", "failed", "Not A Code; injected=1")
    m.request("BREW", "/healthz", 200, 0.001)
    text = m.exposition().decode()
    assert value(text, "sso_gate_logins_total", protocol="saml", outcome="failed", reason="other")
    assert value(
        text, "sso_gate_http_requests_total", method="other", route="/healthz", status="200"
    )


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR (prometheus_client's own variable), each worker process
    writes its values there and any of them exposes the sum."""
    script = (
        "import sys\n"
        "from sso_gate.metrics import GateMetrics\n"
        "m = GateMetrics()\n"
        "m.login('oidc', 'succeeded')\n"
        "m.request('GET', '/healthz', 200, 0.002)\n"
        "if sys.argv[1] == 'show':\n"
        "    sys.stdout.write(m.exposition().decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for arg in ("quiet", "quiet", "show"):
        done = subprocess.run(
            [sys.executable, "-c", script, arg], env=env, capture_output=True, text=True, check=True
        )
    text = done.stdout
    assert value(text, "sso_gate_logins_total", protocol="oidc", outcome="succeeded", reason="none")
    assert (
        value(text, "sso_gate_logins_total", protocol="oidc", outcome="succeeded", reason="none")
        == 3
    )
    assert value(
        text, "sso_gate_http_request_duration_seconds_count", method="GET", route="/healthz"
    )
    assert (
        value(text, "sso_gate_http_request_duration_seconds_count", method="GET", route="/healthz")
        == 3
    )


# -- request ids and logs ------------------------------------------------------------------------


@pytest.fixture
def json_records() -> Iterator[list[str]]:
    """What a JSON handler on the sso_gate loggers writes, one line per record."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("sso_gate")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_request_id_echoed_or_generated(
    gate_client: tuple[SSOGate, httpx.AsyncClient], json_records: list[str]
) -> None:
    _, c = gate_client
    r = await c.get("/sso-gate/healthz", headers={"X-Request-ID": "req-abc_123.4:5"})
    assert r.headers["x-request-id"] == "req-abc_123.4:5"
    for bad in [b"has space", b"x" * 129, b"back\\slash", b"-leading-dash", "ünï".encode()]:
        r = await c.get("/sso-gate/api/organizations", headers={"X-Request-ID": bad, **AUTH})
        rid = r.headers["x-request-id"]
        assert rid.encode() != bad and len(rid) == 32 and int(rid, 16) >= 0
    r1 = await c.get("/sso-gate/healthz")
    r2 = await c.get("/sso-gate/healthz")
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]
    # the app's own routes are untouched
    assert "x-request-id" not in (await c.get("/")).headers
    assert request_id.get() is None

    access = [json.loads(line) for line in json_records if '"sso_gate.access"' in line]
    assert any(
        a["request_id"] == "req-abc_123.4:5" and a["route"] == "/sso-gate/healthz" for a in access
    )
    api = [a for a in access if a["route"] == "/sso-gate/api/organizations"]
    assert len(api) == 5 and all(a["status"] == 200 and a["method"] == "GET" for a in api)
    assert all(a["duration_ms"] >= 0 and a["level"] == "INFO" for a in api)


async def test_unhandled_error_logged_with_request_id_and_route_template(
    gate_client: tuple[SSOGate, httpx.AsyncClient],
    json_records: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate, c = gate_client

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(gate.organizations, "list", boom)
    r = await c.get("/sso-gate/api/organizations", headers={"X-Request-ID": "trace-1", **AUTH})
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "kaboom" not in r.text and "Traceback" not in r.text
    errors = [json.loads(x) for x in json_records if '"ERROR"' in x]
    (err,) = errors
    assert err["request_id"] == "trace-1" and err["logger"] == "sso_gate.web"
    assert err["message"] == "unhandled error in GET /sso-gate/api/organizations"
    assert "RuntimeError: kaboom" in err["exception"]


def test_json_formatter_fields() -> None:
    fmt = JSONFormatter()
    record = logging.LogRecord("sso_gate.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    record.secret_extra = "never-serialized"
    out = json.loads(fmt.format(record))
    assert set(out) == {"time", "level", "logger", "message", "request_id"}
    assert out["message"] == "a b" and out["level"] == "WARNING" and out["request_id"] is None
    assert out["time"].endswith("+00:00")
    token = request_id.set("rid-1")
    try:
        assert json.loads(fmt.format(record))["request_id"] == "rid-1"
    finally:
        request_id.reset(token)
    try:
        raise ValueError("x")
    except ValueError:
        record.exc_info = sys.exc_info()
    assert "ValueError: x" in json.loads(fmt.format(record))["exception"]


def test_sane_request_id() -> None:
    assert sane_request_id(b"0f8fad5b-d9cb-469f-a165-70867728950e") is not None
    assert sane_request_id(b"Root=1-5759e988-bd862e3fe1be46a994272793") is not None
    for bad in [None, b"", b"a b", b"a\r\nb", b"x" * 129, b'a"b', b"\xff", b"{x}"]:
        assert sane_request_id(bad) is None


async def test_log_format_json_setting(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("sso_gate")
    try:
        for _ in range(2):  # idempotent
            await SSOGate(
                make_settings(database_url, log_format="json", log_level="DEBUG")
            ).aclose()
        assert len(logger.handlers) == 1 and logger.propagate is False
        logging.getLogger("sso_gate.test").debug("hello %s", "world")
        line = capsys.readouterr().err.strip()
        assert json.loads(line)["message"] == "hello world"
    finally:
        configure_logging("text")
    assert logger.handlers == [] and logger.propagate is True


# -- allowed hosts -------------------------------------------------------------------------------


async def test_allowed_hosts(database_url: str) -> None:
    gate = SSOGate(make_settings(database_url, allowed_hosts=("app.test", "*.example.com")))
    await gate.migrate()
    async with client_for(gate) as c:
        for host, status in [
            ("app.test", 200),
            ("APP.test:8443", 200),
            ("eu.example.com", 200),
            ("example.com", 400),
            ("evil.test", 400),
            ("app.test.evil.test", 400),
        ]:
            r = await c.get("/sso-gate/api/organizations", headers={"Host": host, **AUTH})
            assert r.status_code == status, host
            if status == 400:
                assert r.json()["code"] == "invalid_host"
        # probes address instances by IP; the app's own routes are the app's business
        r = await c.get("/sso-gate/healthz", headers={"Host": "10.0.0.7:8000"})
        assert r.status_code == 200
        assert (await c.get("/", headers={"Host": "evil.test"})).status_code == 200
    await gate.aclose()


def test_observability_settings() -> None:
    env = {
        "SSO_GATE_SECRET_KEYS": "k" * 32,
        "SSO_GATE_BASE_URL": "https://app.example.com",
        "SSO_GATE_LOG_FORMAT": "JSON",
        "SSO_GATE_LOG_LEVEL": "debug",
        "SSO_GATE_METRICS_TOKEN": METRICS_TOKEN,
        "SSO_GATE_READYZ_TIMEOUT": "0.5",
        "SSO_GATE_ALLOWED_HOSTS": "App.Example.com, *.example.com",
    }
    s = Settings.from_env(env)
    assert (s.log_format, s.log_level, s.readyz_timeout) == ("json", "DEBUG", 0.5)
    assert s.allowed_hosts == ("app.example.com", "*.example.com")
    assert s.metrics_token == Secret(METRICS_TOKEN) and METRICS_TOKEN not in repr(s)
    defaults = Settings.from_env({k: env[k] for k in ("SSO_GATE_SECRET_KEYS", "SSO_GATE_BASE_URL")})
    assert (defaults.log_format, defaults.metrics_token, defaults.allowed_hosts) == (
        "text",
        None,
        (),
    )
    for name, raw in [
        ("SSO_GATE_LOG_FORMAT", "xml"),
        ("SSO_GATE_LOG_LEVEL", "loud"),
        ("SSO_GATE_METRICS_TOKEN", "short"),
        ("SSO_GATE_READYZ_TIMEOUT", "0"),
        ("SSO_GATE_READYZ_TIMEOUT", "soon"),
        ("SSO_GATE_ALLOWED_HOSTS", "app.example.com/path"),
    ]:
        with pytest.raises(ConfigurationError, match=name):
            Settings.from_env({**env, name: raw})


async def test_worker_process_serves_its_metrics(database_url: str) -> None:
    """``sso-gate worker --metrics-port``: a separate worker's delivery metrics are scrapeable."""
    import socket

    db = database_url
    gate = SSOGate(make_settings(db))
    await gate.migrate()
    await gate.aclose()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SSO_GATE_SECRET_KEYS": "k" * 32,
        "SSO_GATE_BASE_URL": "http://localhost:8000",
        "SSO_GATE_DATABASE_URL": db,
    }
    cli = Path(sys.executable).parent / "sso-gate"
    proc = subprocess.Popen(
        [str(cli), "worker", "--metrics-port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        text = ""
        async with httpx.AsyncClient() as http:
            for _ in range(600):  # a loaded machine takes a while to start a process
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, "the worker exited"
                    await asyncio.sleep(0.1)
        assert "# TYPE sso_gate_webhook_deliveries_total counter" in text, text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
