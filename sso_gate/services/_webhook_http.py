"""The delivery worker's HTTP/1.1 client: keep-alive connections per origin over asyncio
streams, with h11 (the protocol engine inside httpcore, so httpx's own parser) reading and
writing the messages.

Why not httpx for this one job: a webhook delivery is one small POST whose answer is read only
for its status and first bytes, and httpx's layers (request building and merging, httpcore's
pool bookkeeping, AnyIO cancel scopes and socket attributes looked up on every pool change)
cost ~1.2 ms of CPU per POST on a 2 vCPU VM, most of the worker's CPU; this client does the
same exchange in a fraction of that (BENCHMARKS.md, "Webhooks"). What it does:

- ``POST`` with ``host``, ``user-agent``, ``content-length`` and the caller's headers; no
  redirects followed (a 3xx is an answer, as with ``follow_redirects=False``), no cookies, no
  compression asked for.
- TLS with httpx's context (``httpx.create_ssl_context()``: certifi's CAs, or
  ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), SNI and hostname checked.
- Connections are reused when both sides end the exchange cleanly, dropped after
  ``KEEPALIVE`` seconds idle, and a reused connection that the receiver closed while it was
  idle is replaced once, transparently (nothing of the answer had arrived).
- An answer body is read up to ``limit`` bytes; a longer one is not drained: its connection is
  closed instead.
- No proxy support: the worker uses httpx (which honours ``HTTPS_PROXY`` and the like) when a
  proxy is configured in the environment, see :func:`proxies_configured`.

The caller bounds the whole exchange with one deadline (``asyncio.wait_for``); a cancelled
exchange closes its connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

import h11
import httpx

__all__ = ["PostError", "WebhookHTTP", "proxies_configured"]

KEEPALIVE = 5.0  # seconds an idle connection is kept (httpx's default keepalive_expiry)
_READ = 65536


class PostError(Exception):
    """No HTTP answer: ``str(exc)`` says why, in words fit for an attempt record."""


class _Stale(Exception):
    """A reused connection was closed by the receiver before any of the answer arrived."""


def proxies_configured() -> bool:
    """Whether the environment names an HTTP(S) proxy (then the worker sends through httpx)."""
    found = urllib.request.getproxies()
    return any(k in found for k in ("http", "https", "all"))


class _Conn:
    __slots__ = ("reader", "writer", "h11", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()  # no wait for the peer: the transport is released either way


class WebhookHTTP:
    """POSTs webhook payloads; ``max_idle`` idle connections are kept per origin."""

    def __init__(self, *, user_agent: str, max_idle: int) -> None:
        self._user_agent = user_agent
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, *, limit: int
    ) -> tuple[int, bytes]:
        """``POST body`` to ``url``: (status, up to ``limit`` bytes of the answer's body).
        Raises :class:`PostError` when no answer came (the caller bounds the time)."""
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise PostError("not an absolute http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise PostError("the URL's port is not valid") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            request = h11.Request(
                method="POST",
                target=target,
                headers=[
                    ("host", parts.netloc),
                    ("user-agent", self._user_agent),
                    ("content-length", str(len(body))),
                    *headers.items(),
                ],
            )
        except h11.LocalProtocolError as exc:
            raise PostError(f"the request cannot be sent ({exc})") from None
        key = (parts.scheme, host, port)
        conn = self._take(key)
        if conn is not None:
            try:
                return await self._exchange(conn, key, request, body, limit, reused=True)
            except _Stale:
                pass  # the receiver closed it while idle: once more on a new connection
        conn = await self._connect(*key)
        try:
            return await self._exchange(conn, key, request, body, limit, reused=False)
        except _Stale:  # pragma: no cover - only reused connections raise it
            raise PostError("the receiver closed the connection or broke HTTP") from None

    def _take(self, key: tuple[str, str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if (
                now - conn.idle_since < KEEPALIVE
                and not conn.reader.at_eof()
                and not conn.writer.is_closing()
            ):
                return conn
            conn.close()
        return None

    def _put(self, key: tuple[str, str, int], conn: _Conn) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, scheme: str, host: str, port: int) -> _Conn:
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()  # the CAs httpx would trust
            tls = self._ssl
        try:
            # Happy Eyeballs (RFC 8305) as httpx/AnyIO do it: with IPv6 and IPv4 addresses, a
            # black-holed IPv6 route does not use up the delivery's whole timeout
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=tls,
                server_hostname=host if tls else None,
                limit=_READ,
                happy_eyeballs_delay=0.25,
            )
        except ssl.SSLCertVerificationError as exc:
            raise PostError(f"TLS certificate not trusted ({exc.verify_message})") from None
        except ssl.SSLError as exc:
            raise PostError(f"TLS handshake failed ({exc.reason or type(exc).__name__})") from None
        except OSError:
            raise PostError("connection refused or host unreachable") from None
        return _Conn(reader, writer)

    async def _exchange(
        self,
        conn: _Conn,
        key: tuple[str, str, int],
        request: h11.Request,
        body: bytes,
        limit: int,
        *,
        reused: bool,
    ) -> tuple[int, bytes]:
        keep = False
        received = False
        try:
            out = b"".join(
                conn.h11.send(e) or b"" for e in (request, h11.Data(data=body), h11.EndOfMessage())
            )
            try:
                conn.writer.write(out)
                await conn.writer.drain()
            except OSError:
                if reused:
                    raise _Stale from None
                raise PostError("the receiver closed the connection or broke HTTP") from None
            status = 0
            excerpt = bytearray()
            while True:
                try:
                    event = conn.h11.next_event()
                except h11.RemoteProtocolError:
                    raise PostError("the receiver closed the connection or broke HTTP") from None
                if event is h11.NEED_DATA:
                    try:
                        chunk = await conn.reader.read(_READ)
                    except OSError:
                        chunk = b""
                    if not chunk and reused and not received:
                        raise _Stale
                    received = received or bool(chunk)
                    conn.h11.receive_data(chunk)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    excerpt += event.data[: limit - len(excerpt)]
                    if len(excerpt) >= limit:  # enough: the rest is not read
                        return status, bytes(excerpt)
                elif isinstance(event, h11.EndOfMessage):
                    keep = conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE
                    if keep:
                        conn.h11.start_next_cycle()
                    return status, bytes(excerpt)
                elif isinstance(event, h11.ConnectionClosed):
                    raise PostError("the receiver closed the connection or broke HTTP")
                # InformationalResponse (1xx): wait for the final answer
        finally:
            if keep:
                self._put(key, conn)
            else:
                conn.close()

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
