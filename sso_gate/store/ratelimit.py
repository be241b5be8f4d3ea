"""Rate limiting: how many requests one client (an IP, an organization, a key) may make.

One algorithm in both backends, GCRA (the generic cell rate algorithm, ITU-T I.371): a limit of
``N`` per ``P`` seconds is a bucket of ``N`` requests refilled evenly, one every ``P / N``
seconds. Its whole state per key is one number, the *theoretical arrival time* (TAT): the moment
the bucket will be full again. A request at ``now`` is allowed when ``max(TAT, now) + P / N``
is at most ``now + P``; then that becomes the new TAT. So a client may burst ``N`` requests, is
then held to the steady rate, and after ``P`` idle seconds has its whole burst back. A refused
request changes nothing and learns exactly how long to wait.

* :class:`MemoryRateLimiter` (default): a dict of ``key -> TAT`` in this process, bounded by
  ``max_keys``. An entry whose TAT has passed is a full bucket, i.e. the same as no entry, so
  such entries are dropped whenever the dict is full; if that is not enough the oldest entries go.
* :class:`RedisRateLimiter` (``SSO_GATE_REDIS_URL``): the same arithmetic in one Lua script, so
  every instance shares the counts; a key expires when its bucket is full again. If Redis cannot
  be reached it **fails open to per-instance limits**: each instance falls back to its own
  in-process limiter (a warning is logged, at most once a minute) and tries Redis again after a
  few seconds. Limits stay on, only no longer shared; sign-ins need Redis anyway (the one-time
  store fails closed) while SCIM and the management API keep working.

Both take the current time from ``clock`` (seconds), so tests drive time without sleeping.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sso_gate.settings import RateLimit

__all__ = [
    "RateDecision",
    "RateLimiter",
    "MemoryRateLimiter",
    "RedisRateLimiter",
    "create_rate_limiter",
]

log = logging.getLogger("sso_gate.ratelimit")

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer for one request: allowed or not, and when to come back (seconds)."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: float

    @property
    def retry_after_seconds(self) -> int:
        """``Retry-After`` value: whole seconds, rounded up, at least 1."""
        return max(1, math.ceil(self.retry_after))


class RateLimiter(Protocol):
    async def hit(self, bucket: str, key: str, rate: RateLimit) -> RateDecision:
        """Count one request of ``key`` in ``bucket`` against ``rate``."""
        ...

    async def close(self) -> None: ...


def _storage_key(bucket: str, key: str) -> str:
    # Keys may come from the request (a directory id in the path, a presented bearer token): a
    # long one is hashed so that one entry never costs more than ~100 bytes of key.
    if len(key) > 64:
        key = "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{bucket}:{key}"


def _steps(rate: RateLimit) -> tuple[int, int]:
    """(interval, period) in integer microseconds; the period is ``limit * interval`` so that
    the burst is exactly ``limit``. Integers: both backends compute the same, without drift."""
    interval = max(1, int(rate.period * 1_000_000) // rate.limit)
    return interval, interval * rate.limit


def _gcra(tat: int | None, now: int, rate: RateLimit) -> tuple[RateDecision, int | None]:
    """One GCRA step in microseconds: the decision and the new TAT (None when refused)."""
    interval, period = _steps(rate)
    new_tat = (now if tat is None or tat < now else tat) + interval
    allow_at = new_tat - period
    if allow_at > now:
        return RateDecision(False, rate.limit, 0, (allow_at - now) / 1_000_000), None
    return RateDecision(True, rate.limit, (now + period - new_tat) // interval, 0.0), new_tat


class MemoryRateLimiter:
    """In-process limiter (one per gate). Memory is bounded by ``max_keys`` entries."""

    def __init__(self, *, max_keys: int = 100_000, clock: Clock = time.monotonic) -> None:
        self._tats: dict[str, int] = {}
        self._max_keys = max_keys
        self._clock = clock

    def __len__(self) -> int:
        return len(self._tats)

    def hit_now(self, bucket: str, key: str, rate: RateLimit) -> RateDecision:
        """:meth:`hit` without a coroutine (the memory backend never waits)."""
        skey = _storage_key(bucket, key)
        tats = self._tats
        now = int(self._clock() * 1_000_000)
        decision, new_tat = _gcra(tats.get(skey), now, rate)
        if new_tat is not None:
            if skey not in tats and len(tats) >= self._max_keys:
                self._evict(now)
            tats[skey] = new_tat
        return decision

    async def hit(self, bucket: str, key: str, rate: RateLimit) -> RateDecision:
        return self.hit_now(bucket, key, rate)

    def _evict(self, now: int) -> None:
        """Make room: drop every full bucket (TAT passed: same as absent); if that frees less
        than a tenth, drop the oldest entries too. Amortised O(1) per new key."""
        tats = self._tats
        for k in [k for k, tat in tats.items() if tat <= now]:
            del tats[k]
        target = self._max_keys - max(1, self._max_keys // 10)
        if len(tats) > target:
            # Forgetting a live entry only forgives that client early; say so once per sweep.
            log.warning(
                "rate limiter full (%d keys): forgetting the oldest %d",
                len(tats),
                len(tats) - target,
            )
            for k in list(tats)[: len(tats) - target]:
                del tats[k]

    async def close(self) -> None:
        self._tats.clear()


# KEYS[1]: the key. ARGV: now, interval, period (integer microseconds, as ``_gcra``). Returns
# {allowed (0|1), remaining, retry_after_us}. Lua numbers are doubles: exact integers up to 2^53
# (~285 years of microseconds); string.format keeps SET from writing "1.7e+15".
_GCRA_LUA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  return {0, 0, allow_at - now}
end
local ttl_ms = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ttl_ms))
return {1, math.floor((now + period - new_tat) / interval), 0}
"""


