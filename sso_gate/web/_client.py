"""Who is calling: the client IP (honouring ``X-Forwarded-For`` only from trusted proxies) and
the user agent, for the audit log's ``context``."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ProxyPolicy", "audit_context"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyPolicy:
    """``X-Forwarded-For`` is read only when the direct peer is a trusted proxy
    (``SSO_GATE_TRUSTED_PROXIES``, CIDRs); then the rightmost address that is not itself a
    trusted proxy is the client. Anyone else's header is ignored (it is trivially forged)."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in trusted
        )

    def _trusted(self, address: str) -> bool:
        if not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client_ip(self, scope: Mapping[str, Any]) -> str | None:
        client = scope.get("client")
        peer: str | None = str(client[0]) if client else None
        if peer is None or not self._trusted(peer):
            return peer
        forwarded = [
            v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"
        ]
        hops = [h.strip() for value in forwarded for h in value.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer  # garbage from the client side of the proxy: use the proxy
        return peer


def audit_context(scope: Mapping[str, Any], policy: ProxyPolicy) -> dict[str, str]:
    context: dict[str, str] = {}
    ip = policy.client_ip(scope)
    if ip:
        context["location"] = ip
    for key, value in scope.get("headers", ()):
        if key == b"user-agent":
            context["user_agent"] = value.decode("latin-1")[:500]
            break
    return context
