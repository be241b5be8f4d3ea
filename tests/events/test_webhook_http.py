"""The delivery worker's own HTTP/1.1 client (``services/_webhook_http.py``) against real
sockets on loopback: plain asyncio servers that answer well, badly, slowly or not at all."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from sso_gate.services._webhook_http import PostError, WebhookHTTP, proxies_configured
from tests.audit.receivers import self_signed

pytestmark = pytest.mark.anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Server:
    """A loopback server; ``connections`` counts accepted connections, ``requests`` keeps the
    head and body of every request read by :meth:`read_request`."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    def url(self, scheme: str = "http", path: str = "/hook?x=1") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        self.requests.append((head, body))
        return head


def keep_alive(answer: bytes = OK, *, close_after: bool = False) -> Callable[[Server], Handler]:
    """Answers every request on the connection with ``answer``; with ``close_after`` the
    server closes the connection after each answer without saying so."""

    def make(srv: Server) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await srv.read_request(reader)
                writer.write(answer)
                await writer.drain()
                if close_after:
                    return

        return handler

    return make


@pytest.fixture
async def client() -> AsyncIterator[WebhookHTTP]:
    c = WebhookHTTP(user_agent="sso-gate-webhooks/1", max_idle=4)
    yield c
    await c.aclose()


async def serve(make: Callable[[Server], Handler]) -> Server:
    srv = Server(lambda r, w: asyncio.sleep(0))
    srv.handler = make(srv)
    return srv


async def test_posts_on_one_kept_alive_connection(client: WebhookHTTP) -> None:
    async with await serve(keep_alive()) as srv:
        for i in range(5):
            status, body = await client.post(
                srv.url(), {"webhook-id": f"evt_{i}"}, b'{"n": %d}' % i, limit=500
            )
            assert (status, body) == (200, b"ok")
        assert srv.connections == 1
        head, body = srv.requests[-1]
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /hook?x=1 HTTP/1.1"
        assert f"host: 127.0.0.1:{srv.port}" in lines
        assert "user-agent: sso-gate-webhooks/1" in lines
        assert "content-length: 8" in lines and "webhook-id: evt_4" in lines
        assert body == b'{"n": 4}'


async def test_a_connection_closed_while_idle_is_replaced_once(client: WebhookHTTP) -> None:
    """The receiver closes each connection after answering (keep-alive not honoured): the next
    POST finds its pooled connection dead and sends again on a new one, without an error."""
    async with await serve(keep_alive(close_after=True)) as srv:
        for _ in range(3):
            assert await client.post(srv.url(), {}, b"{}", limit=500) == (200, b"ok")
            await asyncio.sleep(0.05)  # the close reaches us
        assert srv.connections == 3 and len(srv.requests) == 3


async def test_connection_close_and_long_answers_are_not_reused(client: WebhookHTTP) -> None:
    closing = b"HTTP/1.1 503 Busy\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbusy"
    async with await serve(keep_alive(closing)) as srv:
        assert await client.post(srv.url(), {}, b"{}", limit=500) == (503, b"busy")
        assert await client.post(srv.url(), {}, b"{}", limit=500) == (503, b"busy")
        assert srv.connections == 2
    long = b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"x" * 100_000
    async with await serve(keep_alive(long)) as srv:
        status, body = await client.post(srv.url(), {}, b"{}", limit=500)
        assert status == 200 and body == b"x" * 500  # an excerpt; the rest is not read
        await client.post(srv.url(), {}, b"{}", limit=500)
        assert srv.connections == 2


async def test_chunked_and_informational_answers(client: WebhookHTTP) -> None:
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    async with await serve(keep_alive(chunked)) as srv:
        assert await client.post(srv.url(), {}, b"{}", limit=500) == (202, b"abcdefg")
        assert await client.post(srv.url(), {}, b"{}", limit=5) == (202, b"abcde")
    closed_framing = b"HTTP/1.0 200 OK\r\n\r\nuntil close"
    async with await serve(keep_alive(closed_framing, close_after=True)) as srv:
        assert await client.post(srv.url(), {}, b"{}", limit=500) == (200, b"until close")


async def test_no_answer_is_a_clear_error(client: WebhookHTTP) -> None:
    async with await serve(keep_alive(b"HELLO THERE\r\n\r\n")) as srv:
        with pytest.raises(PostError, match="broke HTTP"):
            await client.post(srv.url(), {}, b"{}", limit=500)

    def hang_up(srv: Server) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await srv.read_request(reader)  # and close without answering

        return handler

    async with await serve(hang_up) as srv:
        with pytest.raises(PostError, match="closed the connection"):
            await client.post(srv.url(), {}, b"{}", limit=500)
        port = srv.port
    with pytest.raises(PostError, match="connection refused"):
        await client.post(f"http://127.0.0.1:{port}/hook", {}, b"{}", limit=500)
    with pytest.raises(PostError, match="cannot be sent"):
        await client.post(f"http://127.0.0.1:{port}/a b", {}, b"{}", limit=500)


async def test_a_timed_out_exchange_closes_its_connection(client: WebhookHTTP) -> None:
    answered, release = asyncio.Event(), asyncio.Event()

    def slow_first(srv: Server) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await srv.read_request(reader)
            if srv.connections == 1:
                await release.wait()  # never answers in time
            writer.write(OK)
            await writer.drain()
            answered.set()
            await reader.read()

        return handler

    async with await serve(slow_first) as srv:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.post(srv.url(), {}, b"{}", limit=500), 0.2)
        assert await client.post(srv.url(), {}, b"{}", limit=500) == (200, b"ok")
        assert srv.connections == 2  # the timed-out connection was not reused
        assert answered.is_set()
        release.set()


async def test_tls_is_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A receiver whose certificate nobody trusts is refused; trusted through SSL_CERT_FILE
    (as httpx would), the same receiver gets the POST over TLS."""
    pair = self_signed(tmp_path)
    srv = Server(lambda r, w: asyncio.sleep(0), tls=pair.server_context())
    srv.handler = keep_alive()(srv)
    async with srv:
        untrusting = WebhookHTTP(user_agent="t", max_idle=1)
        with pytest.raises(PostError, match="TLS certificate not trusted"):
            await untrusting.post(srv.url("https"), {}, b"{}", limit=500)
        await untrusting.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(pair.cert_file))
        trusting = WebhookHTTP(user_agent="t", max_idle=1)
        assert await trusting.post(srv.url("https"), {}, b"{}", limit=500) == (200, b"ok")
        assert await trusting.post(srv.url("https"), {}, b"{}", limit=500) == (200, b"ok")
        assert srv.connections == 1  # one kept-alive connection (the refused one never got in)
        await trusting.aclose()


def test_a_configured_proxy_sends_the_worker_through_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    assert not proxies_configured()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxies_configured()


async def test_the_worker_picks_its_client(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own client by default; httpx when a proxy is configured or a client is injected."""
    import httpx

    from sso_gate import SSOGate
    from tests.conftest import make_settings

    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    gates = [SSOGate(make_settings(database_url))]
    assert gates[0].worker._own is not None
    gates.append(SSOGate(make_settings(database_url), http_client=httpx.AsyncClient()))
    assert gates[1].worker._own is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    gates.append(SSOGate(make_settings(database_url)))
    assert gates[2].worker._own is None and gates[2].worker.clients()
    for g in gates:
        await g.aclose()
