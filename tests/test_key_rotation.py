"""Retiring a secret key: ``gate.keys.reseal()`` / ``sso-gate keys reseal`` re-encrypts stored
secrets and re-signs audit heads and checkpoints with the first key; afterwards the old key can
be removed and everything still reads and verifies."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from sso_gate import SSOGate
from sso_gate.cli import cli
from sso_gate.services.webhooks import signing_secrets
from sso_gate.settings import Secret
from sso_gate.store.tables import audit_streams, connections, webhook_endpoints
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

OLD, NEW, OTHER = (Secret(f"{n}-" + secrets.token_urlsafe(24)) for n in ("old", "new", "other"))


def _gate(url: str, *keys: Secret) -> SSOGate:
    return SSOGate(make_settings(url, secret_keys=keys, allow_private_urls=True))


async def _sealed_kids(gate: SSOGate) -> set[str | None]:
    out: set[str | None] = set()
    async with gate._rt.read() as c:
        for col in (
            connections.c.secret_ciphertext,
            webhook_endpoints.c.secret_enc,
            webhook_endpoints.c.previous_secret_enc,
            audit_streams.c.secret_enc,
        ):
            for (token,) in (await c.execute(sa.select(col).where(col.is_not(None)))).all():
                out.add(gate._rt.box.kid_of(token))
    return out


async def _seed(url: str) -> dict[str, Any]:
    g = _gate(url, OLD)
    await g.migrate()
    org = await g.organizations.create("Acme", ["acme.test"])
    conn = await g.connections.create_oidc(
        org.id, issuer="https://idp.test", client_id="client", client_secret="s3cret-client"
    )
    endpoint, first = await g.webhooks.create("http://127.0.0.1:9/hook", ["*"])
    second = await g.webhooks.rotate_secret(endpoint.id)
    stream = await g.audit_streams.create(
        org.id, "splunk_hec", {"url": "http://127.0.0.1:9", "token": "hec-token-123"}
    )
    await g.audit.emit_many(
        org.id, [{"action": "doc.viewed", "actor": {"type": "user", "id": "u1"}}] * 1005
    )
    await g.audit.chain()  # a head and a checkpoint at 1,000, signed with OLD
    await g.aclose()
    return {
        "org": org.id,
        "conn": conn.id,
        "endpoint": endpoint.id,
        "secrets": {first, second},
        "stream": stream.id,
    }


async def test_reseal_lets_the_old_key_go(database_url: str) -> None:
    seeded = await _seed(database_url)
    both = _gate(database_url, NEW, OLD)
    try:
        report = await both.keys.reseal()
        assert report.ok, report.to_dict()
        assert report.resealed == {
            "connections.secret_ciphertext": 1,
            "webhook_endpoints.secret_enc": 1,
            "webhook_endpoints.previous_secret_enc": 1,
            "audit_streams.secret_enc": 1,
        }
        assert report.resigned["audit_chains"] >= 1 and report.resigned["audit_checkpoints"] >= 1
        assert await _sealed_kids(both) == {both._rt.box.current_kid}
        again = await both.keys.reseal()  # idempotent
        assert set(again.resealed.values()) | set(again.resigned.values()) == {0}
    finally:
        await both.aclose()

    new_only = _gate(database_url, NEW)
    try:
        conn = await new_only.connections.get(seeded["conn"])
        assert conn.oidc is not None and conn.oidc.client_secret.reveal() == "s3cret-client"
        async with new_only._rt.read() as c:
            endpoint = (
                (
                    await c.execute(
                        sa.select(webhook_endpoints).where(
                            webhook_endpoints.c.id == seeded["endpoint"]
                        )
                    )
                )
                .one()
                ._mapping
            )
            stream = (
                (
                    await c.execute(
                        sa.select(audit_streams).where(audit_streams.c.id == seeded["stream"])
                    )
                )
                .one()
                ._mapping
            )
        now = new_only._rt.clock()
        assert set(signing_secrets(new_only._rt.box, endpoint, now)) == seeded["secrets"]
        assert new_only.audit_streams._secrets(stream) == {"token": "hec-token-123"}
        assert (await new_only.audit.verify(seeded["org"])).ok
    finally:
        await new_only.aclose()


async def test_values_of_a_missing_key_are_listed_not_touched(database_url: str) -> None:
    await _seed(database_url)
    other = _gate(database_url, OTHER)
    try:
        before = await _sealed_kids(other)
        report = await other.keys.reseal()
        assert not report.ok
        assert len(report.unreadable) == 4
        assert any(p.startswith("connections.secret_ciphertext:") for p in report.unreadable)
        assert report.invalid_signatures  # the OLD-signed head and checkpoint: not laundered
        assert await _sealed_kids(other) == before
    finally:
        await other.aclose()


def test_cli_keys_reseal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    asyncio.run(_seed(url))
    monkeypatch.setenv("SSO_GATE_BASE_URL", "https://app.example.com")
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", url)
    runner = CliRunner()
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", f"{NEW.reveal()},{OLD.reveal()}")
    r = runner.invoke(cli, ["keys", "reseal"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["resealed"]["connections.secret_ciphertext"] == 1
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", OTHER.reveal())
    r = runner.invoke(cli, ["keys", "reseal"])
    assert r.exit_code == 2 and len(json.loads(r.output)["unreadable"]) == 4
    assert OLD.reveal() not in r.output and NEW.reveal() not in r.output
