"""Outbound HTTP to identity providers: timeouts, size limits, and an SSRF guard.

Admin-supplied URLs (SAML metadata URLs) may not point at private, loopback, link-local or other
non-public addresses unless ``SSO_GATE_ALLOW_PRIVATE_URLS`` is set. The guard resolves the host
first; a DNS answer that changes between the check and the connection (rebinding) is a residual
risk that a network egress policy should close.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

from sso_gate.exceptions import IdPUnavailableError, ValidationError

__all__ = ["fetch", "check_public_url"]


async def check_public_url(url: str, *, field: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError(f"{url!r} is not an absolute http(s) URL", field=field)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError:
        raise ValidationError(f"the host {host!r} could not be resolved", field=field) from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_reserved
            or ip.is_multicast
            or ip.is_unspecified
        ):
            raise ValidationError(
                f"{host} resolves to the non-public address {ip}; refused "
                "(set SSO_GATE_ALLOW_PRIVATE_URLS=true to allow)",
                field=field,
                code="private_address",
            )


async def fetch(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    max_bytes: int,
    data: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Status and body (at most ``max_bytes``), or :class:`IdPUnavailableError`.

    ``timeout`` bounds the whole call. httpx applies its timeout to each connect, write and read
    on its own, so an IdP that trickles its answer (a byte just before every read timeout) would
    otherwise hold the sign-in, and the request serving it, for as long as it likes.
    """
    try:
        async with asyncio.timeout(timeout):
            async with http.stream(
                method, url, data=data, auth=auth, headers=headers, timeout=timeout
            ) as resp:
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise IdPUnavailableError(
                            f"{what} is larger than {max_bytes} bytes",
                            code="idp_response_too_large",
                        )
                return resp.status_code, body
    except (httpx.TimeoutException, TimeoutError):
        raise IdPUnavailableError(
            f"the identity provider did not answer the {what} request within {timeout:g} s",
            code="idp_timeout",
        ) from None
    except httpx.HTTPError as exc:
        raise IdPUnavailableError(
            f"the {what} request to the identity provider failed ({type(exc).__name__})",
            code="idp_unreachable",
        ) from None
