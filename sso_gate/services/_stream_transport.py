"""Audit log streams: sending a batch over HTTP(S) or syslog (TCP, TLS).

**What "accepted" means.** Over HTTP: a 2xx answer (anything else, 3xx included, and timeouts
fail). Syslog has no application-level acknowledgement (RFC 5425/6587), so the guarantee is
weaker: the bytes were written, then the gate closes its side (a TCP FIN, or a TLS
``close_notify``) and waits up to ``linger`` seconds for the receiver to close too. A receiver
that reads to the end and closes, or keeps the connection open past ``linger``, counts as
accepted; a connection reset (``RST``, e.g. the receiver died with unread data) or a TLS
failure is a failed batch and the batch is sent again. A receiver that crashes after reading
but before storing can still lose messages; use the HTTP types when that matters.

TLS is done with :class:`ssl.SSLObject` over memory BIOs (not asyncio's TLS transport), because
asyncio's cannot half-close: it sends ``close_notify`` and drops the connection without waiting
to see whether the receiver closes or resets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from sso_gate.services import _stream_formats as fmt

__all__ = ["Outcome", "Sender", "post", "send_syslog"]

_EXCERPT = 300
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one send went. ``error`` is None on success; it never contains a secret."""

    ok: bool
    status_code: int | None
    latency_ms: float
    error: str | None


class Sender:
    """Sends one encoded batch to a stream's destination; keeps a TLS context per CA bundle.
    ``http`` returns the client for the HTTP types (created lazily by the caller)."""

    def __init__(self, http: Callable[[], httpx.AsyncClient]) -> None:
        self._http = http
        self._tls: dict[str | None, ssl.SSLContext] = {}

    def tls_context(self, ca_pem: str | None) -> ssl.SSLContext:
        ctx = self._tls.get(ca_pem)
        if ctx is None:
            if len(self._tls) > 100:
                self._tls.clear()
            ctx = self._tls[ca_pem] = fmt.tls_context(ca_pem)
        return ctx

    async def send(
        self,
        type_: str,
        config: Mapping[str, Any],
        secrets: Mapping[str, str],
        pieces: Sequence[bytes],
        *,
        stream_id: str,
        message_id: str,
        timeout: float,
        linger: float,
    ) -> Outcome:
        """Send; a secret that the destination echoes into its answer is masked (``***``)."""
        if type_ == "syslog":
            tls = config["transport"] == "tls"
            outcome = await send_syslog(
                config["host"],
                config["port"],
                self.tls_context(config.get("ca_pem")) if tls else None,
                b"".join(pieces),
                timeout=timeout,
                linger=linger,
            )
        else:
            payload = fmt.build_http(
                type_, config, secrets, pieces, stream_id=stream_id, message_id=message_id
            )
            outcome = await post(self._http(), payload, timeout=timeout)
        if outcome.error is not None:
            error = outcome.error
            for secret in secrets.values():
                if secret:
                    error = error.replace(secret, "***")
            outcome = Outcome(outcome.ok, outcome.status_code, outcome.latency_ms, error)
        return outcome


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


async def post(http: httpx.AsyncClient, payload: fmt.Payload, *, timeout: float) -> Outcome:
    t0 = time.perf_counter()
    try:
        # httpx's timeout is per phase; the whole request must also end in time (the lease)
        async with (
            asyncio.timeout(timeout),
            http.stream(
                "POST", payload.url, content=payload.body, headers=payload.headers, timeout=timeout
            ) as resp,
        ):
            excerpt = b""
            async for chunk in resp.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= _EXCERPT:
                    break
            status = resp.status_code
    except (httpx.TimeoutException, TimeoutError):
        return Outcome(False, None, _ms(t0), f"no answer within {timeout:g} s")
    except httpx.ConnectError:
        return Outcome(False, None, _ms(t0), "connection refused or host unreachable")
    except httpx.RemoteProtocolError:
        return Outcome(False, None, _ms(t0), "the receiver closed the connection or broke HTTP")
    except httpx.HTTPError as exc:
        return Outcome(False, None, _ms(t0), f"request failed ({type(exc).__name__})")
    if 200 <= status < 300:
        return Outcome(True, status, _ms(t0), None)
    text = excerpt[:_EXCERPT].decode("utf-8", "replace").strip()
    return Outcome(False, status, _ms(t0), f"HTTP {status}" + (f": {text}" if text else ""))


async def send_syslog(
    host: str,
    port: int,
    ctx: ssl.SSLContext | None,
    data: bytes,
    *,
    timeout: float,
    linger: float,
) -> Outcome:
    """Write ``data`` (octet-counted frames) on a new connection, then close it as described in
    the module docstring. ``ctx`` None means plain TCP."""
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return Outcome(False, None, _ms(t0), f"no connection within {timeout:g} s")
    except OSError as exc:
        return Outcome(False, None, _ms(t0), f"connection failed ({_reason(exc)})")
    try:
        async with asyncio.timeout(timeout):
            if ctx is None:
                writer.write(data)
                await writer.drain()
                writer.write_eof()
                await _await_close(reader, linger)
            else:
                await _tls_exchange(reader, writer, ctx, host, data, linger)
    except TimeoutError:
        return Outcome(False, None, _ms(t0), f"the receiver did not take the data in {timeout:g} s")
    except ssl.SSLCertVerificationError as exc:
        return Outcome(
            False,
            None,
            _ms(t0),
            f"TLS: the server certificate is not trusted ({exc.verify_message})",
        )
    except ssl.SSLError as exc:
        return Outcome(False, None, _ms(t0), f"TLS failed ({exc.reason or type(exc).__name__})")
    except ConnectionResetError:
        return Outcome(False, None, _ms(t0), "the receiver reset the connection")
    except OSError as exc:
        return Outcome(False, None, _ms(t0), f"connection failed ({_reason(exc)})")
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return Outcome(True, None, _ms(t0), None)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


async def _await_close(
    reader: asyncio.StreamReader,
    linger: float,
    on_data: Callable[[bytes], None] | None = None,
) -> None:
    """Wait for the receiver's FIN; what it sends meanwhile goes to ``on_data`` (which may
    raise). A reset raises :class:`ConnectionResetError`."""
    try:
        async with asyncio.timeout(linger):
            while chunk := await reader.read(_CHUNK):
                if on_data is not None:
                    on_data(chunk)
    except TimeoutError:
        return  # still open and not reset: accepted


async def _tls_exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    ctx: ssl.SSLContext,
    host: str,
    data: bytes,
    linger: float,
) -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=host)

    async def flush() -> None:
        out = outgoing.read()
        if out:
            writer.write(out)
            await writer.drain()

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            await flush()
            chunk = await reader.read(_CHUNK)
            if not chunk:
                raise ConnectionResetError("closed during the TLS handshake") from None
            incoming.write(chunk)
    await flush()
    view = memoryview(data)
    while view:
        written = tls.write(view[:_CHUNK])
        view = view[written:]
        await flush()

    def process(chunk: bytes) -> None:
        # session tickets and the receiver's close_notify pass; an alert (e.g. a client
        # certificate the receiver wanted, checked after the TLS 1.3 handshake) raises
        incoming.write(chunk)
        with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            tls.unwrap()

    # close_notify (RFC 8446 §6.1), then the TCP FIN, then wait for the receiver to close
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.unwrap()
    await flush()
    if writer.can_write_eof():
        writer.write_eof()
    await _await_close(reader, linger, process)