class RedisRateLimiter:
    """Limits shared by every instance through Redis (one atomic Lua script per request).

    Unreachable Redis: the request is counted by an in-process fallback limiter instead (fail
    open to per-instance limits), Redis is left alone for ``retry_interval`` seconds so that a
    dead server does not add a timeout to every request, and a warning is logged at most once
    per ``warn_interval`` seconds.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "sso_gate:rl:",
        clock: Clock = time.time,
        max_keys: int = 100_000,
        timeout: float = 0.5,
        retry_interval: float = 5.0,
        warn_interval: float = 60.0,
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:  # pragma: no cover - depends on the install
            from sso_gate.exceptions import ConfigurationError

            raise ConfigurationError(
                "SSO_GATE_REDIS_URL is set but the redis package is missing: "
                "pip install 'sso-gate[redis]'"
            ) from exc
        from redis.exceptions import RedisError

        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script: Any = self._redis.register_script(_GCRA_LUA)
        self._ns = namespace
        self._clock = clock
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        # The fallback runs on the same clock as the shared limits would.
        self.fallback = MemoryRateLimiter(max_keys=max_keys, clock=clock)
        self._retry_interval = retry_interval
        self._warn_interval = warn_interval
        self._down_until = -math.inf
        self._warned_at = -math.inf

    @property
    def degraded(self) -> bool:
        """True while Redis is considered down (requests are limited per instance)."""
        return time.monotonic() < self._down_until

    async def hit(self, bucket: str, key: str, rate: RateLimit) -> RateDecision:
        if self.degraded:
            return self.fallback.hit_now(bucket, key, rate)
        interval, period = _steps(rate)
        try:
            allowed, remaining, retry_us = await self._script(
                keys=[self._ns + _storage_key(bucket, key)],
                args=[int(self._clock() * 1_000_000), interval, period],
            )
        except self._errors as exc:
            self._went_down(exc)
            return self.fallback.hit_now(bucket, key, rate)
        return RateDecision(bool(allowed), rate.limit, int(remaining), int(retry_us) / 1_000_000)

    def _went_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._down_until = now + self._retry_interval
        if now - self._warned_at >= self._warn_interval:
            self._warned_at = now
            log.warning(
                "rate limits: Redis unreachable (%s); limiting per instance until it is back",
                type(exc).__name__,
            )

    async def close(self) -> None:
        await self.fallback.close()
        await self._redis.aclose()


def create_rate_limiter(redis_url: str | None, *, max_keys: int = 100_000) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, max_keys=max_keys)
    return MemoryRateLimiter(max_keys=max_keys)
