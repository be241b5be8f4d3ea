"""Real receivers on 127.0.0.1 for the log stream tests: a small HTTP/1.1 server (keep-alive,
Content-Length bodies) and a syslog server (TCP or TLS) that parses octet-counted frames
(RFC 6587 §3.4.1). Both can be stopped and started again on the same port (destination down,
then up)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import re
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass
class HTTPRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server:
    """Start/stop on a fixed port; connections are closed on stop."""

    def __init__(self, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.port = 0
        self._ssl = ssl_ctx
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, HOST, self.port, ssl=self._ssl, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            for t in list(self._tasks):
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(writer)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class HTTPReceiver(_Server):
    """Answers ``status(request)`` (default 200, or 503 for the first ``fail_first``)."""

    def __init__(self, *, fail_first: int = 0, delay: float = 0.0) -> None:
        super().__init__()
        self.fail_first = fail_first
        self.delay = delay
        self.requests: list[HTTPRequest] = []
        self.accepted: list[HTTPRequest] = []
        self.status: Callable[[HTTPRequest], int] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (h := await reader.readline()) not in (b"\r\n", b""):
                key, value = h.decode("latin-1").split(":", 1)
                headers[key.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            req = HTTPRequest(method, target, headers, body)
            self.requests.append(req)
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.status is not None:
                status = self.status(req)
            else:
                status = 503 if len(self.requests) <= self.fail_first else 200
            if 200 <= status < 300:
                self.accepted.append(req)
            answer = b'{"text":"Success","code":0}' if status < 300 else b'{"error":"busy"}'
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(answer)}\r\n\r\n".encode()
                + answer
            )
            await writer.drain()


class SyslogReceiver(_Server):
    """Collects the messages of octet-counted frames, connection by connection."""

    def __init__(self, ssl_ctx: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_ctx)
        self.messages: list[bytes] = []
        self.connections = 0
        self.reset_next = 0  # reset this many connections after reading their first frame

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        reset = self.reset_next > 0
        self.reset_next -= 1 if reset else 0
        while True:
            digits = b""
            while (c := await reader.read(1)) not in (b" ", b""):
                assert c.isdigit(), f"not octet-counting framing: {digits + c!r}"
                digits += c
            if not digits:
                return  # the sender closed
            msg = await reader.readexactly(int(digits))
            if reset:  # a reset (RST, not FIN): the sender must send the batch again
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            self.messages.append(msg)


# RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
SYSLOG_RE = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<version>1) (?P<ts>\S+) (?P<host>[!-~]{1,255}) "
    rb"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    rb'(?P<sd>\[(?P<sdid>[^ =\]"]+)(?P<params>(?: [^ =\]"]+="(?:[^"\\\]]|\\.)*")*)\]) '
    rb"(?P<msg>.*)$",
    re.S,
)
SD_PARAM_RE = re.compile(rb' ([^ =\]"]+)="((?:[^"\\\]]|\\.)*)"')


@dataclass
class CertPair:
    cert_pem: str
    cert_file: Path
    key_file: Path
    extra: dict[str, str] = field(default_factory=dict)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx


def self_signed(tmp: Path, name: str = "localhost") -> CertPair:
    """A self-signed certificate for ``localhost`` and 127.0.0.1 (its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return CertPair(pem, cert_file, key_file)
