"""A gate for fuzzing (SQLite or PostgreSQL), the management API on, no way out of the process.

Fuzzed input names hosts (webhook and metadata URLs, syslog streams, DNS names): every lookup is
answered by a fake resolver and every outbound connection is refused, so no fuzz case ever
reaches the network. ``build()`` migrates a fresh database and seeds one of every object over
the HTTP API itself (an organization with a domain, OIDC and SAML connections, a directory with a
SCIM user and group, a webhook endpoint, an audit log event), so fuzzed path parameters can hit
real objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import os
import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sso_gate import Settings, SSOGate
from tests.conftest import ADMIN_KEY, make_settings
from tests.fakes.saml_idp import FakeSamlIdP

PREFIX = "/sso-gate"
API = f"{PREFIX}/api"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
# Every fuzzed host name resolves here (a public address, so the SSRF guard passes it on);
# nothing ever connects to it: sockets to anything but loopback are refused below.
FAKE_PUBLIC_IP = "192.88.99.77"


# fuzz/run (the long runs) multiplies every property's CI-sized example count by this
SCALE = int(os.environ.get("SSO_GATE_FUZZ_SCALE") or 1)


def fuzz_examples(ci: int) -> int:
    """Examples per property: ``ci`` in CI, ``ci * SSO_GATE_FUZZ_SCALE`` in the long runs."""
    return ci * SCALE


# area -> label -> outcome -> count; written by tests/fuzz/conftest.py for the long-run report
STATS: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))


def record(area: str, label: str, outcome: object) -> None:
    STATS[area][label][str(outcome)] += 1


def _fake_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
    name = host.decode() if isinstance(host, bytes) else str(host or "")
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        if name in ("localhost", "testserver"):
            ip = ipaddress.ip_address("127.0.0.1")
        elif not name or len(name) > 253 or any(not 0 < len(x) < 64 for x in name.split(".")):
            raise socket.gaierror(socket.EAI_NONAME, "fuzz resolver: bad name") from None
        else:
            ip = ipaddress.ip_address(FAKE_PUBLIC_IP)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    port_number = int(port) if isinstance(port, int | str) and str(port).isdigit() else 0
    sockaddr: tuple[Any, ...] = (
        (str(ip), port_number, 0, 0) if ip.version == 6 else (str(ip), port_number)
    )
    return [(family, socket.SOCK_STREAM, 6, "", sockaddr)]


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Fake DNS, and refuse every socket connection that is not to loopback."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        if isinstance(address, tuple) and address:
            try:
                return ipaddress.ip_address(str(address[0]).strip("[]")).is_loopback
            except ValueError:
                return False
        return isinstance(address, str | bytes)  # AF_UNIX (asyncio's self-pipe etc.)

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(address):
            raise ConnectionRefusedError(f"fuzz harness: no network ({address!r})")
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(address):
            return 111  # ECONNREFUSED
        return original_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _fake_getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo


IDP_METADATA_URL = "https://idp.fuzz.test/metadata"
FAKE_SAML_IDP = FakeSamlIdP()


def _outbound(request: httpx.Request) -> httpx.Response:
    """The only answer from outside: the seeded SAML connection's metadata URL."""
    if request.method == "GET" and str(request.url) == IDP_METADATA_URL:
        return httpx.Response(200, text=FAKE_SAML_IDP.metadata())
    raise httpx.ConnectError(f"fuzz harness: no network ({request.url.host})", request=request)


async def _no_txt_records(name: str) -> list[str]:
    return []


def inner_app() -> Starlette:
    return Starlette(routes=[Route("/", lambda r: PlainTextResponse("app"))])


@dataclass
class Seeded:
    """Ids of the objects ``seed`` created, by the path parameter they fit."""

    organization: str = ""
    domain: str = "acme-fuzz.test"
    oidc_connection: str = ""
    saml_connection: str = ""
    directory: str = ""
    scim_token: str = ""
    user: str = ""
    group: str = ""
    scim_user: str = ""
    scim_group: str = ""
    webhook_endpoint: str = ""
    event: str = ""
    audit_event: str = ""
    audit_stream: str = ""

    def stream_body(self) -> dict[str, Any]:
        return {
            "organization_id": self.organization,
            "type": "https",
            "config": {"url": "https://siem.fuzz.test/in"},
        }


