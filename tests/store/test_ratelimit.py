"""One contract for the rate limiters (in-process and Redis), the Redis fallback, and the
``N/period`` settings."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator

import pytest

from sso_gate.exceptions import ConfigurationError
from sso_gate.settings import RateLimit, Settings
from sso_gate.store.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    create_rate_limiter,
)
from tests.conftest import REDIS_URL, make_settings

pytestmark = pytest.mark.anyio

THREE_PER_MINUTE = RateLimit(3, 60.0)


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory"] + (["redis"] if REDIS_URL else []))
async def limiter(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[RateLimiter]:
    lim: RateLimiter
    if request.param == "memory":
        lim = MemoryRateLimiter(clock=clock)
    else:
        lim = RedisRateLimiter(
            REDIS_URL or "", namespace=f"test:rl:{secrets.token_hex(6)}:", clock=clock
        )
    yield lim
    await lim.close()


async def test_burst_then_refused_with_retry_after(limiter: RateLimiter, clock: FakeClock) -> None:
    got = [await limiter.hit("login", "198.51.100.7", THREE_PER_MINUTE) for _ in range(3)]
    assert [d.allowed for d in got] == [True, True, True]
    assert [d.remaining for d in got] == [2, 1, 0]
    refused = await limiter.hit("login", "198.51.100.7", THREE_PER_MINUTE)
    assert not refused.allowed and refused.remaining == 0
    # one request comes back every 60 / 3 = 20 s
    assert refused.retry_after == pytest.approx(20.0)
    assert refused.retry_after_seconds == 20
    clock.now += 19.5
    assert not (await limiter.hit("login", "198.51.100.7", THREE_PER_MINUTE)).allowed
    clock.now += 0.5
    assert (await limiter.hit("login", "198.51.100.7", THREE_PER_MINUTE)).allowed
    assert not (await limiter.hit("login", "198.51.100.7", THREE_PER_MINUTE)).allowed


async def test_full_burst_again_after_the_window(limiter: RateLimiter, clock: FakeClock) -> None:
    for _ in range(3):
        assert (await limiter.hit("b", "k", THREE_PER_MINUTE)).allowed
    assert not (await limiter.hit("b", "k", THREE_PER_MINUTE)).allowed
    clock.now += 60
    assert [(await limiter.hit("b", "k", THREE_PER_MINUTE)).allowed for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


async def test_refused_requests_do_not_extend_the_wait(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    for _ in range(3):
        await limiter.hit("b", "k", THREE_PER_MINUTE)
    for _ in range(50):  # a client hammering while refused
        assert not (await limiter.hit("b", "k", THREE_PER_MINUTE)).allowed
    clock.now += 20
    assert (await limiter.hit("b", "k", THREE_PER_MINUTE)).allowed


async def test_keys_and_buckets_are_independent(limiter: RateLimiter) -> None:
    one = RateLimit(1, 60.0)
    assert (await limiter.hit("login", "a", one)).allowed
    assert not (await limiter.hit("login", "a", one)).allowed
    assert (await limiter.hit("login", "b", one)).allowed
    assert (await limiter.hit("callback", "a", one)).allowed


async def test_per_second_rates(limiter: RateLimiter, clock: FakeClock) -> None:
    rate = RateLimit(50, 1.0)
    assert all([(await limiter.hit("s", "k", rate)).allowed for _ in range(50)])
    refused = await limiter.hit("s", "k", rate)
    assert not refused.allowed and refused.retry_after == pytest.approx(0.02)
    assert refused.retry_after_seconds == 1  # Retry-After is whole seconds, at least 1
    clock.now += 0.02
    assert (await limiter.hit("s", "k", rate)).allowed


async def test_long_keys_are_hashed(limiter: RateLimiter) -> None:
    one = RateLimit(1, 60.0)
    long_a, long_b = "x" * 5000 + "a", "x" * 5000 + "b"
    assert (await limiter.hit("scim", long_a, one)).allowed
    assert not (await limiter.hit("scim", long_a, one)).allowed
    assert (await limiter.hit("scim", long_b, one)).allowed


async def test_memory_is_bounded(clock: FakeClock) -> None:
    lim = MemoryRateLimiter(max_keys=1000, clock=clock)
    rate = RateLimit(5, 1.0)
    for i in range(1000):
        await lim.hit("ip", f"10.0.{i // 256}.{i % 256}", rate)
    assert len(lim) == 1000
    clock.now += 1  # every bucket is full again: entries are droppable
    await lim.hit("ip", "new", rate)
    assert len(lim) == 1
    # live entries only: the oldest tenth goes, the newest stay counted
    for i in range(1000):
        await lim.hit("ip", f"live{i}", RateLimit(1, 3600.0))
    await lim.hit("ip", "one-more", rate)
    assert len(lim) <= 1000
    assert not (await lim.hit("ip", "live999", RateLimit(1, 3600.0))).allowed
    assert (await lim.hit("ip", "live0", RateLimit(1, 3600.0))).allowed  # forgotten: forgiven


async def test_memory_limiter_is_truthy_when_empty() -> None:
    # (SSOGate(rate_limiter=MemoryRateLimiter()) must not be mistaken for "none given")
    from sso_gate import SSOGate

    lim = MemoryRateLimiter()
    gate = SSOGate(make_settings("sqlite:///:memory:"), rate_limiter=lim)
    assert gate.rate_limiter is lim
    await gate.aclose()


def test_create_rate_limiter_picks_the_backend() -> None:
    assert isinstance(create_rate_limiter(None), MemoryRateLimiter)
    red = create_rate_limiter("redis://127.0.0.1:1/0")
    assert isinstance(red, RedisRateLimiter)


# -- Redis: shared, and what happens when it is down --------------------------------------------


@pytest.mark.skipif(not REDIS_URL, reason="needs SSO_GATE_TEST_REDIS_URL")
async def test_redis_counts_are_shared_by_instances(clock: FakeClock) -> None:
    ns = f"test:rl:{secrets.token_hex(6)}:"
    a = RedisRateLimiter(REDIS_URL or "", namespace=ns, clock=clock)
    b = RedisRateLimiter(REDIS_URL or "", namespace=ns, clock=clock)
    try:
        assert (await a.hit("api", "k", THREE_PER_MINUTE)).allowed
        assert (await b.hit("api", "k", THREE_PER_MINUTE)).allowed
        assert (await a.hit("api", "k", THREE_PER_MINUTE)).allowed
        refused = await b.hit("api", "k", THREE_PER_MINUTE)
        assert not refused.allowed and refused.retry_after == pytest.approx(20.0)
        clock.now += 20
        assert (await b.hit("api", "k", THREE_PER_MINUTE)).allowed
        assert not (await a.hit("api", "k", THREE_PER_MINUTE)).allowed
    finally:
        await a.close()
        await b.close()


@pytest.mark.skipif(not REDIS_URL, reason="needs SSO_GATE_TEST_REDIS_URL")
async def test_redis_keys_expire_when_the_bucket_is_full_again() -> None:
    import redis.asyncio as aioredis

    ns = f"test:rl:{secrets.token_hex(6)}:"
    lim = RedisRateLimiter(REDIS_URL or "", namespace=ns)
    direct = aioredis.Redis.from_url(REDIS_URL or "")
    try:
        await lim.hit("api", "k", RateLimit(10, 60.0))
        ttl = await direct.pttl(ns + "api:k")
        assert 5_000 <= ttl <= 6_000  # one request of a 10/minute bucket: back after 6 s
    finally:
        await lim.close()
        await direct.aclose()


async def test_redis_down_limits_per_instance_and_warns_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    lim = RedisRateLimiter("redis://127.0.0.1:1/0", clock=clock)  # nothing listens on port 1
    try:
        with caplog.at_level(logging.WARNING, logger="sso_gate.ratelimit"):
            got = [(await lim.hit("api", "k", THREE_PER_MINUTE)).allowed for _ in range(5)]
        # fails open to in-process limits: still limited, only no longer shared
        assert got == [True, True, True, False, False]
        assert lim.degraded
        warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(warnings) == 1
        assert "per instance" in warnings[0].getMessage()
    finally:
        await lim.close()


async def test_redis_is_tried_again_after_the_retry_interval(clock: FakeClock) -> None:
    lim = RedisRateLimiter("redis://127.0.0.1:1/0", clock=clock, retry_interval=0.0)
    try:
        await lim.hit("api", "k", THREE_PER_MINUTE)
        assert not lim.degraded  # retry_interval 0: the next request tries Redis again
        calls = 0
        script = lim._script

        async def counting(**kw: object) -> object:
            nonlocal calls
            calls += 1
            return await script(**kw)

        lim._script = counting
        await lim.hit("api", "k", THREE_PER_MINUTE)
        assert calls == 1
    finally:
        await lim.close()


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20/minute", RateLimit(20, 60.0)),
        ("20 / Minutes", RateLimit(20, 60.0)),
        ("5/second", RateLimit(5, 1.0)),
        ("1000/hour", RateLimit(1000, 3600.0)),
        ("10000/day", RateLimit(10000, 86400.0)),
        ("0", None),
        ("off", None),
        ("OFF", None),
        ("0/minute", None),
    ],
)
def test_rate_parse(text: str, expected: RateLimit | None) -> None:
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["20", "20/fortnight", "-1/minute", "minute", "1.5/second", ""])
def test_rate_parse_refuses(text: str) -> None:
    with pytest.raises(ConfigurationError, match="SSO_GATE_RATE_LIMIT_LOGIN must look like"):
        RateLimit.parse(text, "SSO_GATE_RATE_LIMIT_LOGIN")


def test_rate_str() -> None:
    assert str(RateLimit(20, 60.0)) == "20/minute"
    assert str(RateLimit(3, 7.0)) == "3/7s"


BASE_ENV = {
    "SSO_GATE_SECRET_KEYS": "0123456789abcdef0123",
    "SSO_GATE_BASE_URL": "https://app.example.com",
}


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            **BASE_ENV,
            "SSO_GATE_RATE_LIMIT_LOGIN": "20/minute",
            "SSO_GATE_RATE_LIMIT_CALLBACK": "off",
            "SSO_GATE_RATE_LIMIT_ORG": "5000/hour",
            "SSO_GATE_RATE_LIMIT_SCIM": "25/second",
            "SSO_GATE_RATE_LIMIT_SCIM_IP": "0",
            "SSO_GATE_RATE_LIMIT_API": "100/minute",
            "SSO_GATE_RATE_LIMIT_API_IP": "50/minute",
            "SSO_GATE_RATE_LIMIT_PORTAL": "3/minute",
            "SSO_GATE_RATE_LIMIT_MAX_KEYS": "5000",
        }
    )
    assert s.rate_limits is True
    assert s.rate_limit_login == RateLimit(20, 60.0)
    assert s.rate_limit_callback is None
    assert s.rate_limit_org == RateLimit(5000, 3600.0)
    assert s.rate_limit_scim == RateLimit(25, 1.0)
    assert s.rate_limit_scim_ip is None
    assert s.rate_limit_api == RateLimit(100, 60.0)
    assert s.rate_limit_api_ip == RateLimit(50, 60.0)
    assert s.rate_limit_portal == RateLimit(3, 60.0)
    assert s.rate_limit_max_keys == 5000
    assert "rate_limit_login=RateLimit(limit=20, period=60.0)" in repr(s)


def test_settings_defaults_and_master_switch() -> None:
    s = Settings.from_env(BASE_ENV)
    assert s.rate_limits is True
    assert s.rate_limit_login == RateLimit(120, 60.0)
    assert s.rate_limit_portal == RateLimit(10, 60.0)
    assert Settings.from_env({**BASE_ENV, "SSO_GATE_RATE_LIMITS": "off"}).rate_limits is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SSO_GATE_RATE_LIMIT_SCIM": "lots"}, "SSO_GATE_RATE_LIMIT_SCIM must look like 20/minute"),
        ({"SSO_GATE_RATE_LIMITS": "maybe"}, "SSO_GATE_RATE_LIMITS must be true or false"),
        ({"SSO_GATE_RATE_LIMIT_MAX_KEYS": "10"}, "SSO_GATE_RATE_LIMIT_MAX_KEYS must be at least"),
        (
            {"SSO_GATE_RATE_LIMIT_MAX_KEYS": "many"},
            "SSO_GATE_RATE_LIMIT_MAX_KEYS must be an integer",
        ),
    ],
)
def test_settings_refuse_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({**BASE_ENV, **env})


def test_settings_keyword_strings_are_parsed() -> None:
    s = make_settings("sqlite:///x.db", rate_limit_login="7/second", rate_limit_api="off")
    assert s.rate_limit_login == RateLimit(7, 1.0)
    assert s.rate_limit_api is None
    with pytest.raises(ConfigurationError, match="SSO_GATE_RATE_LIMIT_ORG"):
        make_settings("sqlite:///x.db", rate_limit_org=RateLimit(0, 60.0))
