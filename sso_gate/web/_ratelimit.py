"""Abuse controls in the web layer: which limit applies to which request, and the 429s.

Which limit (``Settings.rate_limit_*``) applies where:

* intercepted login ``POST {login_path}`` (SSO-routed emails only) and ``GET …/sso/authorize``:
  ``login`` per client IP, ``org`` per organization;
* SAML ACS and OIDC callback: ``callback`` per client IP, ``org`` per organization (the same
  organization bucket: it bounds one tenant's sign-ins, whichever IPs they come from);
* SCIM ``{prefix}/scim/v2/{directory}/…``: ``scim_ip`` per client IP, ``scim`` per directory;
* management API ``{prefix}/api/…``: ``api_ip`` per client IP, ``api`` per presented key (hashed);
* portal link redemption ``GET {prefix}/portal/l/{token}``: ``portal`` per client IP.

The client IP is :meth:`ProxyPolicy.client_ip` (``X-Forwarded-For`` only from
``SSO_GATE_TRUSTED_PROXIES``); an IPv6 client counts as its /64 (what one host usually holds).
Requests without a client address (a Unix socket) have no per-IP limit. The per-IP check comes
first, so a refused client costs no lookup; the organization is taken from cached lookups (the
same the route makes next) and skipped when it cannot be resolved (the route then fails anyway).

The app's own password logins (a login POST of a non-SSO domain) are **not** limited here: they
pass through untouched, as they always have, and throttling password guesses is the app's job;
not even the limiter's dict lookup is added to that path (``benchmarks/bench_gate.py``).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import Response

from sso_gate.exceptions import RateLimitedError, SSOGateError
from sso_gate.scim.errors import SCIMError
from sso_gate.settings import RateLimit
from sso_gate.web._client import ProxyPolicy
from sso_gate.web.responses import error_response, wants_json

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["RateLimits"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _ip_key(ip: str) -> str:
    if ":" not in ip:
        return ip
    try:
        addr = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))


def _refused(what: str, retry_after: int) -> RateLimitedError:
    return RateLimitedError(
        f"too many {what}; try again in {retry_after} second{'s' if retry_after != 1 else ''}",
        retry_after=retry_after,
    )


class RateLimits:
    """The gate's limits over ``gate.rate_limiter`` (one per middleware)."""

    def __init__(self, gate: SSOGate) -> None:
        s = gate.settings
        self.gate = gate
        self.limiter = gate.rate_limiter
        self.proxies = ProxyPolicy(s.trusted_proxies)
        on = s.rate_limits
        self.login = s.rate_limit_login if on else None
        self.callback = s.rate_limit_callback if on else None
        self.org = s.rate_limit_org if on else None
        self.scim = s.rate_limit_scim if on else None
        self.scim_ip = s.rate_limit_scim_ip if on else None
        self.api = s.rate_limit_api if on else None
        self.api_ip = s.rate_limit_api_ip if on else None
        self.portal = s.rate_limit_portal if on else None
        p = s.prefix
        self.scim_prefix = p + "/scim/v2/"
        self.api_path = p + "/api"
        self.authorize_path = p + "/sso/authorize"
        self.saml_prefix = p + "/sso/saml/"
        self.oidc_prefix = p + "/sso/oidc/"
        self.portal_link_prefix = p + "/portal/l/"

    @property
    def login_limited(self) -> bool:
        """Whether an intercepted login POST is checked at all."""
        return self.login is not None or self.org is not None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The gate's routes behind their limits (``app`` itself when every limit is off)."""
        limits = (self.login, self.callback, self.org, self.scim, self.scim_ip, self.api)
        if not any(limits + (self.api_ip, self.portal)):
            return app
        return _LimitedRoutes(app, self)

    # -- checks (each raises RateLimitedError) ----------------------------------------------------

    async def _check(self, bucket: str, key: str, rate: RateLimit | None, what: str) -> None:
        if rate is None:
            return
        decision = await self.limiter.hit(bucket, key, rate)
        if not decision.allowed:
            raise _refused(what, decision.retry_after_seconds)

    async def _check_ip(self, scope: Scope, bucket: str, rate: RateLimit | None, what: str) -> None:
        if rate is None:
            return
        ip = self.proxies.client_ip(scope)
        if ip is not None:
            await self._check(bucket, _ip_key(ip), rate, what + " from this address")

    async def check_login(self, scope: Scope, organization_id: str | None) -> None:
        """An intercepted login POST (its email belongs to an SSO-required organization)."""
        await self._check_ip(scope, "login", self.login, "sign-in attempts")
        if organization_id is not None:
            await self._check("org", organization_id, self.org, "sign-ins for this organization")

    async def _connection_org(self, connection_id: str) -> str | None:
        try:
            connection = await self.gate.connections.get_cached(connection_id)
        except SSOGateError:
            return None  # unknown connection or database down: the route answers that
        return str(connection.organization_id)

    async def _authorize_org(self, scope: Scope) -> str | None:
        raw: bytes = scope.get("query_string", b"")
        query = dict(parse_qsl(raw.decode("latin-1")))
        if query.get("organization"):
            return query["organization"][:64]
        if query.get("connection"):
            return await self._connection_org(query["connection"][:64])
        email = query.get("email")
        if not email:
            return None
        try:
            decision = self.gate.routing.cached(email) or await self.gate.routing.for_email(email)
        except SSOGateError:
            return None
        return None if decision is None else decision.organization_id

    def is_scim(self, path: str) -> bool:
        return path.startswith(self.scim_prefix)

    def is_api(self, path: str) -> bool:
        return path.startswith(self.api_path) and (
            len(path) == len(self.api_path) or path[len(self.api_path)] == "/"
        )

    async def check_route(self, scope: Scope) -> None:
        """Count a request to the gate's routes where a limit applies; raise
        :class:`RateLimitedError` when it is over one."""
        path: str = scope["path"]
        method = scope["method"]
        if self.is_scim(path):
            directory = path[len(self.scim_prefix) :].split("/", 1)[0]
            await self._check_ip(scope, "scim_ip", self.scim_ip, "SCIM requests")
            await self._check("scim", directory, self.scim, "SCIM requests for this directory")
            return
        if self.is_api(path):
            await self._check_ip(scope, "api_ip", self.api_ip, "API requests")
            if self.api is not None:
                key = self._api_key(scope)
                if key is not None:
                    await self._check("api", key, self.api, "API requests with this key")
            return
        if method == "GET" and path == self.authorize_path:
            await self._check_ip(scope, "login", self.login, "sign-in attempts")
            if self.org is not None:
                org = await self._authorize_org(scope)
                if org is not None:
                    await self._check("org", org, self.org, "sign-ins for this organization")
            return
        connection_id = None
        if method == "POST" and path.startswith(self.saml_prefix) and path.endswith("/acs"):
            connection_id = path[len(self.saml_prefix) : -len("/acs")]
        elif method == "GET" and path.startswith(self.oidc_prefix) and path.endswith("/callback"):
            connection_id = path[len(self.oidc_prefix) : -len("/callback")]
        if connection_id is not None:
            await self._check_ip(scope, "callback", self.callback, "sign-in responses")
            if self.org is not None and connection_id and "/" not in connection_id:
                org = await self._connection_org(connection_id[:64])
                if org is not None:
                    await self._check("org", org, self.org, "sign-ins for this organization")
        elif method == "GET" and path.startswith(self.portal_link_prefix):
            await self._check_ip(scope, "portal", self.portal, "portal links opened")

    @staticmethod
    def _api_key(scope: Scope) -> str | None:
        """The presented bearer key, hashed (a key never lands in memory or Redis in clear)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hashlib.sha256(value).hexdigest()[:32]
        return None


class _LimitedRoutes:
    """ASGI wrapper of the gate's router: refuse over-limit requests before routing."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                await self.limits.check_route(scope)
            except RateLimitedError as exc:
                await self._refuse(scope, exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refuse(self, scope: Scope, exc: RateLimitedError) -> Response:
        """429 in the form the caller reads: SCIM error, API JSON, or a page for a browser."""
        path: str = scope["path"]
        if self.limits.is_scim(path):
            # RFC 7644 §3.12: a SCIM Error message whose "status" is the HTTP status, as a string
            body = SCIMError(exc.message, status=429).to_scim()
            return Response(
                json.dumps(body, separators=(",", ":")).encode(),
                status_code=429,
                media_type="application/scim+json",
                headers={"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"},
            )
        return error_response(exc, self.limits.is_api(path) or wants_json(Headers(scope=scope)))
