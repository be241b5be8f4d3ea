"""``SSO_GATE_DATABASE_TIMEOUT`` on the engine, and the outages it turns into 503s.

The behaviour against a database that stops answering is tested with real processes in
``tests/e2e/test_faults.py``; these pin the wiring.
"""

from __future__ import annotations

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from sso_gate import Settings, SSOGate
from sso_gate.exceptions import StorageUnavailableError
from sso_gate.services._runtime import _outage_as_503
from sso_gate.store.db import create_engine

from ..conftest import make_settings

pytestmark = pytest.mark.anyio


async def test_postgres_engine_is_bounded_by_the_timeout() -> None:
    engine = create_engine("postgresql://gate@127.0.0.1:1/gate", timeout=3.5)
    try:
        assert engine.pool.timeout() == 3.5  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_the_gate_passes_the_setting() -> None:
    settings = make_settings("postgresql://gate@127.0.0.1:1/gate", database_timeout=4.0)
    gate = SSOGate(settings)
    try:
        assert gate._rt.engine.pool.timeout() == 4.0  # type: ignore[attr-defined]
    finally:
        await gate.aclose()
    assert Settings.__dataclass_fields__["database_timeout"].default == 10.0


def test_no_free_pooled_connection_is_a_503() -> None:
    with pytest.raises(StorageUnavailableError) as info:
        with _outage_as_503():
            raise PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached")
    assert info.value.http_status == 503
    assert "no connection became free" in info.value.message
