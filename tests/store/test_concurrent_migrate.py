"""Several instances migrating one empty PostgreSQL database at once: all succeed."""

from __future__ import annotations

import asyncio

import pytest

from sso_gate.store.db import create_engine, migrate
from tests.conftest import POSTGRES_URL, _reset_postgres

pytestmark = pytest.mark.anyio


@pytest.mark.skipif(POSTGRES_URL is None, reason="SSO_GATE_TEST_POSTGRES_URL is not set")
async def test_concurrent_migrations_on_postgres() -> None:
    assert POSTGRES_URL is not None
    await asyncio.to_thread(_reset_postgres, POSTGRES_URL)
    engines = [create_engine(POSTGRES_URL) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(e) for e in engines))
        await migrate(engines[0])  # and again: idempotent
    finally:
        for e in engines:
            await e.dispose()
