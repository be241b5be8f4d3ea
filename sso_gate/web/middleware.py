"""The gate: a pure ASGI middleware (no ``BaseHTTPMiddleware``: it costs ~13x a bare request).

Per HTTP request it does, in order:
1. requests under the prefix go to the gate's own routes;
2. the session cookie, if any, is resolved (cache hit: a dict lookup) into ``scope["sso_gate"]``;
3. ``POST {login_path}`` is read (up to ``max_login_body``), its email routed: an SSO-required
   domain is sent to its IdP (303 for forms, 409 JSON for XHR/JSON); anything else reaches the
   app with the body replayed byte for byte.
Everything else, and every non-HTTP scope (websocket, lifespan), passes through untouched.
Anonymous requests never touch the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode

from sso_gate.exceptions import PayloadTooLargeError, SSOGateError, ValidationError
from sso_gate.services.audit import request_context
from sso_gate.web._client import ProxyPolicy, audit_context
from sso_gate.web._ratelimit import RateLimits
from sso_gate.web.context import SSOContext
from sso_gate.web.observability import GateRoutes
from sso_gate.web.responses import cookie_name, error_response

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate
    from sso_gate.models import RoutingDecision

__all__ = ["GateMiddleware"]

log = logging.getLogger("sso_gate.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def read_cookie(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of one cookie, without parsing the whole header into a dict."""
    for key, value in headers:
        if key == b"cookie" and name in value:  # (no match is possible otherwise)
            for part in value.split(b";"):
                k, sep, v = part.strip().partition(b"=")
                if sep and k == name:
                    try:
                        return v.decode("ascii")
                    except UnicodeDecodeError:
                        return None
    return None


