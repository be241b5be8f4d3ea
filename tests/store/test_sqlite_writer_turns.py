"""On SQLite one process's write transactions take turns, first come first served, instead of
waiting for SQLite's write lock in its busy handler.

Found by the load test (``benchmarks/load/run.py``): with 8 concurrent SCIM POSTs the slowest
waited 1.8–2.2 s (p99; p50 21 ms) and the soak's worst p99 was 2.5–5.9 s, because SQLite's
busy handler retries with sleeps of up to 100 ms and favours the newest waiter. With the turns:
SCIM p99 115–160 ms, soak p99 about 200 ms, the same throughput.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from sso_gate.gate import SSOGate
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_gate(tmp_path: Path):  # type: ignore[no-untyped-def]
    g = SSOGate(make_settings(f"sqlite:///{tmp_path / 'w.db'}"))
    await g.migrate()
    async with g._rt.transaction() as conn:
        await conn.execute(sa.text("CREATE TABLE load_probe (i INTEGER)"))
    yield g
    await g.aclose()


async def test_write_transactions_take_turns_in_arrival_order(sqlite_gate: SSOGate) -> None:
    rt = sqlite_gate._rt
    trace: list[tuple[str, int]] = []

    async def writer(i: int) -> None:
        async with rt.transaction() as conn:
            trace.append(("in", i))
            await conn.execute(sa.text("INSERT INTO load_probe VALUES (:i)"), {"i": i})
            await asyncio.sleep(0.01)  # other tasks run meanwhile
            trace.append(("out", i))

    async with asyncio.timeout(20):
        await asyncio.gather(*(writer(i) for i in range(6)))
    # never two open at once (before: every BEGIN succeeded and the INSERTs then waited for
    # SQLite's lock), and in the order they asked
    assert trace == [(step, i) for i in range(6) for step in ("in", "out")]
    async with rt.read() as conn:
        assert (await conn.execute(sa.text("SELECT count(*) FROM load_probe"))).scalar() == 6


async def test_a_transaction_inside_another_does_not_wait_for_itself(
    sqlite_gate: SSOGate,
) -> None:
    rt = sqlite_gate._rt
    async with asyncio.timeout(5):
        async with rt.transaction():
            async with rt.transaction() as inner:
                await inner.execute(sa.text("INSERT INTO load_probe VALUES (1)"))
        async with rt.transaction() as conn:  # the turn was given back
            await conn.execute(sa.text("INSERT INTO load_probe VALUES (2)"))


async def test_a_failed_transaction_gives_its_turn_back(sqlite_gate: SSOGate) -> None:
    rt = sqlite_gate._rt
    with pytest.raises(RuntimeError):
        async with rt.transaction() as conn:
            await conn.execute(sa.text("INSERT INTO load_probe VALUES (1)"))
            raise RuntimeError("boom")
    async with asyncio.timeout(5), rt.transaction() as conn:
        await conn.execute(sa.text("INSERT INTO load_probe VALUES (2)"))
    async with rt.read() as conn:  # the failed one was rolled back
        assert (await conn.execute(sa.text("SELECT i FROM load_probe"))).scalars().all() == [2]
