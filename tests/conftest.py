"""Shared fixtures: databases (SQLite always, PostgreSQL when configured), settings, gates."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import core as _hypothesis_core
from hypothesis.vendor import pretty as _hypothesis_pretty

from sso_gate import Settings, SSOGate
from sso_gate.exceptions import StorageUnavailableError
from sso_gate.settings import Secret

# schemathesis' pytest plugin (a dev dependency, for tests/fuzz) replaces Hypothesis' printer, in
# every session, with one that prints nothing: a failing property test then reports "x=," instead
# of its example. Give the printer back (schemathesis' own items hide Hypothesis' output anyway).
_hypothesis_core.RepresentationPrinter = _hypothesis_pretty.RepresentationPrinter  # type: ignore[misc]

# Under pytest-xdist each worker process ("gw0", "gw1", …) has databases of its own: PostgreSQL
# database <name>_gw<N> next to the configured one (created when missing) and Redis database
# number <db> - N (mod 16). Tests never share one between processes.
T = TypeVar("T")

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_INDEX = int(XDIST_WORKER[2:]) if XDIST_WORKER.startswith("gw") else None


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, in a thread of its own when this thread already runs an event loop
    (Playwright's sync API does, in the browser tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def with_database(url: str, name: str) -> str:
    """``url`` naming the PostgreSQL database ``name`` instead."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _worker_redis(url: str | None) -> str | None:
    if url is None or _WORKER_INDEX is None:
        return url
    parts = urlsplit(url)
    db = int(parts.path.lstrip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db - _WORKER_INDEX) % 16}"))


POSTGRES_BASE_URL = os.environ.get("SSO_GATE_TEST_POSTGRES_URL")
POSTGRES_URL = (
    with_database(POSTGRES_BASE_URL, f"{database_name(POSTGRES_BASE_URL)}_{XDIST_WORKER}")
    if POSTGRES_BASE_URL and _WORKER_INDEX is not None
    else POSTGRES_BASE_URL
)
REDIS_URL = _worker_redis(os.environ.get("SSO_GATE_TEST_REDIS_URL"))

BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])

