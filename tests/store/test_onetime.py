"""One contract for the one-time stores: in-process and Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from sso_gate.store.onetime import MemoryOneTimeStore, OneTimeStore, RedisOneTimeStore
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory"] + (["redis"] if REDIS_URL else []))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[OneTimeStore]:
    s: OneTimeStore = (
        MemoryOneTimeStore() if request.param == "memory" else RedisOneTimeStore(REDIS_URL or "")
    )
    yield s
    await s.close()


def key() -> str:
    return "test:" + secrets.token_hex(8)


async def test_take_is_single_use(store: OneTimeStore) -> None:
    k = key()
    await store.put(k, "v", 10)
    assert await store.take(k) == "v"
    assert await store.take(k) is None


async def test_take_concurrently_only_one_wins(store: OneTimeStore) -> None:
    k = key()
    await store.put(k, "v", 10)
    results = await asyncio.gather(*(store.take(k) for _ in range(20)))
    assert results.count("v") == 1


async def test_expiry(store: OneTimeStore) -> None:
    k = key()
    await store.put(k, "v", 0.05)
    await asyncio.sleep(0.1)
    assert await store.take(k) is None


async def test_add_detects_replay(store: OneTimeStore) -> None:
    k = key()
    assert await store.add(k, 10) is True
    assert await store.add(k, 10) is False
    k2 = key()
    assert await store.add(k2, 0.05) is True
    await asyncio.sleep(0.1)
    assert await store.add(k2, 10) is True


async def test_memory_store_sweeps_expired() -> None:
    s = MemoryOneTimeStore()
    for i in range(600):
        await s.put(f"k{i}", "v", 0.001)
    await asyncio.sleep(0.01)
    for i in range(300):
        await s.put(f"n{i}", "v", 10)
    assert len(s._data) < 600


async def test_redis_down_fails_closed() -> None:
    from sso_gate.exceptions import StorageUnavailableError

    s = RedisOneTimeStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    for call in (s.put("k", "v", 1), s.take("k"), s.add("k", 1)):
        with pytest.raises(StorageUnavailableError, match="Redis"):
            await call
    await s.close()
