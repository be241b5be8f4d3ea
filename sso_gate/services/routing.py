"""Home-realm discovery: which organization (and connection) an email's domain belongs to.

Decisions are cached per domain (``cachetools.TTLCache``; negative answers too), so a repeated
login for a domain costs a dict lookup. Changes made through this process invalidate at once;
other instances see them within ``SSO_GATE_ROUTING_CACHE_TTL`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable

from cachetools import TTLCache

from sso_gate._domains import CONSUMER_DOMAINS, email_domain
from sso_gate.models import RoutingDecision
from sso_gate.services._runtime import Runtime
from sso_gate.store import repositories as repo

__all__ = ["RoutingService"]


class RoutingService:
    def __init__(self, rt: Runtime, maxsize: int = 200_000) -> None:
        self._rt = rt
        self._cache: TTLCache[str, RoutingDecision] = TTLCache(
            maxsize=maxsize, ttl=rt.settings.routing_cache_ttl
        )

    async def for_email(self, email: str) -> RoutingDecision | None:
        """The decision for an email, or None if it is not an email address."""
        domain = email_domain(email)
        if domain is None:
            return None
        return await self.for_domain(domain)

    async def for_domain(self, domain: str) -> RoutingDecision:
        cached = self._cache.get(domain)
        if cached is not None:
            return cached
        if domain in CONSUMER_DOMAINS:
            decision = RoutingDecision(domain, None, None, None)
        else:
            async with self._rt.read() as conn:
                row = await repo.routing_row(conn, domain)
            if row is None:
                decision = RoutingDecision(domain, None, None, None)
            else:
                decision = RoutingDecision(domain, row[0], row[1], row[2])  # type: ignore[arg-type]
        self._cache[domain] = decision
        return decision

    def invalidate(self, domains: Iterable[str] | None = None) -> None:
        """Forget cached decisions (all of them when ``domains`` is None)."""
        if domains is None:
            self._cache.clear()
            return
        for d in domains:
            self._cache.pop(d, None)

    @property
    def cache_size(self) -> int:
        return len(self._cache)
