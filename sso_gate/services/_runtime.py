"""What every service shares: settings, the engine, the clock, one-time store and HTTP client."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sso_gate._crypto import SecretBox
from sso_gate._nul import NUL_MESSAGE
from sso_gate._time import Clock
from sso_gate.exceptions import SSOGateError, StorageUnavailableError, ValidationError
from sso_gate.metrics import GateMetrics
from sso_gate.settings import Settings
from sso_gate.store.onetime import OneTimeStore

__all__ = ["Runtime"]

# Set while this task is inside a SQLite write transaction (see Runtime.transaction).
_in_sqlite_write: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sso_gate_in_sqlite_write", default=False
)


@dataclasses.dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    clock: Clock
    onetime: OneTimeStore
    http: httpx.AsyncClient
    box: SecretBox
    metrics: GateMetrics = dataclasses.field(default_factory=GateMetrics)
    _sqlite_writer: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; a database outage becomes :class:`StorageUnavailableError`.

        On SQLite this process's write transactions take turns (first come, first served) on
        an ``asyncio.Lock``: SQLite allows one writer, and waiting for it in SQLite's busy
        handler (sleeps of up to 100 ms between tries, newest waiters favoured) made the slowest
        of a burst of concurrent writes wait seconds (load test: SCIM POSTs at 8 connections,
        p99 2.2 s). A transaction opened inside another one in the same task does not wait for
        itself. Other processes on the same file still meet the busy timeout."""
        if self.engine.dialect.name != "sqlite" or _in_sqlite_write.get():
            with _outage_as_503():
                async with self.engine.begin() as conn:
                    yield conn
            return
        loop = asyncio.get_running_loop()
        if self._sqlite_writer is None or self._sqlite_writer[0] is not loop:
            self._sqlite_writer = (loop, asyncio.Lock())  # a lock serves one event loop
        async with self._sqlite_writer[1]:
            token = _in_sqlite_write.set(True)
            try:
                with _outage_as_503():
                    async with self.engine.begin() as conn:
                        yield conn
            finally:
                _in_sqlite_write.reset(token)

    async def delete_in_batches(
        self, table: sa.Table, condition: sa.ColumnElement[bool], batch: int = 5000
    ) -> int:
        """Delete the rows of ``table`` matching ``condition``, ``batch`` at a time, one short
        transaction each (a large backlog never holds a long write lock). Returns how many."""
        total = 0
        while True:
            async with self.transaction() as conn:
                ids = sa.select(table.c.id).where(condition).limit(batch)
                result = await conn.execute(
                    sa.delete(table).where(table.c.id.in_(ids.scalar_subquery()))
                )
            deleted = int(result.rowcount or 0)
            total += deleted
            if deleted < batch:
                return total

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (no explicit transaction)."""
        with _outage_as_503():
            async with self.engine.connect() as conn:
                yield conn


_UNTRANSLATABLE = "22021"  # PostgreSQL: character_not_in_repertoire (U+0000 in text)


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
        if getattr(exc.orig, "sqlstate", None) == _UNTRANSLATABLE or "0x00" in str(exc.orig):
            # text with U+0000 that reached PostgreSQL by a path without an edge check (a
            # query parameter, say): the caller's input, not a server fault
            raise ValidationError(f"a value {NUL_MESSAGE}", code="invalid_text") from None
        raise
    except StatementError as exc:
        if isinstance(exc.orig, SSOGateError):  # raised by a column type (tables.String)
            raise exc.orig from None
        raise
