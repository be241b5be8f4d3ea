"""The ASGI lifespan starts the in-process delivery worker after the app's own startup and
stops it at shutdown; an app without lifespan support is answered by the gate."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sso_gate import SSOGate
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


async def run_lifespan(
    app: Any,
) -> tuple[list[str], asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    while not sent:
        await asyncio.sleep(0.01)
    return sent, inbox, task


@pytest.mark.parametrize("worker", ["inline", "off"])
async def test_worker_runs_between_startup_and_shutdown(database_url: str, worker: str) -> None:
    gate = SSOGate(make_settings(database_url, worker=worker))
    await gate.migrate()
    order: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                order.append(f"app startup, worker running: {gate._worker_task is not None}")
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    sent, inbox, task = await run_lifespan(gate.wrap(inner))
    assert sent == ["lifespan.startup.complete"]
    assert order == ["app startup, worker running: False"]  # the app migrates first
    assert (gate._worker_task is not None) == (worker == "inline")
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert gate._worker_task is None
    await gate.aclose()


async def test_app_without_lifespan_support(database_url: str) -> None:
    gate = SSOGate(make_settings(database_url))
    await gate.migrate()

    async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "no lifespan here"

    sent, inbox, task = await run_lifespan(gate.wrap(http_only))
    assert sent == ["lifespan.startup.complete"] and gate._worker_task is not None
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    assert sent[-1] == "lifespan.shutdown.complete" and gate._worker_task is None
    await gate.aclose()
