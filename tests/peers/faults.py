"""Fault injection for the end-to-end tests: a TCP proxy that can be cut and restored (put
between the app and PostgreSQL or Redis), and an HTTP server whose paths can hang, trickle, reset
or fail (an identity provider having a bad day).

Both run on one asyncio loop in a background thread (:class:`FaultLoop`), so a synchronous test
drives them with plain method calls while real app processes talk to them over loopback.

* :meth:`TcpProxy.cut` closes every open connection (reset) and stops listening, so new
  connections are refused — what a stopped PostgreSQL looks like to its clients.
  :meth:`TcpProxy.blackhole` keeps accepting but forwards nothing (a network partition).
  :meth:`TcpProxy.restore` listens again on the same port.
* :class:`HttpStub` answers with a plain function ``httpx.Request -> httpx.Response`` (e.g.
  ``FakeIdP.handle``); ``faults[path]`` bends one path: ``"hang"`` (never answers), ``"trickle"``
  (headers at once, then one body byte every ``trickle_delay`` seconds), ``"reset"`` (closes the
  connection without an answer) or ``"error"`` (503). :meth:`HttpStub.stop` refuses connections.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

import httpx

__all__ = ["FaultLoop", "TcpProxy", "HttpStub", "HttpFault"]

T = TypeVar("T")
HttpFault = Literal["hang", "trickle", "reset", "error"]


class FaultLoop:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.listeners: list[_Listener] = []

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop every listener (their connections end), then the loop."""

        async def stop_all() -> None:
            for listener in self.listeners:
                await listener._stop()
            for _ in range(50):
                if len(asyncio.all_tasks()) <= 1:
                    break
                await asyncio.sleep(0.02)

        self.call(stop_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


class _Listener:
    """A TCP listener on 127.0.0.1 that can stop (refusing connections) and start again on the
    same port, aborting the connections it accepted when it stops."""

    def __init__(self, loop: FaultLoop, port: int = 0) -> None:
        self._fl = loop
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        loop.listeners.append(self)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()  # graceful: what was written is still delivered

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._accepted, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._drop_connections()

    async def _drop_connections(self) -> None:
        """Reset every connection: their readers see the end, so their handlers return."""
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.sleep(0.01)

    def start(self) -> None:
        self._fl.call(self._start())

    def stop(self) -> None:
        self._fl.call(self._stop())

    @property
    def listening(self) -> bool:
        return self._server is not None


class TcpProxy(_Listener):
    """``127.0.0.1:port`` forwarded to ``target``; see the module docstring."""

    def __init__(self, loop: FaultLoop, target_host: str, target_port: int) -> None:
        super().__init__(loop)
        self.target = (target_host, target_port)
        self.mode: Literal["forward", "blackhole"] = "forward"
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "blackhole":
            await _swallow(reader)  # until the client gives up, or cut / restore
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # lost in the partition
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self.stop()

    def blackhole(self) -> None:
        """Forward nothing any more, on open connections and on new ones (which are still
        accepted): a network partition, where nothing is refused and nothing answers."""
        self.mode = "blackhole"
        if not self.listening:
            self.start()

    def restore(self) -> None:
        """Forward again (listening on the same port)."""
        if self.mode == "blackhole":
            self._fl.call(self._drop_connections())
        self.mode = "forward"
        if not self.listening:
            self.start()


async def _swallow(reader: asyncio.StreamReader) -> None:
    """Read and drop until the connection ends."""
    while await reader.read(65536):
        pass


class HttpStub(_Listener):
    """A minimal HTTP/1.1 server (one request per connection) answering with ``handler``."""

    def __init__(
        self,
        loop: FaultLoop,
        handler: Callable[[httpx.Request], httpx.Response],
        trickle_delay: float = 0.25,
    ) -> None:
        super().__init__(loop)
        self.handler = handler
        self.trickle_delay = trickle_delay
        self.faults: dict[str, HttpFault] = {}
        self.hits: Counter[str] = Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
        pairs = [(k.strip(), v.strip()) for k, v in headers]
        length = next((int(v) for k, v in pairs if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        self.hits[path] += 1
        fault = self.faults.get(path)
        if fault == "hang":
            await _swallow(reader)
            return
        if fault == "reset":
            return
        if fault == "error":
            response = httpx.Response(503, json={"error": "temporarily_unavailable"})
        else:
            request = httpx.Request(method, self.url + target, headers=pairs, content=body)
            response = self.handler(request)
        content = response.read()
        out = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
        out += [
            f"{k}: {v}"
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "connection", "transfer-encoding")
        ]
        out += [f"content-length: {len(content)}", "connection: close", "", ""]
        writer.write("\r\n".join(out).encode("latin-1"))
        if fault == "trickle":
            for i in range(len(content)):
                writer.write(content[i : i + 1])
                await writer.drain()
                await asyncio.sleep(self.trickle_delay)
        else:
            writer.write(content)
        await writer.drain()
