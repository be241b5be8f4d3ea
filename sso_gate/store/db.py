"""Engine creation and migrations (Alembic, run in-process over the async engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from sso_gate.exceptions import ConfigurationError

__all__ = ["async_url", "create_engine", "migrate", "MIGRATIONS_DIR"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def async_url(url: str) -> str:
    """Map a plain SQLAlchemy URL to its async driver (aiosqlite / asyncpg)."""
    if url.startswith("sqlite+aiosqlite:") or url.startswith("postgresql+asyncpg:"):
        return url
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql+psycopg:", "postgresql+psycopg2:", "postgresql:", "postgres:"):
        if url.startswith(prefix):
            return "postgresql+asyncpg:" + url[len(prefix) :]
    raise ConfigurationError(f"unsupported database URL scheme {url.split(':', 1)[0]!r}")


def create_engine(url: str, *, timeout: float | None = None, **kw: Any) -> AsyncEngine:
    """Create the async engine. SQLite gets WAL, foreign keys and a busy timeout.

    ``timeout`` (``SSO_GATE_DATABASE_TIMEOUT``) bounds, on PostgreSQL, connecting, each
    statement (the pool's pre-ping included) and the wait for a free pooled connection. Without
    it a database that stops answering without closing its connections (a network partition, a
    frozen host) holds every request for minutes: asyncpg waits 60 s to connect and forever for
    a reply.
    """
    aurl = async_url(url)
    if aurl.startswith("sqlite"):
        kw.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(aurl, **kw)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if ":memory:" not in aurl and "mode=memory" not in aurl:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    if timeout is not None:
        kw.setdefault("connect_args", {"timeout": timeout, "command_timeout": timeout})
        kw.setdefault("pool_timeout", timeout)
    return create_async_engine(aurl, **kw)


def _upgrade(sync_conn: sa.Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (idempotent).

    On PostgreSQL the migrations run on a connection of their own without the statement
    timeout of ``engine``: building an index on a large table may take longer than a request
    should ever wait.
    """
    conn: AsyncConnection
    if engine.dialect.name != "postgresql":
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
        return
    ddl = create_async_engine(engine.url, poolclass=NullPool)
    try:
        async with ddl.begin() as conn:
            # several instances starting at once: one migrates, the others wait and then find
            # the schema current (without the lock all but one failed on an empty database)
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(7261726101)"))
            await conn.run_sync(_upgrade, revision)
    finally:
        await ddl.dispose()
