"""Readiness: can this instance reach what it needs (``gate.health``, ``{prefix}/readyz``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import sqlalchemy as sa

from sso_gate.exceptions import SSOGateError
from sso_gate.services._runtime import Runtime
from sso_gate.store.onetime import RedisOneTimeStore

__all__ = ["HealthService"]


class HealthService:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    async def readiness(self) -> dict[str, dict[str, Any]]:
        """``{"database": {...}, "redis": {...}}``, each ``{"status": "ok"|"fail",
        "latency_ms"}`` plus ``error`` when it failed. ``redis`` only when the one-time store
        is Redis. Errors name the kind of failure, never a URL or a password."""
        checks: list[tuple[str, Any]] = [("database", self._database)]
        if isinstance(self._rt.onetime, RedisOneTimeStore):
            checks.append(("redis", self._rt.onetime.ping))
        results = await asyncio.gather(*(self._timed(fn) for _, fn in checks))
        return {name: result for (name, _), result in zip(checks, results, strict=True)}

    async def _database(self) -> None:
        async with self._rt.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def _timed(self, check: Any) -> dict[str, Any]:
        timeout = self._rt.settings.readyz_timeout
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await check()
        except TimeoutError:
            return {"status": "fail", "error": f"no answer within {timeout:g} s"}
        except SSOGateError as exc:
            return {"status": "fail", "error": exc.code}
        except Exception as exc:  # any driver error: the kind is enough, its text may hold a DSN
            return {"status": "fail", "error": f"unreachable ({type(exc).__name__})"}
        return {"status": "ok", "latency_ms": round((time.perf_counter() - t0) * 1000, 2)}