# Every test that uses a database runs on each of BACKENDS (database_url, module_database_url,
# the end-to-end stacks). The exceptions, each bound to one backend:
# - SQLite only, by nature: events/test_webhooks_service.py::test_sqlite_allows_a_single_worker
#   (SQLite's one-worker lease); store/test_sqlite_writer_turns.py (the SQLite write-turn lock).
# - PostgreSQL only, by nature: store/test_concurrent_migrate.py (the migration advisory lock);
#   audit/test_streams_live.py::test_two_workers_on_postgresql_never_send_a_batch_twice and
#   e2e/test_webhooks_processes.py::test_two_worker_processes_on_postgres_never_duplicate
#   (several workers; SQLite allows one); e2e/test_multi_instance.py (instances sharing
#   PostgreSQL and Redis); e2e/test_faults.py (PostgreSQL and Redis stopped under traffic);
#   store/test_db_timeouts.py (PostgreSQL timeouts against a silent server, no database).
# - Unreachable databases of both kinds, no live one: web/test_observability.py::test_database_down.
# The benchmark harnesses' smoke tests (hot path, SAML, SCIM, audit, webhooks, load) run on both
# (the SAML peer comparisons with pysaml2 / python3-saml, skipped unless installed, on SQLite).


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The schema fingerprint (tables, columns, indexes, Alembic revision) of each PostgreSQL database
# this process has migrated from scratch, and the tables to empty between tests.
_MIGRATED: dict[str, tuple[str, tuple[str, ...]]] = {}


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _reset_postgres(url: str) -> None:
    """Drop every table of the PostgreSQL database ``url``: an empty, unmigrated schema."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(_pg_dsn(url))
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    run_sync(go())
    _MIGRATED.pop(url, None)


def _ensure_database(name: str) -> None:
    """Create the PostgreSQL database ``name`` (on the configured server) unless it exists."""
    import asyncpg

    assert POSTGRES_BASE_URL is not None

    async def go() -> None:
        conn = await asyncpg.connect(_pg_dsn(POSTGRES_BASE_URL))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                except asyncpg.DuplicateDatabaseError:  # created meanwhile by another process
                    pass
        finally:
            await conn.close()

    run_sync(go())


def postgres_database(suffix: str) -> str:
    """A PostgreSQL database of its own, ``<test database>_<suffix>``, empty and unmigrated,
    for fixtures that outlive one test (a session's end-to-end stack): the test database itself
    is emptied before every test that uses ``database_url``. Kept after the run (dropping a
    database costs a checkpoint); emptied again when it is next used."""
    assert POSTGRES_URL is not None
    name = f"{database_name(POSTGRES_URL)}_{suffix}"
    _ensure_database(name)
    url = with_database(POSTGRES_URL, name)
    _reset_postgres(url)
    return url


# Under pytest-xdist (scripts/test runs two workers, --dist loadgroup) the tests sharing a
# session's end-to-end stack run on one worker, which starts it once; so do the tests of a
# module with module-scoped fixtures (a seeded fuzz gate, a browser, a receiver process).
_STACK_GROUPS = {
    **dict.fromkeys(("oidc_stack", "any_stack", "sqlite_stack", "postgres_stack"), "e2e-oidc"),
    **dict.fromkeys(("any_saml_stack", "saml_stack", "postgres_saml_stack"), "e2e-saml"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        names = getattr(item, "fixturenames", ())
        group = next((_STACK_GROUPS[n] for n in names if n in _STACK_GROUPS), None)
        if group is None:
            info = getattr(item, "_fixtureinfo", None)
            defs = info.name2fixturedefs.values() if info is not None else ()
            if any(d[-1].scope == "module" for d in defs if d):
                group = item.nodeid.split("::", 1)[0]
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_sessionstart(session: pytest.Session) -> None:
    if POSTGRES_URL is not None and POSTGRES_URL != POSTGRES_BASE_URL:
        _ensure_database(database_name(POSTGRES_URL))  # this xdist worker's own database


_FINGERPRINT = """
SELECT md5(coalesce(string_agg(c.relname || '.' || a.attname || ':' || a.atttypid::text
                               || ':' || a.attnotnull::text, ',' ORDER BY c.relname, a.attnum), '')
           || coalesce((SELECT string_agg(version_num, ',') FROM public.alembic_version), ''))
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
"""


def _empty_postgres(url: str) -> None:
    """The PostgreSQL database ``url`` migrated to head with every table empty.

    The first call of a test process drops the schema and migrates it from scratch (the
    migrations run on every test session); later calls only TRUNCATE the tables, about ten times
    faster than dropping and migrating again, as long as the schema is still the one migrated
    (a test that dropped or changed it gets a fresh migration).
    """
    import asyncpg

    from sso_gate.store.db import create_engine, migrate

    async def truncated() -> bool:
        known = _MIGRATED.get(url)
        if known is None:
            return False
        conn = await asyncpg.connect(_pg_dsn(url))
        try:
            try:
                fingerprint = await conn.fetchval(_FINGERPRINT)
            except asyncpg.UndefinedTableError:  # no alembic_version: not migrated
                return False
            if fingerprint != known[0]:
                return False
            await conn.execute(f"TRUNCATE {', '.join(known[1])} RESTART IDENTITY CASCADE")
            return True
        finally:
            await conn.close()

    async def migrated() -> None:
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        conn = await asyncpg.connect(_pg_dsn(url))
        try:
            fingerprint = await conn.fetchval(_FINGERPRINT)
            names = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version' ORDER BY tablename"
            )
            tables = tuple(f'public."{r[0]}"' for r in names)
            # the migrations write no rows: emptied tables are the freshly migrated state
            for table in tables:
                assert not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"), table
        finally:
            await conn.close()
        _MIGRATED[url] = (fingerprint, tables)

    if not run_sync(truncated()):
        _reset_postgres(url)
        run_sync(migrated())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unmigrated: database_url is an empty, unmigrated PostgreSQL database (implied by a test"
        " name containing 'migrat'), not the migrated one with emptied tables",
    )


def wants_unmigrated(node: pytest.Item) -> bool:
    return node.get_closest_marker("unmigrated") is not None or "migrat" in node.name


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file (not migrated yet), or the PostgreSQL test database
    with every table emptied, already migrated (``gate.migrate()`` finds it current; tests of the
    migrations themselves, marked ``unmigrated`` or named ``*migrat*``, get it unmigrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gate.db'}"
    else:
        assert POSTGRES_URL is not None
        if wants_unmigrated(request.node):
            _reset_postgres(POSTGRES_URL)
        else:
            _empty_postgres(POSTGRES_URL)
        yield POSTGRES_URL


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An empty, unmigrated database for the fixtures of a whole test module: a new SQLite file,
    or a PostgreSQL database of its own (:func:`postgres_database`)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('module-db') / 'gate.db'}"
    return postgres_database("module")


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


def outage_once(owner: object, method: str, *, commits: bool) -> None:
    """Make ``owner.method``'s next call fail as a database outage does: before it writes
    anything (``commits`` False) or after its COMMIT, the answer lost (True). Later calls run
    as usual (worker passes interrupted part-way: delivery and audit-stream tests)."""
    real = getattr(owner, method)

    async def once(*args: Any, **kwargs: Any) -> Any:
        setattr(owner, method, real)
        if commits:
            await real(*args, **kwargs)
        raise StorageUnavailableError("the database is unavailable")

    setattr(owner, method, once)


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