class GateMiddleware:
    def __init__(self, app: ASGIApp, gate: SSOGate) -> None:
        from sso_gate.web.routes import build_router

        self.app = app
        self.gate = gate
        s = gate.settings
        self.prefix = s.prefix
        self.prefix_slash = s.prefix + "/"
        self.login_path = s.login_path
        self.cookie = cookie_name(s, s.cookie_name).encode()
        self.max_body = s.max_login_body
        self.email_field = s.email_field
        self.limits = RateLimits(gate)  # abuse controls: 429 + Retry-After
        routes = self.limits.wrap(build_router(gate))
        self.router = GateRoutes(routes, gate)  # ids, metrics, healthz/readyz
        self.anonymous = SSOContext(gate, None)
        self.sessions = gate.sessions
        self.routing = gate.routing
        self.proxies = ProxyPolicy(s.trusted_proxies)
        self.api_prefix = s.prefix + "/api/"
        self.scim_prefix = s.prefix + "/scim/v2/"

    def _actor(self, path: str) -> dict[str, str] | None:
        """The audit actor of a gate route. Set before authentication: nothing is written for a
        request that fails it. SSO routes take the user from the event instead."""
        if path.startswith(self.api_prefix):
            return {"type": "api_key", "id": "admin_api_key", "name": "management API"}
        if path.startswith(self.scim_prefix):
            directory_id = path[len(self.scim_prefix) :].split("/", 1)[0][:255]
            return {"type": "directory", "id": directory_id, "name": "SCIM"}
        return None

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Start the delivery worker once the app has started (its own startup may migrate the
        database) and stop it when shutdown begins. If the wrapped app does not speak the
        lifespan protocol, answer it ourselves."""
        gate = self.gate
        received_startup = False

        async def relay_receive() -> Message:
            nonlocal received_startup
            message = await receive()
            if message["type"] == "lifespan.startup":
                received_startup = True
            elif message["type"] == "lifespan.shutdown":
                await gate.stop_worker()
            return message

        async def relay_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                await gate.start_worker()
            await send(message)

        try:
            await self.app(scope, relay_receive, relay_send)
        except Exception:
            if received_startup:
                raise
            log.info("the wrapped app does not support lifespan; the gate answers it")
            while True:
                message = await relay_receive()
                if message["type"] == "lifespan.startup":
                    await relay_send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(self.prefix_slash) or path == self.prefix:
            # audit entries written while serving a gate route carry who called and from where
            with request_context(
                actor=self._actor(path), context=audit_context(scope, self.proxies)
            ):
                await self.router(scope, receive, send)
            return
        ctx = self.anonymous
        cookie = read_cookie(scope["headers"], self.cookie)
        if cookie is not None:
            session = self.sessions.cached(cookie)
            if session is None:
                try:
                    session = await self.sessions.verify(cookie)
                except SSOGateError:
                    # Database down: the request continues as anonymous rather than failing.
                    log.warning("session check failed; treating request as anonymous")
            if session is not None:
                ctx = SSOContext(self.gate, session)
        scope["sso_gate"] = ctx
        if path != self.login_path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return

        # POST {login_path}, here rather than in a method: one coroutine less on the hot path (a
        # urlencoded form of a non-SSO domain), which decodes only the two headers it needs; the
        # others are decoded, from this same snapshot, only on the SSO and error paths.
        raw = dict(scope["headers"])
        try:
            limit = self.max_body
            declared = raw.get(b"content-length")
            if declared is not None:
                declared_str = declared.decode("latin-1")
                if declared_str.isascii() and declared_str.isdigit() and int(declared_str) > limit:
                    raise PayloadTooLargeError(f"login request body is larger than {limit} bytes")
            # The usual body is one message: read it here (as ``_chunk`` does), no coroutine.
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ValidationError("client disconnected", code="client_disconnected")
            body = message.get("body", b"")
            if len(body) > limit:
                raise PayloadTooLargeError(f"login request body is larger than {limit} bytes")
            if message.get("more_body", False):
                body = await _read_rest(receive, limit, body)
            elif type(body) is not bytes:
                body = b"".join((body,))  # (what joining the chunks always returned)
            ctype = raw.get(b"content-type")
            if ctype == _URLENCODED_BYTES or _is_urlencoded(ctype):
                email = _form_email(body, self.email_field)
            else:
                email = await _extract_email(scope, body, _str_headers(raw), self.email_field)
            if email is None:
                decision = None
            else:
                decision = self.routing.cached(email)
                if decision is None:
                    decision = await self.routing.for_email(email)
            if decision is None or not decision.sso_required:
                await self.app(scope, _Replay(body, receive), send)
                return
            assert email is not None
            if self.limits.login_limited:  # (SSO-routed posts only: pass-through pays nothing)
                await self.limits.check_login(scope, decision.organization_id)
            await self._start_sso(scope, receive, send, raw, body, email, decision)
        except SSOGateError as exc:
            await error_response(exc, _is_api_call(_str_headers(raw)))(scope, receive, send)

    # -- login interception: an SSO-required domain ---------------------------------------------

    async def _start_sso(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw: dict[bytes, bytes],
        body: bytes,
        email: str,
        decision: RoutingDecision,
    ) -> None:
        headers = _str_headers(raw)
        return_to = _return_to_param(scope, body, headers)
        if _is_api_call(headers):
            query = {"email": email, **({"return_to": return_to} if return_to else {})}
            url = self.gate.settings.gate_url("/sso/authorize?" + urlencode(query))
            from starlette.responses import JSONResponse

            api_resp = JSONResponse(
                {
                    "error": "sso_required",
                    "message": "This email's organization signs in with SSO.",
                    "organization_id": decision.organization_id,
                    "authorization_url": url,
                },
                status_code=409,
                headers={"Cache-Control": "no-store"},
            )
            await api_resp(scope, receive, send)
            return
        from sso_gate.web.routes import start_sso_response

        assert decision.connection_id is not None
        resp = await start_sso_response(
            self.gate, scope, decision.connection_id, return_to, login_hint=email
        )
        await resp(scope, receive, send)


def _str_headers(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in raw.items()}


_URLENCODED = "application/x-www-form-urlencoded"
_URLENCODED_BYTES = _URLENCODED.encode()


def _is_urlencoded(ctype: bytes | None) -> bool:
    """What ``_extract_email`` tests, with an exact-bytes shortcut for the usual header."""
    if ctype == _URLENCODED_BYTES:
        return True
    if ctype is None:
        return False
    return ctype.decode("latin-1").split(";")[0].strip().lower() == _URLENCODED


def _is_api_call(headers: dict[str, str]) -> bool:
    if headers.get("x-requested-with", "").lower() == "xmlhttprequest":
        return True
    return headers.get("content-type", "").startswith("application/json")


# Reading the login body (at most ``limit`` bytes): ``Content-Length`` is checked first, then the
# messages are read until ``more_body`` is false; a disconnect is an error.


def _chunk(message: Message, limit: int, size: int) -> tuple[bytes, bool]:
    """One request message's body and whether more follows (``size``: bytes read before it)."""
    if message["type"] == "http.disconnect":
        raise ValidationError("client disconnected", code="client_disconnected")
    chunk: bytes = message.get("body", b"")
    if size + len(chunk) > limit:
        raise PayloadTooLargeError(f"login request body is larger than {limit} bytes")
    return chunk, bool(message.get("more_body", False))


