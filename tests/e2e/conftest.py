"""End-to-end stacks: ``examples/starlette_app.py`` under uvicorn + the real ``oidc-provider``.

A stack is: a database (SQLite file or the PostgreSQL test database) holding two organizations
(Acme, ``acme.test``, client_secret_basic; Initech, ``initech.test``, client_secret_post), each
with an OIDC connection to one ``oidc-provider`` process; and the example app served by
``python -m uvicorn examples.starlette_app:app`` configured only through ``SSO_GATE_*``
variables. Everything binds 127.0.0.1; both processes are stopped at teardown.

Missing peers (node/npm, chromium) skip the tests, unless ``SSO_GATE_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sso_gate import SSOGate

from ..conftest import POSTGRES_URL, REDIS_URL, _reset_postgres
from ..peers.oidc_provider import OidcProviderError, ensure_installed, run_oidc_provider

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


def free_port(taken: tuple[int, ...] = ()) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


@dataclass
class Stack:
    """One running app + provider. ``env`` is the app's ``SSO_GATE_*`` configuration."""

    base_url: str
    issuer: str
    env: dict[str, str]
    log: Path
    acme_org: str = ""
    acme_conn: str = ""
    initech_org: str = ""
    initech_conn: str = ""
    redirect_uris: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def gate(self) -> SSOGate:
        """A second gate instance on the same database (and Redis): what another worker sees."""
        return SSOGate.from_env(self.env)


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


def _wait_ready(proc: subprocess.Popen[bytes], stack: Stack) -> None:
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
    env = {
        "SSO_GATE_SECRET_KEYS": secrets.token_urlsafe(32),
        "SSO_GATE_BASE_URL": f"http://127.0.0.1:{app_port}",
        "SSO_GATE_DATABASE_URL": database_url,
        "SSO_GATE_ENVIRONMENT": "development",
    }
    if redis_url:
        env["SSO_GATE_REDIS_URL"] = redis_url
    stack = Stack(
        base_url=env["SSO_GATE_BASE_URL"],
        issuer=f"http://127.0.0.1:{provider_port}",
        env=env,
        log=workdir / f"app-{app_port}.log",
    )
    clients = asyncio.run(_seed(stack))

    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SSO_GATE_")}
    child_env.update(env, APP_SECRET_KEY=secrets.token_urlsafe(32), PYTHONUNBUFFERED="1")
    with open(stack.log, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "examples.starlette_app:app"]
            + ["--host", "127.0.0.1", "--port", str(app_port), "--log-level", "info"],
            cwd=REPO,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # The app starts while the provider starts; neither needs the other to boot.
        with run_oidc_provider(clients, port=provider_port) as issuer:
            assert issuer == stack.issuer
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


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def any_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The default stack, then one on PostgreSQL, then one with Redis as the one-time store."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_stack")
    elif request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("SSO_GATE_TEST_POSTGRES_URL is not set")
        require_oidc_provider()
        _reset_postgres(POSTGRES_URL)
        with run_stack(tmp_path, POSTGRES_URL) as stack:
            yield stack
    else:
        if not REDIS_URL:
            pytest.skip("SSO_GATE_TEST_REDIS_URL is not set")
        with run_stack(tmp_path, f"sqlite:///{tmp_path / 'gate.db'}", REDIS_URL) as stack:
            yield stack
