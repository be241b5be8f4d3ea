"""End-to-end stacks: ``examples/starlette_app.py`` under uvicorn + a real IdP.

An OIDC stack is: a database (SQLite file or the PostgreSQL test database) holding two
organizations (Acme, ``acme.test``, client_secret_basic; Initech, ``initech.test``,
client_secret_post), each with an OIDC connection to one ``oidc-provider`` process; and the
example app served by ``python -m uvicorn examples.starlette_app:app`` configured only through
``SSO_GATE_*`` variables.

A SAML stack is the same app with one organization (Acme, ``acme.test``, SSO required) whose
first SAML connection points at a SimpleSAMLphp IdP (``tests/peers/simplesamlphp.py``). The
chicken-and-egg (the connection is created from the IdP's metadata; the IdP must know the
connection's ACS URL, which contains the connection id) is solved by starting the IdP first,
creating the connection from its metadata, then registering the connection's SP at the running
IdP (:meth:`SamlIdP.add_sp`). Tests add more connections the same way
(:meth:`SamlStack.add_connection`). The IdP's URLs use the host name ``localhost`` and the app's
``127.0.0.1``: two different *sites*, so in a browser the IdP's POST to the ACS is cross-site,
as in production.

Everything listens on 127.0.0.1 only; all processes are stopped at teardown.
Missing peers (node/npm, php/simplesamlphp, chromium) skip the tests, unless
``SSO_GATE_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from sso_gate import SSOGate
from sso_gate.models import Connection

from ..conftest import BACKENDS, POSTGRES_URL, REDIS_URL, postgres_database, run_sync
from ..peers import simplesamlphp
from ..peers.oidc_provider import OidcProviderError, ensure_installed, run_oidc_provider
from ..peers.simplesamlphp import SamlIdP, SpConfig, run_simplesamlphp

REPO = Path(__file__).resolve().parents[2]
APP_STARTUP_TIMEOUT = 30.0
REQUIRE_PEERS = os.environ.get("SSO_GATE_REQUIRE_PEERS") == "1"


def need(ok: object, reason: str) -> None:
    """Skip when a peer is missing, or fail when ``SSO_GATE_REQUIRE_PEERS=1``."""
    if ok:
        return
    if REQUIRE_PEERS:
        pytest.fail(f"{reason} (SSO_GATE_REQUIRE_PEERS=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


def require_oidc_provider() -> None:
    need(shutil.which("node") and shutil.which("npm"), "node and npm are needed for oidc-provider")
    try:
        ensure_installed()
    except OidcProviderError as exc:
        need(False, f"oidc-provider could not be installed: {exc}")


def require_simplesamlphp() -> None:
    need(
        simplesamlphp.available(),
        "php (with php-xml) and Debian's simplesamlphp are needed for the SAML IdP peer",
    )


def free_port(taken: tuple[int, ...] = ()) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


@dataclass
class AppStack:
    """The running example app. ``env`` is its ``SSO_GATE_*`` configuration."""

    base_url: str
    env: dict[str, str]
    log: Path

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def gate(self) -> SSOGate:
        """A second gate instance on the same database (and Redis): what another worker sees."""
        return SSOGate.from_env(self.env)


@dataclass
class Stack(AppStack):
    """One running app + oidc-provider."""

    issuer: str
    acme_org: str = ""
    acme_conn: str = ""
    initech_org: str = ""
    initech_conn: str = ""
    redirect_uris: dict[str, str] = field(default_factory=dict)


@dataclass
class SamlStack(AppStack):
    """One running app + SimpleSAMLphp; ``conn`` is Acme's first (login-form) connection."""

    idp: SamlIdP
    org_id: str = ""
    conn: Connection | None = None

    @property
    def conn_id(self) -> str:
        assert self.conn is not None
        return self.conn.id

    def acs_url(self, connection_id: str) -> str:
        return self.url(f"/sso-gate/sso/saml/{connection_id}/acs")

    async def add_connection(
        self, sp: Mapping[str, Any] | None = None, **options: Any
    ) -> Connection:
        """A new SAML connection of Acme to the IdP (``options`` go to ``create_saml``), and its
        SP registered at the IdP (``sp``: more :class:`SpConfig` fields, e.g. flags)."""
        gate = self.gate()
        try:
            options.setdefault("connection_type", "SimpleSamlPhpSAML")
            conn = await gate.connections.create_saml(
                self.org_id, metadata_xml=self.idp.metadata_xml, **options
            )
            urls = gate.connections.saml_urls(conn.id)
        finally:
            await gate.aclose()
        assert conn.saml is not None
        self.idp.add_sp(
            SpConfig(
                entity_id=conn.saml.sp_entity_id,
                acs_url=urls["acs_url"],
                slo_url=urls["slo_url"],
                cert_pem=conn.saml.sp_certificate,
                **(sp or {}),
            )
        )
        return conn


