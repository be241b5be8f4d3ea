"""Webhook delivery with real processes: the example app under uvicorn (its in-process worker
started by the ASGI lifespan), ``sso-gate worker`` processes, and a real HTTP receiver on
loopback (``tests/peers/webhook_receiver.py``).

1. The receiver fails its first attempts: every event still arrives, signed, and none is
   accepted twice.
2. The receiver is down for the whole run; the app is restarted; then the receiver comes up:
   everything still arrives.
3. Two worker processes on PostgreSQL deliver a stream of events: no event is sent twice and no
   attempt number is claimed twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sso_gate import SSOGate
from sso_gate.store.tables import events as events_table
from sso_gate.store.tables import webhook_attempts
from sso_gate.webhooks import verify

from ..conftest import POSTGRES_URL, _reset_postgres
from .conftest import REPO, AppStack, _stop, _wait_ready, app_env, free_port, need, start_app

pytestmark = pytest.mark.e2e

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
FAST_RETRIES = ",".join(["0.3"] * 60)  # many quick retries: nothing exhausts during a test


@dataclass
class Receiver:
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self, fail_first: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.peers.webhook_receiver"]
            + ["--port", str(self.port), "--log", str(self.log), "--fail-first", str(fail_first)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/ping", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("the webhook receiver did not start")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def accepted_ids(self) -> Counter[str]:
        return Counter(r["webhook-id"] for r in self.records() if r["status"] == 200)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(port=free_port(), log=tmp_path / "received.jsonl")
    yield r
    r.stop()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def gate_env(app_port: int, database_url: str) -> dict[str, str]:
    env = app_env(app_port, database_url, None)
    env.update(
        SSO_GATE_ALLOW_PRIVATE_URLS="true",
        SSO_GATE_WEBHOOK_RETRY_SCHEDULE=FAST_RETRIES,
        SSO_GATE_WORKER_POLL_INTERVAL="0.2",
        SSO_GATE_WEBHOOK_TIMEOUT="3",
        SSO_GATE_WEBHOOK_DISABLE_AFTER_FAILURES="100000",
    )
    return env


@dataclass
class Seeded:
    directory_id: str
    token: str
    secret: str


async def seed(env: dict[str, str], receiver_url: str, events: list[str]) -> Seeded:
    gate = SSOGate.from_env(env)
    try:
        await gate.migrate()
        org = await gate.organizations.create("Acme", ["acme.test"])
        directory, token = await gate.directories.create(org.id)
        _, secret = await gate.webhooks.create(receiver_url, events)
        return Seeded(directory.id, token, secret)
    finally:
        await gate.aclose()


async def db_rows(env: dict[str, str], stmt: Any) -> list[Any]:
    gate = SSOGate.from_env(env)
    try:
        async with gate._rt.read() as conn:
            return list((await conn.execute(stmt)).all())
    finally:
        await gate.aclose()


def provision(stack: AppStack, seeded: Seeded, names: list[str]) -> None:
    with httpx.Client(timeout=10) as client:
        for name in names:
            r = client.post(
                stack.url(f"/sso-gate/scim/v2/{seeded.directory_id}/Users"),
                headers={
                    "Authorization": f"Bearer {seeded.token}",
                    "Content-Type": "application/scim+json",
                },
                json={"schemas": [USER], "userName": f"{name}@acme.test", "active": True},
            )
            assert r.status_code == 201, r.text


def expected_ids(env: dict[str, str]) -> set[str]:
    rows = asyncio.run(
        db_rows(
            env,
            sa.select(events_table.c.id).where(events_table.c.event == "dsync.user.created"),
        )
    )
    return {r.id for r in rows}


def check_signed(receiver: Receiver, secret: str) -> None:
    for record in receiver.records():
        headers = {k: record[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
        body = verify(record["body"], headers, secret, replay_cache=None, tolerance=3600)
        assert body["id"] == record["webhook-id"]


def start_stack(tmp_path: Path, env: dict[str, str], port: int, name: str) -> tuple[Any, AppStack]:
    stack = AppStack(base_url=env["SSO_GATE_BASE_URL"], env=env, log=tmp_path / f"{name}.log")
    proc = start_app(stack)
    _wait_ready(proc, stack)
    return proc, stack


def test_receiver_failing_first_attempts_gets_everything_once(
    tmp_path: Path, receiver: Receiver, database_url: str
) -> None:
    port = free_port((receiver.port,))
    env = gate_env(port, database_url)
    seeded = asyncio.run(seed(env, receiver.url, ["dsync.user.*"]))
    receiver.start(fail_first=3)
    proc, stack = start_stack(tmp_path, env, port, "app")
    try:
        provision(stack, seeded, [f"user{i}" for i in range(20)])
        want = expected_ids(env)
        assert len(want) == 20
        wait_for(lambda: set(receiver.accepted_ids()) == want, 30, "all 20 events")
        time.sleep(1.0)  # anything sent twice would show up now
    finally:
        _stop(proc)
    accepted = receiver.accepted_ids()
    assert set(accepted) == want and max(accepted.values()) == 1, stack.log_tail()
    records = receiver.records()
    assert sum(r["status"] == 503 for r in records) == 3
    assert len(records) == 23
    check_signed(receiver, seeded.secret)
    attempts = asyncio.run(db_rows(env, sa.select(webhook_attempts.c.succeeded)))
    assert len(attempts) == 23 and sum(a.succeeded for a in attempts) == 20


def test_receiver_down_and_app_restarted_nothing_is_lost(
    tmp_path: Path, receiver: Receiver, database_url: str
) -> None:
    port = free_port((receiver.port,))
    env = gate_env(port, database_url)
    seeded = asyncio.run(seed(env, receiver.url, ["dsync.user.created"]))
    proc, stack = start_stack(tmp_path, env, port, "app-1")
    try:
        provision(stack, seeded, [f"user{i}" for i in range(15)])

        def all_failed_once() -> bool:
            rows = asyncio.run(db_rows(env, sa.select(webhook_attempts.c.delivery_id)))
            return len({r.delivery_id for r in rows}) == 15

        wait_for(all_failed_once, 30, "a failed attempt for every delivery")
    finally:
        _stop(proc)
    assert receiver.records() == []
    proc, stack = start_stack(tmp_path, env, port, "app-2")  # the gate restarts ...
    try:
        receiver.start()  # ... then the receiver comes back
        want = expected_ids(env)
        assert len(want) == 15
        wait_for(lambda: set(receiver.accepted_ids()) == want, 40, "all 15 events after restart")
        time.sleep(1.0)
    finally:
        _stop(proc)
    assert max(receiver.accepted_ids().values()) == 1, stack.log_tail()
    check_signed(receiver, seeded.secret)


def test_two_worker_processes_on_postgres_never_duplicate(
    tmp_path: Path, receiver: Receiver
) -> None:
    need(POSTGRES_URL, "SSO_GATE_TEST_POSTGRES_URL is not set")
    assert POSTGRES_URL is not None
    _reset_postgres(POSTGRES_URL)
    env = gate_env(free_port((receiver.port,)), POSTGRES_URL)
    env["SSO_GATE_WORKER_POLL_INTERVAL"] = "0.05"  # both workers poll hard: maximal contention
    asyncio.run(seed(env, receiver.url, ["*"]))
    receiver.start()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SSO_GATE_")}
    child_env.update(env, PYTHONUNBUFFERED="1")
    workers = []
    for i in range(2):
        with open(tmp_path / f"worker-{i}.log", "wb") as log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "sso_gate.cli", "worker"],
                    cwd=REPO,
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    async def produce() -> None:
        gate = SSOGate.from_env(env)
        try:
            for i in range(300):
                await gate.organizations.create(f"Org {i}")
                if i % 50 == 0:
                    await asyncio.sleep(0.2)
        finally:
            await gate.aclose()

    try:
        time.sleep(1.0)
        asyncio.run(produce())
        total = len(asyncio.run(db_rows(env, sa.select(events_table.c.id))))
        wait_for(lambda: len(receiver.accepted_ids()) == total, 60, f"all {total} events")
        time.sleep(1.5)
    finally:
        for w in workers:
            _stop(w)
    logs = "\n".join((tmp_path / f"worker-{i}.log").read_text() for i in range(2))
    accepted = receiver.accepted_ids()
    assert len(accepted) == total and max(accepted.values()) == 1, logs[-3000:]
    assert len(receiver.records()) == total
    attempts = asyncio.run(
        db_rows(env, sa.select(webhook_attempts.c.delivery_id, webhook_attempts.c.worker))
    )
    assert len(attempts) == total == len({a.delivery_id for a in attempts})
    by_worker = Counter(a.worker for a in attempts)
    print(f"attempts per worker: {dict(by_worker)}")
    assert len(by_worker) == 2, f"only one worker delivered: {dict(by_worker)}"
