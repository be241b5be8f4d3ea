"""`sso-gate audit …`: emit, list, export (stdout and file), verify (exit 2 on tampering),
retention and purge."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from sso_gate import SSOGate
from sso_gate.cli import cli
from sso_gate.settings import Secret
from sso_gate.store.tables import audit_events
from tests.conftest import make_settings

KEY = "cli-test-key-0123456789"


def event(action: str = "invoice.paid", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "action": action,
        "occurred_at": "2026-11-28T10:00:00Z",
        "actor": {"type": "user", "id": "user_1", "name": "Alice"},
        "targets": [{"type": "invoice", "id": "inv_1"}],
        "metadata": {"note": 'a,"b"\nc'},
    }
    base.update(extra)
    return base


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", KEY)
    monkeypatch.setenv("SSO_GATE_BASE_URL", "https://app.example.com")
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", database_url)
    r = CliRunner()
    assert r.invoke(cli, ["migrate"]).exit_code == 0
    return r


def ok(runner: CliRunner, *args: str, input: str | None = None) -> Any:
    r = runner.invoke(cli, list(args), input=input)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def fails(runner: CliRunner, *args: str) -> Result:
    r = runner.invoke(cli, list(args))
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and "Traceback" not in r.output
    return r


@pytest.fixture
def org(runner: CliRunner) -> str:
    return str(ok(runner, "org", "create", "--name", "Acme")["id"])


def test_emit_and_list(runner: CliRunner, org: str, tmp_path: Path) -> None:
    created = ok(runner, "audit", "emit", "--org", org, "--json", json.dumps(event()))
    assert created["object"] == "audit_log_event" and created["action"] == "invoice.paid"
    assert created["metadata"] == {"note": 'a,"b"\nc'} and created["organization_id"] == org
    path = tmp_path / "batch.json"
    path.write_text(json.dumps([event("invoice.voided"), event("user.signed_in")]))
    batch = ok(runner, "audit", "emit", "--org", org, "--file", str(path))
    assert [e["action"] for e in batch["data"]] == ["invoice.voided", "user.signed_in"]
    from_stdin = ok(runner, "audit", "emit", "--org", org, "--file", "-", input=json.dumps(event()))
    assert from_stdin["action"] == "invoice.paid"
    key = ["--idempotency-key", "k-1"]
    first = ok(runner, "audit", "emit", "--org", org, "--json", json.dumps(event()), *key)
    again = ok(runner, "audit", "emit", "--org", org, "--json", json.dumps(event()), *key)
    assert again == first

    listed = ok(runner, "audit", "list", "--org", org)
    assert listed["object"] == "list" and len(listed["data"]) == 6
    assert listed["data"][-1]["action"] == "organization.created"  # newest first
    paid = ok(runner, "audit", "list", "--org", org, "--action", "invoice.paid")
    assert [e["id"] for e in paid["data"]] == [first["id"], from_stdin["id"], created["id"]]
    both = ok(
        runner, "audit", "list", "--org", org, "--action", "invoice.paid",
        "--action", "invoice.voided", "--limit", "2",
    )  # fmt: skip
    assert len(both["data"]) == 2 and both["list_metadata"]["after"]
    rest = ok(
        runner, "audit", "list", "--org", org, "--action", "invoice.paid",
        "--action", "invoice.voided", "--after", both["list_metadata"]["after"],
    )  # fmt: skip
    assert len(rest["data"]) == 2
    assert ok(runner, "audit", "list", "--org", org, "--actor", "user_1", "--target", "inv_1")[
        "data"
    ] == [e for e in listed["data"] if e["actor"]["id"] == "user_1"]
    assert (
        len(ok(runner, "audit", "list", "--org", org, "--target-type", "organization")["data"]) == 1
    )
    assert ok(runner, "audit", "list", "--org", org, "--since", "2999-01-01")["data"] == []
    until = ok(runner, "audit", "list", "--org", org, "--until", "2026-11-28T10:00:01Z")
    assert {e["action"] for e in until["data"]} == {
        "invoice.paid",
        "invoice.voided",
        "user.signed_in",
    }


def test_emit_and_list_errors(runner: CliRunner, org: str) -> None:
    r = fails(runner, "audit", "emit", "--org", org, "--json", json.dumps(event("Bad")))
    assert "[invalid_request]" in r.stderr and "<target>.<verb>" in r.stderr
    r = fails(runner, "audit", "emit", "--org", "org_nope", "--json", json.dumps(event()))
    assert "[organization_not_found]" in r.stderr
    r = fails(runner, "audit", "emit", "--org", org, "--json", json.dumps([event(), event("bad")]))
    assert "event 1" in r.stderr
    assert ok(runner, "audit", "list", "--org", org, "--action", "invoice.paid")["data"] == []
    for args in (
        ["--json", "{nope"],
        [],
        ["--json", "{}", "--file", "-"],
        ["--json", "[]", "--idempotency-key", "k"],
    ):
        r = runner.invoke(cli, ["audit", "emit", "--org", org, *args])
        assert r.exit_code == 2, (args, r.output)
    emitted = ok(
        runner,
        "audit",
        "emit",
        "--org",
        org,
        "--json",
        json.dumps(event()),
        "--idempotency-key",
        "k",
    )
    assert emitted["action"] == "invoice.paid"
    r = fails(
        runner, "audit", "emit", "--org", org, "--json", json.dumps(event(version=2)),
        "--idempotency-key", "k",
    )  # fmt: skip
    assert "[idempotency_key_reused]" in r.stderr

    r = fails(runner, "audit", "list", "--org", "org_nobody")
    assert "[organization_not_found]" in r.stderr
    r = fails(runner, "audit", "list", "--org", org, "--since", "soon")
    assert "since must be an ISO-8601" in r.stderr
    r = fails(
        runner, "audit", "list", "--org", org, "--since", "2026-02-01", "--until", "2026-01-01"
    )
    assert "range_start must be before range_end" in r.stderr
    r = runner.invoke(cli, ["audit", "list", "--org", org, "--limit", "101"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["audit", "list", "--org", org, "--after", "a", "--before", "b"])
    assert r.exit_code == 2
    assert ok(runner, "audit", "list", "--org", "gate")["data"] == []


def test_export(runner: CliRunner, org: str, tmp_path: Path) -> None:
    ok(
        runner,
        "audit",
        "emit",
        "--org",
        org,
        "--json",
        json.dumps([event(), event("invoice.voided")]),
    )
    r = runner.invoke(cli, ["audit", "export", "--org", org, "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout, newline="")))
    assert [row["action"] for row in rows] == [
        "invoice.voided",
        "invoice.paid",
        "organization.created",
    ]
    assert json.loads(rows[1]["metadata"]) == {"note": 'a,"b"\nc'}

    r = runner.invoke(
        cli, ["audit", "export", "--org", org, "--format", "ndjson", "--action", "invoice.paid"]
    )
    assert r.exit_code == 0, r.output
    (line,) = r.stdout.splitlines()
    assert json.loads(line)["action"] == "invoice.paid"

    out = tmp_path / "export.ndjson"
    r = runner.invoke(
        cli, ["audit", "export", "--org", org, "--format", "ndjson", "--output", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and f"to {out}" in r.stderr
    assert [json.loads(x)["action"] for x in out.read_text().splitlines()] == [
        "invoice.voided", "invoice.paid", "organization.created",
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

    # errors come before anything is written: an existing file stays as it was
    r = fails(
        runner,
        "audit",
        "export",
        "--org",
        org,
        "--format",
        "csv",
        "--since",
        "x",
        "--output",
        str(out),
    )
    assert "since must be an ISO-8601" in r.stderr
    r = fails(
        runner, "audit", "export", "--org", "org_nobody", "--format", "csv", "--output", str(out)
    )
    assert "[organization_not_found]" in r.stderr
    assert len(out.read_text().splitlines()) == 3
    r = runner.invoke(cli, ["audit", "export", "--org", org, "--format", "xml"])
    assert r.exit_code == 2


def test_export_is_streamed_chunk_by_chunk(
    runner: CliRunner, org: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each chunk the service yields is written out before the next one is read."""
    from sso_gate.services import audit as audit_module

    ok(runner, "audit", "emit", "--org", org, "--json", json.dumps([event()] * 5))
    monkeypatch.setattr(audit_module, "_EXPORT_CHUNK", 2)
    out = tmp_path / "e.ndjson"
    partial = tmp_path / ".e.ndjson.partial"
    sizes: list[int] = []
    original = audit_module.AuditService._export

    async def spy(self: Any, conds: Any, fmt: Any) -> Any:
        async for chunk in original(self, conds, fmt):
            sizes.append(partial.stat().st_size if partial.exists() else -1)
            yield chunk

    monkeypatch.setattr(audit_module.AuditService, "_export", spy)
    r = runner.invoke(
        cli, ["audit", "export", "--org", org, "--format", "ndjson", "--output", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert len(sizes) == 3 and sizes[0] == 0 and sizes[0] < sizes[1] < sizes[2]
    assert len(out.read_text().splitlines()) == 6


def _gate(database_url: str) -> SSOGate:
    """A gate on the CLI's database, with its key (for tampering and ageing rows)."""
    return SSOGate(make_settings(database_url, secret_keys=(Secret(KEY),)))


def _tamper(database_url: str, org: str) -> str:
    async def go() -> str:
        gate = _gate(database_url)
        try:
            page = await gate.audit.list(org, actions=["invoice.paid"])
            victim = page.data[0].id
            async with gate._rt.transaction() as conn:
                await conn.execute(
                    sa.update(audit_events)
                    .where(audit_events.c.id == victim)
                    .values(metadata={"note": "changed"})
                )
            return victim
        finally:
            await gate.aclose()

    return asyncio.run(go())


def test_verify(runner: CliRunner, org: str, database_url: str) -> None:
    ok(
        runner,
        "audit",
        "emit",
        "--org",
        org,
        "--json",
        json.dumps([event(), event("invoice.voided")]),
    )
    r = runner.invoke(cli, ["audit", "verify", "--org", org])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["checked"] == 3
    assert "intact: 3 event(s)" in r.stderr

    victim = _tamper(database_url, org)
    r = runner.invoke(cli, ["audit", "verify", "--org", org])
    assert r.exit_code == 2, r.output
    report = json.loads(r.stdout)
    assert report["ok"] is False
    assert [(p["kind"], p["id"]) for p in report["problems"]] == [("edited", victim)]
    assert "TAMPERING DETECTED" in r.stderr and f"edited {victim} at position 2" in r.stderr

    r = fails(runner, "audit", "verify", "--org", "org_nobody")
    assert "[organization_not_found]" in r.stderr


def test_retention_and_purge(runner: CliRunner, org: str, database_url: str) -> None:
    assert ok(runner, "audit", "retention", "--org", org) == {
        "organization_id": org,
        "retention_days": None,
    }
    assert ok(runner, "audit", "retention", "--org", org, "--days", "30")["retention_days"] == 30
    assert ok(runner, "audit", "retention", "--org", org)["retention_days"] == 30
    for bad in (["--days", "0"], ["--days", "36501"], ["--days", "30", "--unlimited"]):
        r = runner.invoke(cli, ["audit", "retention", "--org", org, *bad])
        assert r.exit_code == 2, bad
    r = fails(runner, "audit", "retention", "--org", "org_nope", "--days", "30")
    assert "[organization_not_found]" in r.stderr

    r = runner.invoke(cli, ["audit", "purge"])
    assert r.exit_code == 0 and r.output.strip() == "purged 0 audit event(s)"
    old = event(occurred_at="2020-01-01T00:00:00Z")
    ok(runner, "audit", "emit", "--org", org, "--json", json.dumps(old))

    async def age() -> None:  # written 31 days ago, as far as retention is concerned
        gate = _gate(database_url)
        t = audit_events
        async with gate._rt.transaction() as conn:
            for row in (await conn.execute(sa.select(t.c.id, t.c.created_at))).all():
                await conn.execute(
                    sa.update(t)
                    .where(t.c.id == row.id)
                    .values(created_at=row.created_at - timedelta(days=31))
                )
        await gate.aclose()

    asyncio.run(age())
    r = runner.invoke(cli, ["audit", "purge"])
    assert r.exit_code == 0 and r.output.strip() == "purged 3 audit event(s)"
    left = ok(runner, "audit", "list", "--org", org)["data"]
    assert [e["action"] for e in left] == ["audit_log.purged"]
    assert left[0]["metadata"]["deleted"] == 3
    r = runner.invoke(cli, ["audit", "verify", "--org", org])
    assert r.exit_code == 0, r.output
    assert ok(runner, "audit", "retention", "--org", org, "--unlimited")["retention_days"] is None
