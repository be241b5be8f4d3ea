"""Around the gate's own routes (under the prefix; the app's pass-through never gets here):
request ids, the allowed-hosts check, metrics, an access log, and the operational endpoints
``{prefix}/healthz``, ``{prefix}/readyz`` and ``{prefix}/metrics``.

* ``healthz`` (liveness) answers ``200 {"status": "ok"}`` without touching the database.
* ``readyz`` (readiness) runs ``SELECT 1`` and, when a Redis one-time store is configured, a
  ``PING``, each within ``SSO_GATE_READYZ_TIMEOUT``: ``200`` or ``503`` naming what failed.
  The answer is reused for one second, so probes cannot load the database.
* ``metrics`` is the Prometheus text format, behind ``Authorization: Bearer`` with
  ``SSO_GATE_METRICS_TOKEN`` — or, when that is unset, the admin API key; with neither the
  endpoint is off (404). A scraper should get the metrics token, not the admin key.

These three skip the allowed-hosts check (probes and scrapers address the instance by IP) and
need no session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import Route

from sso_gate._crypto import constant_time_equals
from sso_gate.logs import new_request_id, request_id, sane_request_id
from sso_gate.metrics import CONTENT_TYPE
from sso_gate.web.responses import json_response

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["GateRoutes", "route_template"]

access_log = logging.getLogger("sso_gate.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_READY_CACHE_SECONDS = 1.0


def route_template(scope: Scope, root_before: str = "") -> str | None:
    """The template of the route that served ``scope`` (``/sso-gate/api/organizations/{id}``),
    read from what Starlette's routers left in it, or None when no route matched. Used for
    metric labels and log lines: a raw path can hold a secret (a portal link token)."""
    route = scope.get("route")
    if not isinstance(route, Route):  # nothing matched, or a Mount's router found nothing
        return None
    root: str = scope.get("root_path", "")
    return root[len(root_before) :] + route.path


class _Hosts:
    """``SSO_GATE_ALLOWED_HOSTS``: exact names, ``*.example.com`` (any subdomain), ``*``."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        lowered = [p.lower() for p in patterns]
        self.any = "*" in lowered
        self.exact = frozenset(p for p in lowered if not p.startswith("*"))
        self.suffixes = tuple(p[1:] for p in lowered if p.startswith("*."))

    def allows(self, value: bytes | None) -> bool:
        if self.any:
            return True
        if value is None:
            return False
        host = value.decode("latin-1").lower()
        if host.startswith("["):  # [v6]:port
            host = host.split("]", 1)[0] + "]"
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        return host in self.exact or host.endswith(self.suffixes)


class GateRoutes:
    """Wraps the gate's router (see the module docstring)."""

    def __init__(self, router: ASGIApp, gate: SSOGate) -> None:
        s = gate.settings
        self.router = router
        self.gate = gate
        self.metrics = gate.metrics
        self.prefix = s.prefix
        self.ops: dict[str, Callable[[Scope], Any]] = {
            s.prefix + "/healthz": self._healthz,
            s.prefix + "/readyz": self._readyz,
            s.prefix + "/metrics": self._metrics,
        }
        self.hosts = _Hosts(s.allowed_hosts) if s.allowed_hosts else None
        self.metrics_key = s.metrics_token or s.admin_api_key
        self._ready: tuple[float, int, dict[str, Any]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        rid = None
        host = None
        for key, value in headers:
            if key == b"x-request-id":
                rid = sane_request_id(value)
            elif key == b"host":
                host = value
        rid = rid or new_request_id()
        rid_header = (b"x-request-id", rid.encode())
        status = 500
        responded: float | None = None

        async def tracked_send(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = time.perf_counter()
                message = {**message, "headers": [*message.get("headers", ()), rid_header]}
            await send(message)

        token = request_id.set(rid)
        root_before: str = scope.get("root_path", "")
        path: str = scope["path"]
        op = self.ops.get(path)
        route: str | None = None
        try:
            if op is not None:
                route = path[len(self.prefix) :]
                await op(scope)(scope, receive, tracked_send)
            elif self.hosts is not None and not self.hosts.allows(host):
                route = "invalid_host"
                await json_response(
                    {"code": "invalid_host", "message": "this Host is not allowed"}, 400
                )(scope, receive, tracked_send)
            else:
                await self.router(scope, receive, tracked_send)
                template = route_template(scope, root_before)
                if template is not None and template.startswith(self.prefix):
                    route = template[len(self.prefix) :]
        finally:
            elapsed = (responded or time.perf_counter()) - started
            method: str = scope["method"]
            label = route or "unmatched"
            self.metrics.request(method, label, status, elapsed)
            level = logging.DEBUG if op is not None else logging.INFO
            if access_log.isEnabledFor(level):
                access_log.log(
                    level,
                    "%s %s%s %d",
                    method,
                    self.prefix,
                    label,
                    status,
                    extra={
                        "method": method,
                        "route": self.prefix + label,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id.reset(token)

    # -- operational endpoints ----------------------------------------------------------------

    def _healthz(self, scope: Scope) -> Response:
        return json_response({"status": "ok"})

    async def _ready_answer(self) -> tuple[int, dict[str, Any]]:
        now = time.monotonic()
        if self._ready is not None and now - self._ready[0] < _READY_CACHE_SECONDS:
            return self._ready[1], self._ready[2]
        checks = await self.gate.health.readiness()
        ok = all(c["status"] == "ok" for c in checks.values())
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        code = 200 if ok else 503
        self._ready = (time.monotonic(), code, body)
        return code, body

    def _readyz(self, scope: Scope) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            code, body = await self._ready_answer()
            await json_response(body, code)(scope, receive, send)

        return app

    def _metrics(self, scope: Scope) -> Response:
        key = self.metrics_key
        if key is None:
            return json_response(
                {
                    "code": "metrics_disabled",
                    "message": "metrics are off (set SSO_GATE_METRICS_TOKEN)",
                },
                404,
            )
        auth = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
        scheme, _, given = auth.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not constant_time_equals(given.strip(), key.reveal()):
            return json_response(
                {"code": "unauthorized", "message": "missing or invalid metrics token"},
                401,
                {"WWW-Authenticate": 'Bearer realm="sso_gate_metrics"'},
            )
        return Response(
            self.metrics.exposition(),
            media_type=CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )
