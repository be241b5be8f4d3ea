"""The worker's hourly housekeeping: expired sessions, portal links and portal sessions go a
day after they expire, the SCIM request log after its retention; live rows stay."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from sso_gate import SSOGate
from sso_gate._ids import new_id
from sso_gate.store.tables import portal_links, portal_sessions, scim_requests, sessions

pytestmark = pytest.mark.anyio


async def _seed(gate: SSOGate, org: str, expires: datetime, created: datetime) -> None:
    common = {"organization_id": org, "created_at": created, "expires_at": expires}
    async with gate._rt.transaction() as c:
        await c.execute(
            sa.insert(sessions).values(
                id=new_id("session"),
                token_hash=secrets.token_hex(32),
                profile_id="prof_1",
                email="a@acme.test",
                profile={},
                **common,
            )
        )
        await c.execute(
            sa.insert(portal_links).values(
                id=new_id("portal_link"), token_hash=secrets.token_hex(32), intent="sso", **common
            )
        )
        await c.execute(
            sa.insert(portal_sessions).values(
                id=new_id("portal_session"),
                token_hash=secrets.token_hex(32),
                intent="sso",
                **common,
            )
        )
        await c.execute(
            sa.insert(scim_requests).values(
                id=new_id("scim_request"),
                directory_id="directory_1",
                method="POST",
                path="/Users",
                status=201,
                created_at=created,
            )
        )


async def _counts(gate: SSOGate) -> dict[str, int]:
    out = {}
    async with gate._rt.read() as c:
        for t in (sessions, portal_links, portal_sessions, scim_requests):
            q = sa.select(sa.func.count()).select_from(t)
            out[t.name] = int((await c.execute(q)).scalar_one())
    return out


async def test_expired_rows_are_purged_and_live_ones_kept(gate: SSOGate) -> None:
    org = (await gate.organizations.create("Acme")).id
    now = gate._rt.clock()
    # expired 2 days ago / logged 40 days ago: purged
    await _seed(gate, org, expires=now - timedelta(days=2), created=now - timedelta(days=40))
    # expired an hour ago (inside the day of grace) / logged 10 days ago: kept
    await _seed(gate, org, expires=now - timedelta(hours=1), created=now - timedelta(days=10))
    # live
    await _seed(gate, org, expires=now + timedelta(hours=8), created=now)
    purged = await gate.worker.housekeeping.purge()
    assert purged == {"sessions": 1, "portal_links": 1, "portal_sessions": 1, "scim_requests": 1}
    assert await _counts(gate) == {
        "sessions": 2,
        "portal_links": 2,
        "portal_sessions": 2,
        "scim_requests": 2,
    }
    assert set((await gate.worker.housekeeping.purge()).values()) == {0}


async def test_the_worker_runs_housekeeping(gate: SSOGate) -> None:
    org = (await gate.organizations.create("Acme")).id
    now = gate._rt.clock()
    await _seed(gate, org, expires=now - timedelta(days=2), created=now - timedelta(days=40))
    await gate.worker.run_once()
    assert set((await _counts(gate)).values()) == {0}
