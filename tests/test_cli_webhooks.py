"""`sso-gate webhook …` and `sso-gate events …` (nothing here sends a delivery: no worker runs)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sso_gate.cli import cli

URL = "https://hooks.example.com/sso"


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", "cli-test-key-0123456789")
    monkeypatch.setenv("SSO_GATE_BASE_URL", "https://app.example.com")
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", database_url)
    # no DNS lookup of the test receiver's host name
    monkeypatch.setenv("SSO_GATE_ALLOW_PRIVATE_URLS", "true")
    r = CliRunner()
    assert r.invoke(cli, ["migrate"]).exit_code == 0
    return r


def ok(runner: CliRunner, *args: str) -> Any:
    r = runner.invoke(cli, list(args))
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def fails(runner: CliRunner, *args: str) -> Result:
    r = runner.invoke(cli, list(args))
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and "Traceback" not in r.output
    return r


def test_webhook_endpoint_commands(runner: CliRunner) -> None:
    r = runner.invoke(
        cli,
        [
            "webhook",
            "create",
            "--url",
            URL,
            "--event",
            "dsync.*",
            "--event",
            "organization.created",
            "--description",
            "ops",
        ],
    )
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["events"] == ["dsync.*", "organization.created"]
    assert created["description"] == "ops" and created["enabled"] is True
    assert "shown only this once" in r.stderr and secret not in r.stderr
    eid = created["id"]

    outputs = []
    listed = ok(runner, "webhook", "list")
    assert [e["id"] for e in listed["data"]] == [eid]
    got = ok(runner, "webhook", "get", eid)
    assert got["url"] == URL and "secret" not in got
    updated = ok(runner, "webhook", "update", eid, "--event", "organization.*", "--url", URL + "/2")
    assert updated["events"] == ["organization.*"] and updated["url"] == URL + "/2"
    disabled = ok(runner, "webhook", "disable", eid)
    assert disabled["enabled"] is False and disabled["state"] == "disabled"
    enabled = ok(runner, "webhook", "enable", eid)
    assert enabled["enabled"] is True
    outputs += [listed, got, updated, disabled, enabled]

    r = runner.invoke(cli, ["webhook", "rotate-secret", eid, "--grace-seconds", "0"])
    assert r.exit_code == 0, r.output
    rotated = json.loads(r.stdout)
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
    assert rotated["secret_rotating_until"] is None and "shown only this once" in r.stderr
    rotated_grace = ok(runner, "webhook", "rotate-secret", eid)
    assert rotated_grace["secret_rotating_until"] is not None
    outputs.append(ok(runner, "webhook", "get", eid))
    for out in outputs:
        text = json.dumps(out)
        assert secret not in text and rotated["secret"] not in text
        assert rotated_grace["secret"] not in text

    r = runner.invoke(cli, ["webhook", "rotate-secret", eid, "--grace-seconds", "-1"])
    assert r.exit_code == 2 and "--grace-seconds" in r.output
    r = runner.invoke(cli, ["webhook", "update", eid])
    assert r.exit_code == 2 and "give --url, --event or --description" in r.output

    r = runner.invoke(cli, ["webhook", "delete", eid])
    assert r.exit_code == 0 and f"deleted {eid}" in r.output
    r = fails(runner, "webhook", "get", eid)
    assert "not found" in r.stderr and "[webhook_endpoint_not_found]" in r.stderr


def test_webhook_create_errors(runner: CliRunner) -> None:
    r = fails(runner, "webhook", "create", "--url", "ftp://hooks.example.com/", "--event", "*")
    assert "[invalid_request]" in r.stderr
    r = fails(runner, "webhook", "create", "--url", URL, "--event", "dsync.user.exploded")
    assert "dsync.user.exploded" in r.stderr and "[unknown_event]" in r.stderr
    r = fails(runner, "webhook", "create", "--url", URL, "--event", "*", "--org", "org_nope")
    assert "[organization_not_found]" in r.stderr
    r = runner.invoke(cli, ["webhook", "create", "--url", URL])
    assert r.exit_code == 2 and "--event" in r.output
    assert ok(runner, "webhook", "list")["data"] == []


def test_plain_http_refused_in_production(runner: CliRunner) -> None:
    r = fails(runner, "webhook", "create", "--url", "http://hooks.example.com/", "--event", "*")
    assert "[https_required]" in r.stderr


def test_events_deliveries_and_redelivery(runner: CliRunner) -> None:
    eid = ok(runner, "webhook", "create", "--url", URL, "--event", "organization.created")["id"]
    orgs = [ok(runner, "org", "create", "--name", name)["id"] for name in ("Acme", "Initech")]

    feed = ok(runner, "events", "list")
    assert [e["event"] for e in feed["data"]] == ["organization.created"] * 2
    assert [e["organization_id"] for e in feed["data"]] == orgs
    assert feed["list_metadata"] == {"after": feed["data"][-1]["id"]}
    first = ok(runner, "events", "list", "--limit", "1", "--event", "organization.created")
    assert [e["id"] for e in first["data"]] == [feed["data"][0]["id"]]
    rest = ok(runner, "events", "list", "--after", first["list_metadata"]["after"])
    assert [e["id"] for e in rest["data"]] == [feed["data"][1]["id"]]
    assert ok(runner, "events", "list", "--org", orgs[1])["data"] == rest["data"]
    assert ok(runner, "events", "list", "--range-start", "2999-01-01")["data"] == []
    event = ok(runner, "events", "get", feed["data"][0]["id"])
    assert event == feed["data"][0]

    r = fails(runner, "events", "list", "--after", "event_unknown")
    assert "[invalid_cursor]" in r.stderr and "retention" in r.stderr
    r = fails(runner, "events", "list", "--event", "nope")
    assert "unknown event name" in r.stderr
    r = fails(runner, "events", "list", "--range-start", "soon")
    assert "range_start must be an ISO-8601" in r.stderr
    fails(runner, "events", "get", "event_nope")

    # the feed fanned the events out to the endpoint; no worker runs here, so they wait
    pending = ok(runner, "webhook", "deliveries", eid, "--status", "pending")
    assert len(pending["data"]) == 2 and pending["data"][0]["object"] == "webhook_delivery"
    assert ok(runner, "webhook", "deliveries", eid, "--status", "succeeded")["data"] == []
    one = ok(runner, "webhook", "deliveries", eid, "--event-id", feed["data"][0]["id"])
    assert len(one["data"]) == 1
    assert ok(runner, "webhook", "attempts", eid)["data"] == []
    delivery_id = one["data"][0]["id"]
    assert ok(runner, "webhook", "attempts", eid, "--delivery", delivery_id)["data"] == []

    assert ok(runner, "webhook", "redeliver", eid, "--event-id", feed["data"][0]["id"]) == {
        "queued": 1
    }
    assert ok(runner, "webhook", "redeliver", eid, "--since", "2000-01-01T00:00:00Z") == {
        "queued": 2
    }
    assert ok(runner, "webhook", "redeliver", eid, "--until", "2000-01-01") == {"queued": 0}
    r = runner.invoke(cli, ["webhook", "redeliver", eid])
    assert r.exit_code == 2 and "--event-id" in r.output
    r = runner.invoke(
        cli, ["webhook", "redeliver", eid, "--event-id", "e", "--since", "2000-01-01"]
    )
    assert r.exit_code == 2
    r = fails(runner, "webhook", "redeliver", eid, "--since", "last week")
    assert "since must be an ISO-8601" in r.stderr and "[invalid_request]" in r.stderr
    r = fails(runner, "webhook", "redeliver", eid, "--event-id", "event_nope")
    assert "[event_not_found]" in r.stderr


def test_events_purge(runner: CliRunner) -> None:
    ok(runner, "org", "create", "--name", "Acme")
    r = runner.invoke(cli, ["events", "purge"])
    assert r.exit_code == 0 and r.output.strip() == "purged 0 event(s)"
    r = runner.invoke(cli, ["events", "purge", "--older-than-days", "0"])
    assert r.exit_code == 0 and r.output.strip() == "purged 1 event(s)"
    assert ok(runner, "events", "list")["data"] == []
    r = runner.invoke(cli, ["events", "purge", "--older-than-days", "-3"])
    assert r.exit_code == 2