def app_env(app_port: int, database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {
        "SSO_GATE_SECRET_KEYS": secrets.token_urlsafe(32),
        "SSO_GATE_BASE_URL": f"http://127.0.0.1:{app_port}",
        "SSO_GATE_DATABASE_URL": database_url,
        "SSO_GATE_ENVIRONMENT": "development",
    }
    if redis_url:
        env["SSO_GATE_REDIS_URL"] = redis_url
    return env


def start_app(stack: AppStack) -> subprocess.Popen[bytes]:
    """Start the example app under uvicorn (not waiting: see ``_wait_ready``)."""
    port = urlsplit(stack.base_url).port
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SSO_GATE_")}
    child_env.update(stack.env, APP_SECRET_KEY=secrets.token_urlsafe(32), PYTHONUNBUFFERED="1")
    with open(stack.log, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.starlette_app:app"]
            + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
            cwd=REPO,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _seed(stack: Stack) -> list[dict[str, object]]:
    """Create both organizations and connections; return the provider's client metadata."""
    clients: list[dict[str, object]] = []
    gate = stack.gate()
    try:
        await gate.migrate()
        for name, domain, method in (
            ("Acme", "acme.test", "client_secret_basic"),
            ("Initech", "initech.test", "client_secret_post"),
        ):
            client_id, client_secret = f"{name.lower()}-client", secrets.token_urlsafe(24)
            org = await gate.organizations.create(name, domains=[domain], sso_policy="required")
            conn = await gate.connections.create_oidc(
                org.id,
                issuer=stack.issuer,
                client_id=client_id,
                client_secret=client_secret,
                token_endpoint_auth_method=method,
            )
            setattr(stack, f"{name.lower()}_org", org.id)
            setattr(stack, f"{name.lower()}_conn", conn.id)
            stack.redirect_uris[conn.id] = gate.connections.redirect_uri(conn.id)
            clients.append(
                {
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "redirect_uris": [stack.redirect_uris[conn.id]],
                    "token_endpoint_auth_method": method,
                    "id_token_signed_response_alg": "RS256",
                }
            )
    finally:
        await gate.aclose()
    return clients


def _wait_ready(proc: subprocess.Popen[bytes], stack: AppStack) -> None:
    deadline = time.monotonic() + APP_STARTUP_TIMEOUT
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                if client.get(stack.url("/login")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    reason = f"exited with code {proc.returncode}" if proc.poll() is not None else "timed out"
    raise RuntimeError(f"example app {reason} while starting; log tail:\n{stack.log_tail()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def run_stack(workdir: Path, database_url: str, redis_url: str | None = None) -> Iterator[Stack]:
    """Seed the database, start oidc-provider and the example app; stop both on exit."""
    require_oidc_provider()
    app_port = free_port()
    provider_port = free_port((app_port,))
    env = app_env(app_port, database_url, redis_url)
    stack = Stack(
        base_url=env["SSO_GATE_BASE_URL"],
        issuer=f"http://127.0.0.1:{provider_port}",
        env=env,
        log=workdir / f"app-{app_port}.log",
    )
    clients = run_sync(_seed(stack))
    proc = start_app(stack)
    try:
        # The app starts while the provider starts; neither needs the other to boot.
        with run_oidc_provider(clients, port=provider_port) as issuer:
            assert issuer == stack.issuer
            _wait_ready(proc, stack)
            yield stack
    finally:
        _stop(proc)


async def _seed_saml(stack: SamlStack) -> None:
    gate = stack.gate()
    try:
        await gate.migrate()
        org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    finally:
        await gate.aclose()
    stack.org_id = org.id
    stack.conn = await stack.add_connection()


@contextmanager
def run_saml_stack(
    workdir: Path, database_url: str, redis_url: str | None = None
) -> Iterator[SamlStack]:
    """Start SimpleSAMLphp (on ``localhost``), seed Acme and its connection, start the app."""
    require_simplesamlphp()
    app_port = free_port()
    env = app_env(app_port, database_url, redis_url)
    with run_simplesamlphp([], hostname="localhost", port=free_port((app_port,))) as idp:
        stack = SamlStack(
            base_url=env["SSO_GATE_BASE_URL"], env=env, log=workdir / f"app-{app_port}.log", idp=idp
        )
        run_sync(_seed_saml(stack))
        proc = start_app(stack)
        try:
            _wait_ready(proc, stack)
            yield stack
        finally:
            _stop(proc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Expose each phase's report as ``item.rep_<phase>`` (the browser tests screenshot
    failures)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The default stack (SQLite, in-process one-time store), shared by the e2e tests."""
    workdir = tmp_path_factory.mktemp("e2e-sqlite")
    with run_stack(workdir, f"sqlite:///{workdir / 'gate.db'}") as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The default stack on PostgreSQL, shared like ``sqlite_stack``: on a database of its own
    (``<test database>_e2e_oidc``), since the test database is emptied before other tests."""
    if not POSTGRES_URL:
        pytest.skip("SSO_GATE_TEST_POSTGRES_URL is not set")
    require_oidc_provider()
    workdir = tmp_path_factory.mktemp("e2e-postgres")
    with run_stack(workdir, postgres_database("e2e_oidc")) as stack:
        yield stack


@pytest.fixture(params=BACKENDS)
def oidc_stack(request: pytest.FixtureRequest) -> Stack:
    """The shared stack on each database: ``sqlite_stack``, then ``postgres_stack``."""
    stack: Stack = request.getfixturevalue(f"{request.param}_stack")
    return stack


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def any_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The default stack, then the one on PostgreSQL, then one with Redis as the one-time
    store."""
    if request.param in ("sqlite", "postgres"):
        yield request.getfixturevalue(f"{request.param}_stack")
    else:
        if not REDIS_URL:
            pytest.skip("SSO_GATE_TEST_REDIS_URL is not set")
        with run_stack(tmp_path, f"sqlite:///{tmp_path / 'gate.db'}", REDIS_URL) as stack:
            yield stack


@pytest.fixture(scope="session")
def saml_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlStack]:
    """The default SAML stack (SQLite, in-process one-time store), shared by the SAML tests."""
    workdir = tmp_path_factory.mktemp("e2e-saml-sqlite")
    with run_saml_stack(workdir, f"sqlite:///{workdir / 'gate.db'}") as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres_saml_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamlStack]:
    """The SAML stack on PostgreSQL (a database of its own, ``<test database>_e2e_saml``) with
    Redis as the one-time store, shared by the SAML tests."""
    if not (POSTGRES_URL and REDIS_URL):
        pytest.skip("SSO_GATE_TEST_POSTGRES_URL and SSO_GATE_TEST_REDIS_URL are both needed")
    require_simplesamlphp()
    workdir = tmp_path_factory.mktemp("e2e-saml-postgres")
    with run_saml_stack(workdir, postgres_database("e2e_saml"), REDIS_URL) as stack:
        yield stack


@pytest.fixture(params=["sqlite", "postgres+redis"])
def any_saml_stack(request: pytest.FixtureRequest) -> SamlStack:
    """The shared SAML stack on SQLite (in-process one-time store), then the one on PostgreSQL
    with Redis."""
    name = "saml_stack" if request.param == "sqlite" else "postgres_saml_stack"
    stack: SamlStack = request.getfixturevalue(name)
    return stack
