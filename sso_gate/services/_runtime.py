"""What every service shares: settings, the engine, the clock, one-time store and HTTP client."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sso_gate._crypto import SecretBox
from sso_gate._time import Clock
from sso_gate.exceptions import StorageUnavailableError
from sso_gate.metrics import GateMetrics
from sso_gate.settings import Settings
from sso_gate.store.onetime import OneTimeStore

__all__ = ["Runtime"]


@dataclasses.dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    clock: Clock
    onetime: OneTimeStore
    http: httpx.AsyncClient
    box: SecretBox
    metrics: GateMetrics = dataclasses.field(default_factory=GateMetrics)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; a database outage becomes :class:`StorageUnavailableError`."""
        with _outage_as_503():
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (no explicit transaction)."""
        with _outage_as_503():
            async with self.engine.connect() as conn:
                yield conn


@contextmanager
def _outage_as_503() -> Iterator[None]:
    try:
        yield
    except (OperationalError, OSError, ConnectionError) as exc:
        raise StorageUnavailableError(
            f"the database is unavailable ({type(exc).__name__})"
        ) from None
    except PoolTimeoutError:
        # every pooled connection is held by a request still waiting on an unanswering database
        raise StorageUnavailableError(
            "the database is unavailable (no connection became free in time)"
        ) from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StorageUnavailableError("the database connection was lost") from None
        raise