def build_gate(url: str, **overrides: Any) -> SSOGate:
    """A gate on the database ``url``, migrated, whose outbound HTTP and DNS answer
    'unreachable'."""
    if "rate_limits" in {f.name for f in dataclasses.fields(Settings)}:
        # thousands of requests a minute from one client: abuse controls are tested elsewhere
        overrides.setdefault("rate_limits", False)
    settings = make_settings(url, worker="off", **overrides)

    async def migrate() -> None:
        g = SSOGate(settings)
        try:
            await g.migrate()
        finally:
            await g.aclose()

    # Migrated with a throwaway gate: the fuzzed one opens its connections on the event loop
    # that serves the requests.
    asyncio.run(migrate())
    gate = SSOGate(
        settings, http_client=httpx.AsyncClient(transport=httpx.MockTransport(_outbound))
    )
    gate.domains.resolver = _no_txt_records
    return gate


Call = Callable[..., Any]


def seed(request: Call) -> Seeded:
    """Create one of everything through the API. ``request(method, url, **kw)`` is any
    requests- or httpx-style client method bound to the app."""

    def ok(method: str, url: str, status: int = 200, **kw: Any) -> Any:
        headers = {**AUTH, **kw.pop("headers", {})}
        r = request(method, url, headers=headers, **kw)
        assert r.status_code == status, (method, url, r.status_code, r.text)
        return r.json() if r.content else None

    s = Seeded()
    org = ok(
        "POST",
        f"{API}/organizations",
        201,
        json={"name": "Acme Fuzz", "domains": [s.domain], "sso_policy": "required"},
    )
    s.organization = org["id"]
    oidc = ok(
        "POST",
        f"{API}/connections",
        201,
        json={
            "organization_id": s.organization,
            "oidc": {
                "issuer": "https://idp.fuzz.test",
                "client_id": "client-1",
                "client_secret": "secret-1",
            },
        },
    )
    s.oidc_connection = oidc["id"]
    saml = ok(
        "POST",
        f"{API}/connections",
        201,
        json={
            "organization_id": s.organization,
            "saml": {"metadata_url": IDP_METADATA_URL},
        },
    )
    s.saml_connection = saml["id"]
    directory = ok("POST", f"{API}/directories", 201, json={"organization_id": s.organization})
    s.directory, s.scim_token = directory["id"], directory["bearer_token"]
    scim = {"Authorization": f"Bearer {s.scim_token}", "Content-Type": "application/scim+json"}
    user = request(
        "POST",
        f"{PREFIX}/scim/v2/{s.directory}/Users",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice@acme-fuzz.test",
            "name": {"givenName": "Alice", "familyName": "Fuzz"},
            "emails": [{"value": "alice@acme-fuzz.test", "primary": True}],
            "active": True,
        },
    )
    assert user.status_code == 201, user.text
    group = request(
        "POST",
        f"{PREFIX}/scim/v2/{s.directory}/Groups",
        headers=scim,
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": [{"value": user.json()["id"]}],
        },
    )
    assert group.status_code == 201, group.text
    s.scim_user, s.scim_group = user.json()["id"], group.json()["id"]
    users = ok("GET", f"{API}/directory_users", params={"directory": s.directory})
    s.user = users["data"][0]["id"]
    groups = ok("GET", f"{API}/directory_groups", params={"directory": s.directory})
    s.group = groups["data"][0]["id"]
    endpoint = ok(
        "POST",
        f"{API}/webhook_endpoints",
        201,
        json={"url": "https://hooks.fuzz.test/in", "events": ["*"]},
    )
    s.webhook_endpoint = endpoint["id"]
    events = ok("GET", f"{API}/events")
    s.event = events["data"][0]["id"]
    audit = ok(
        "POST",
        f"{API}/audit_logs/events",
        201,
        json={
            "organization_id": s.organization,
            "event": {
                "action": "user.signed_in",
                "occurred_at": "2026-01-01T00:00:00Z",
                "actor": {"type": "user", "id": "user_1"},
                "targets": [{"type": "team", "id": "team_1"}],
                "context": {"location": "127.0.0.1"},
            },
        },
    )
    listed = ok("GET", f"{API}/audit_logs/events", params={"organization_id": s.organization})
    s.audit_event = listed["data"][0]["id"] if listed.get("data") else audit.get("id", "")
    stream = request("POST", f"{API}/audit_logs/streams", headers=AUTH, json=s.stream_body())
    if stream.status_code == 201:  # log streams are optional in this harness
        s.audit_stream = stream.json()["id"]
    return s