async def _read_rest(receive: Receive, limit: int, first: bytes) -> bytes:
    chunks = [first]
    size = len(first)
    more = True
    while more:
        chunk, more = _chunk(await receive(), limit, size)
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


class _Replay:
    """A receive callable that yields the buffered body once, then defers to the real one."""

    __slots__ = ("body", "receive", "sent")

    def __init__(self, body: bytes, receive: Receive) -> None:
        self.body = body
        self.receive = receive
        self.sent = False

    async def __call__(self) -> Message:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        return await self.receive()


async def _extract_email(
    scope: Scope, body: bytes, headers: dict[str, str], field: str
) -> str | None:
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return _form_email(body, field)
    if ctype == "application/json" or ctype.endswith("+json"):
        if not body.strip():
            return None
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValidationError("login body is not valid JSON", code="malformed_body") from None
        found = data.get(field) if isinstance(data, dict) else None
        return (found.strip() or None) if isinstance(found, str) else None
    if ctype == "multipart/form-data":
        from starlette.requests import Request

        async def once() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, once).form(max_files=0, max_fields=1000)
        except Exception:
            raise ValidationError(
                "login form (multipart) is malformed", code="malformed_body"
            ) from None
        item = form.get(field)
        await form.close()
        return (item.strip() or None) if isinstance(item, str) else None
    return None


def _form_email(body: bytes, field: str) -> str | None:
    """The stripped ``field`` of a urlencoded login form, or None.

    The first ``field`` that ``parse_qsl(text, keep_blank_values=True)`` would find, without
    decoding the fields before it or any after it; more than 1000 fields is a 400.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("login form is not valid UTF-8", code="malformed_body") from None
    parts = text.split("&")
    if len(parts) > 1000:
        raise ValidationError("login form has more than 1000 fields", code="malformed_body")
    for part in parts:
        if not part:
            continue
        name, _, value = part.partition("=")
        if "+" in name or "%" in name:
            name = unquote(name.replace("+", " "))
        if name == field:
            if "+" in value or "%" in value:
                value = unquote(value.replace("+", " "))
            return value.strip() or None
    return None


def _return_to_param(scope: Scope, body: bytes, headers: dict[str, str]) -> str | None:
    """``return_to`` or ``next`` from the query string or the form (validated later)."""
    query: dict[str, str] = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    for key in ("return_to", "next"):
        if query.get(key):
            return query[key]
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        for key in ("return_to", "next"):
            if form.get(key):
                return form[key]
    return None
