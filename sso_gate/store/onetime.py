"""One-time values shared by every instance: OIDC state, nonces, SAML assertion ids.

In-process by default; Redis when ``SSO_GATE_REDIS_URL`` is set, so a flow started on one
instance completes on another and a replay is refused everywhere. Both give the same contract,
tested by one suite: ``put`` stores a value with a TTL, ``take`` atomically reads and deletes it
(so a value is consumed at most once), ``add`` stores a marker only if absent (replay detection).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from sso_gate.exceptions import StorageUnavailableError

__all__ = ["OneTimeStore", "MemoryOneTimeStore", "RedisOneTimeStore", "create_onetime_store"]


class OneTimeStore(Protocol):
    async def put(self, key: str, value: str, ttl: float) -> None: ...

    async def take(self, key: str) -> str | None: ...

    async def add(self, key: str, ttl: float) -> bool:
        """Record ``key``; False if it was already recorded and not yet expired."""
        ...

    async def close(self) -> None: ...


class MemoryOneTimeStore:
    """Process-local store. Expired entries are swept on write, so memory stays bounded by the
    number of live values."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._clock = clock
        self._writes = 0

    def _sweep(self) -> None:
        self._writes += 1
        if self._writes % 256:
            return
        now = self._clock()
        for key in [k for k, (exp, _) in self._data.items() if exp <= now]:
            del self._data[key]

    async def put(self, key: str, value: str, ttl: float) -> None:
        self._sweep()
        self._data[key] = (self._clock() + ttl, value)

    async def take(self, key: str) -> str | None:
        item = self._data.pop(key, None)
        if item is None or item[0] <= self._clock():
            return None
        return item[1]

    async def add(self, key: str, ttl: float) -> bool:
        item = self._data.get(key)
        if item is not None and item[0] > self._clock():
            return False
        self._sweep()
        self._data[key] = (self._clock() + ttl, "1")
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisOneTimeStore:
    """Redis-backed store: ``SET … PX`` / ``GETDEL`` / ``SET NX PX`` are each atomic.

    Fails closed: when Redis cannot be reached every call raises
    :class:`~sso_gate.exceptions.StorageUnavailableError`, so no state or replay check is skipped.
    """

    def __init__(self, url: str, namespace: str = "sso_gate:") -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            from sso_gate.exceptions import ConfigurationError

            raise ConfigurationError(
                "SSO_GATE_REDIS_URL is set but the redis package is missing: "
                "pip install 'sso-gate[redis]'"
            ) from exc
        from redis.exceptions import RedisError

        self._redis = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._ns = namespace
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)

    def _down(self) -> StorageUnavailableError:
        return StorageUnavailableError(
            "the one-time store (Redis) is unavailable; sign-ins are refused until it is back",
            code="onetime_store_unavailable",
        )

    async def put(self, key: str, value: str, ttl: float) -> None:
        try:
            await self._redis.set(self._ns + key, value, px=max(1, int(ttl * 1000)))
        except self._errors:
            raise self._down() from None

    async def take(self, key: str) -> str | None:
        try:
            raw = await self._redis.getdel(self._ns + key)
        except self._errors:
            raise self._down() from None
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def add(self, key: str, ttl: float) -> bool:
        try:
            ok = await self._redis.set(self._ns + key, "1", px=max(1, int(ttl * 1000)), nx=True)
        except self._errors:
            raise self._down() from None
        return bool(ok)

    async def ping(self) -> None:
        """Raise :class:`StorageUnavailableError` unless Redis answers (``{prefix}/readyz``)."""
        try:
            await self._redis.ping()
        except self._errors:
            raise self._down() from None

    async def close(self) -> None:
        await self._redis.aclose()


def create_onetime_store(redis_url: str | None) -> OneTimeStore:
    if redis_url:
        return RedisOneTimeStore(redis_url)
    return MemoryOneTimeStore()
