"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), settings, gates."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import core as _hypothesis_core
from hypothesis.vendor import pretty as _hypothesis_pretty

from sso_gate import Settings, SSOGate
from sso_gate.settings import Secret

# schemathesis' pytest plugin (a dev dependency, for tests/fuzz) replaces Hypothesis' printer, in
# every session, with one that prints nothing: a failing property test then reports "x=," instead
# of its example. Give the printer back (schemathesis' own items hide Hypothesis' output anyway).
_hypothesis_core.RepresentationPrinter = _hypothesis_pretty.RepresentationPrinter  # type: ignore[misc]

POSTGRES_URL = os.environ.get("SSO_GATE_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("SSO_GATE_TEST_REDIS_URL")

BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _reset_postgres(url: str) -> None:
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(go())


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or the PostgreSQL test database wiped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gate.db'}"
    else:
        assert POSTGRES_URL is not None
        _reset_postgres(POSTGRES_URL)
        yield POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gate.db'}"


ADMIN_KEY = "test-admin-key-0123456789"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        secret_keys=(Secret("k1-" + secrets.token_urlsafe(24)),),
        base_url="http://app.test",
        database_url=database_url,
        environment="development",
        admin_api_key=Secret(ADMIN_KEY),
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory(database_url: str) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        return make_settings(database_url, **overrides)

    return factory


@pytest.fixture
async def gate(database_url: str) -> AsyncIterator[SSOGate]:
    g = SSOGate(make_settings(database_url))
    await g.migrate()
    yield g
    await g.aclose()
