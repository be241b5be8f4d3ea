"""In-process subscribers: called after commit; one that raises is logged and changes nothing
for the request that caused the event, nor for the other subscribers."""

from __future__ import annotations

import logging

import pytest

from sso_gate.models import Event
from tests.web.conftest import make_env

pytestmark = pytest.mark.anyio
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


async def test_a_failing_subscriber_does_not_affect_the_scim_request(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = await make_env(database_url)
    try:
        directory, token = await env.gate.directories.create(env.org.id)
        seen: list[str] = []
        committed: list[bool] = []

        @env.gate.on("dsync.user.created")
        def broken(event: Event) -> None:
            raise RuntimeError("subscriber bug")

        @env.gate.on("dsync.*")
        async def recorder(event: Event) -> None:
            # called after commit: the user is already readable from a fresh connection
            user = await env.gate.directories.get_user(event.data["id"])
            committed.append(user is not None)
            seen.append(event.event)

        with caplog.at_level(logging.ERROR, logger="sso_gate.events"):
            r = await env.client.post(
                f"/sso-gate/scim/v2/{directory.id}/Users",
                headers={"Authorization": f"Bearer {token}"},
                json={"schemas": [USER], "userName": "alice@acme.test"},
            )
        assert r.status_code == 201, r.text
        assert seen == ["dsync.user.created"] and committed == [True]
        assert "subscriber" in caplog.text and "RuntimeError" in caplog.text
        users = await env.gate.directories.list_users(directory_id=directory.id)
        assert [u.email for u in users.data] == ["alice@acme.test"]
        # the event is in the outbox (feed) as well
        feed = await env.gate.events.list(events=["dsync.user.created"])
        assert len(feed.data) == 1
    finally:
        await env.client.aclose()
        await env.gate.aclose()


async def test_wildcards(database_url: str) -> None:
    env = await make_env(database_url)
    try:
        got: dict[str, list[str]] = {"*": [], "organization.*": [], "exact": []}
        env.gate.on("*")(lambda e: got["*"].append(e.event))
        env.gate.on("organization.*")(lambda e: got["organization.*"].append(e.event))
        env.gate.on("organization.updated")(lambda e: got["exact"].append(e.event))
        await env.gate.organizations.update(env.org.id, name="Acme Inc")
        await env.gate.organizations.add_domain(env.org.id, "acme.example")
        assert got["*"] == ["organization.updated", "organization_domain.created"]
        assert got["organization.*"] == ["organization.updated"]
        assert got["exact"] == ["organization.updated"]
    finally:
        await env.client.aclose()
        await env.gate.aclose()
