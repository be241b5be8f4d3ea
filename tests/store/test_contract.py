"""The store contract: every service behaviour on SQLite and on PostgreSQL (same suite)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sso_gate import ConflictError, NotFoundError, SSOGate, ValidationError
from sso_gate.models import Profile
from sso_gate.store.tables import events, organizations

pytestmark = pytest.mark.anyio


async def test_organization_round_trip(gate: SSOGate) -> None:
    org = await gate.organizations.create(
        "Acme", domains=["acme.test", "ACME.example"], sso_policy="required", external_id="ext-1"
    )
    got = await gate.organizations.get(org.id)
    assert got == org
    assert {d.domain for d in got.domains} == {"acme.test", "acme.example"}
    assert got.created_at.tzinfo is not None and got.external_id == "ext-1"


async def test_idn_domains_normalized(gate: SSOGate) -> None:
    org = await gate.organizations.create("Bücher", domains=["bücher.test"])
    assert org.domains[0].domain == "xn--bcher-kva.test"
    d = await gate.routing.for_email("anna@BÜCHER.test")
    assert d is not None and d.organization_id == org.id


async def test_domain_unique_and_failure_leaves_no_partial_state(gate: SSOGate) -> None:
    await gate.organizations.create("A", domains=["a.test"])
    with pytest.raises(ConflictError):
        await gate.organizations.create("B", domains=["b.test", "a.test"])
    # org B and its first domain were rolled back with the failing one
    page = await gate.organizations.list(limit=100)
    assert [o.name for o in page.data] == ["A"]
    assert (await gate.routing.for_domain("b.test")).organization_id is None


async def test_consumer_domains_refused(gate: SSOGate) -> None:
    for d in ("gmail.com", "outlook.com", "yahoo.co.uk", "proton.me"):
        with pytest.raises(ValidationError):
            await gate.organizations.create("X", domains=[d])


async def test_routing_follows_changes(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    assert not (await gate.routing.for_domain("acme.test")).sso_required
    conn = await gate.connections.create_oidc(
        org.id, issuer="https://idp.test", client_id="c", client_secret="s"
    )
    d = await gate.routing.for_domain("acme.test")
    assert d.sso_required and d.connection_id == conn.id
    await gate.organizations.update(org.id, sso_policy="optional")
    assert not (await gate.routing.for_domain("acme.test")).sso_required
    await gate.organizations.update(org.id, sso_policy="required")
    await gate.connections.deactivate(conn.id)
    assert not (await gate.routing.for_domain("acme.test")).sso_required
    await gate.connections.activate(conn.id)
    await gate.organizations.remove_domain(org.id, "acme.test")
    assert (await gate.routing.for_domain("acme.test")).organization_id is None
    assert await gate.routing.for_email("not-an-email") is None


async def test_delete_org_cascades(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme", domains=["acme.test"])
    conn = await gate.connections.create_oidc(
        org.id, issuer="https://idp.test", client_id="c", client_secret="s"
    )
    await gate.organizations.delete(org.id)
    with pytest.raises(NotFoundError):
        await gate.connections.get(conn.id)
    with pytest.raises(NotFoundError):
        await gate.organizations.get(org.id)
    assert (await gate.routing.for_domain("acme.test")).organization_id is None


async def test_connection_secret_encrypted_and_decrypted(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme")
    conn = await gate.connections.create_oidc(
        org.id, issuer="https://idp.test", client_id="c", client_secret="top-secret"
    )
    assert (await gate.connections.get(conn.id)).oidc.client_secret.reveal() == "top-secret"  # type: ignore[union-attr]
    async with gate._rt.read() as c:
        raw = (await c.execute(sa.text("select secret_ciphertext, config from connections"))).all()
    assert "top-secret" not in repr(raw)


async def test_events_written_with_state_changes(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme")
    conn = await gate.connections.create_oidc(
        org.id, issuer="https://idp.test", client_id="c", client_secret="s"
    )
    await gate.connections.deactivate(conn.id)
    await gate.connections.delete(conn.id)
    async with gate._rt.read() as c:
        names = [r.event for r in (await c.execute(sa.select(events).order_by(events.c.id))).all()]
    assert names == [
        "organization.created",
        "connection.created",
        "connection.activated",
        "connection.deactivated",
        "connection.deleted",
    ]


async def test_subscribers_called_after_commit_and_failures_isolated(gate: SSOGate) -> None:
    seen: list[str] = []

    @gate.on("connection.*")
    async def boom(ev: object) -> None:
        raise RuntimeError("subscriber bug")

    @gate.on("connection.*")
    def record(ev: object) -> None:
        seen.append(ev.event)  # type: ignore[attr-defined]

    org = await gate.organizations.create("Acme")
    await gate.connections.create_oidc(
        org.id, issuer="https://idp.test", client_id="c", client_secret="s"
    )
    assert seen == ["connection.created", "connection.activated"]


async def test_sessions_revocation(gate: SSOGate) -> None:
    p = Profile(
        id="prof_1",
        idp_id="s",
        email="a@acme.test",
        first_name=None,
        last_name=None,
        organization_id="org_1",
        connection_id="conn_1",
        connection_type="GenericOIDC",
    )
    c1, s1 = await gate.sessions.create(p)
    c2, s2 = await gate.sessions.create(p)
    assert s1.id != s2.id
    assert (await gate.sessions.verify(c1)) == s1
    assert await gate.sessions.revoke(s1.id) is True
    assert await gate.sessions.revoke(s1.id) is False
    assert await gate.sessions.verify(c1) is None
    assert await gate.sessions.verify(c2) is not None
    assert await gate.sessions.revoke_user("org_1", profile_id="prof_1") == [s2.id]
    assert await gate.sessions.verify(c2) is None


async def test_migrations_match_tables(gate: SSOGate) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from sso_gate.store.tables import metadata

    def diff(sync_conn: sa.Connection) -> list[object]:
        ctx = MigrationContext.configure(sync_conn)
        return list(compare_metadata(ctx, metadata))

    async with gate._rt.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_migrate_is_idempotent(gate: SSOGate) -> None:
    await gate.migrate()
    async with gate._rt.read() as c:
        assert (
            await c.execute(sa.select(sa.func.count()).select_from(organizations))
        ).scalar() == 0
