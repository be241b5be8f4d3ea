"""`sso-gate audit stream …`, with a real HTTP receiver on loopback for the test send."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sso_gate.cli import cli

TOKEN = "siem-token-0123456789abcdef"


class Receiver(ThreadingHTTPServer):
    status = 200
    bodies: list[tuple[str, dict[str, Any]]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ingest"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.bodies.append((self.headers.get("authorization", ""), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.bodies = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", "cli-test-key-0123456789")
    monkeypatch.setenv("SSO_GATE_BASE_URL", "http://localhost:8000")
    monkeypatch.setenv("SSO_GATE_ENVIRONMENT", "development")  # plain http to the receiver
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", database_url)
    monkeypatch.setenv("SSO_GATE_ALLOW_PRIVATE_URLS", "true")
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


def test_stream_commands(runner: CliRunner, receiver: Receiver, tmp_path: Path) -> None:
    org = ok(runner, "org", "create", "--name", "Acme")["id"]
    config = tmp_path / "siem.json"
    config.write_text(json.dumps({"url": receiver.url, "token": TOKEN}))
    created = ok(
        runner, "audit", "stream", "create", "--org", org, "--type", "https",
        "--config-file", str(config), "--name", "SIEM",
    )  # fmt: skip
    sid = created["id"]
    assert created["object"] == "audit_log_stream" and created["name"] == "SIEM"
    assert created["config"] == {"url": receiver.url}
    assert created["secret_hints"] == {"token": TOKEN[-4:]}

    tested = ok(runner, "audit", "stream", "test", sid)
    assert tested["success"] is True and tested["status_code"] == 200
    ((auth, body),) = receiver.bodies
    assert auth == f"Bearer {TOKEN}" and body["events"][0]["action"] == "audit_stream.tested"
    receiver.status = 503
    r = fails(runner, "audit", "stream", "test", sid)
    assert json.loads(r.stdout)["success"] is False and "test send failed" in r.stderr

    listed = ok(runner, "audit", "stream", "list", "--org", org)
    assert [s["id"] for s in listed["data"]] == [sid]
    updated = ok(
        runner, "audit", "stream", "update", sid, "--disable", "--name", "Off",
        "--config", '{"batch_size": 10}',
    )  # fmt: skip
    assert updated["enabled"] is False and updated["name"] == "Off"
    assert updated["config"] == {"url": receiver.url, "batch_size": 10}
    assert updated["secret_hints"] == {"token": TOKEN[-4:]}
    assert ok(runner, "audit", "stream", "update", sid, "--enable", "--cursor", "0")["enabled"]
    got = ok(runner, "audit", "stream", "get", sid)
    assert got["cursor"] == 0 and got["state"] == "active"
    outputs = json.dumps([created, tested, listed, updated, got])
    assert TOKEN not in outputs

    r = runner.invoke(cli, ["audit", "stream", "delete", sid])
    assert r.exit_code == 0 and f"deleted {sid}" in r.output
    r = fails(runner, "audit", "stream", "get", sid)
    assert "[audit_stream_not_found]" in r.stderr


def test_stream_errors(runner: CliRunner) -> None:
    org = ok(runner, "org", "create", "--name", "Acme")["id"]
    base = ["audit", "stream", "create", "--org", org, "--type"]
    r = fails(runner, *base, "splunk_hec", "--config", '{"url": "https://splunk.example.com"}')
    assert "config.token is required" in r.stderr
    r = fails(runner, *base, "https", "--config", '{"url": "https://x.example", "nope": 1}')
    assert "unknown https setting 'nope'" in r.stderr
    r = fails(runner, "audit", "stream", "create", "--org", "org_nope", "--type", "https",
              "--config", '{"url": "https://x.example"}')  # fmt: skip
    assert "[organization_not_found]" in r.stderr
    for args in (
        [*base, "kafka", "--config", "{}"],
        [*base, "https"],
        [*base, "https", "--config", "{nope"],
        [*base, "https", "--config", "[]"],
        [*base, "https", "--config", "{}", "--config-file", "-"],
        ["audit", "stream", "update", "audit_stream_x"],
        ["audit", "stream", "update", "audit_stream_x", "--cursor", "-1"],
    ):
        r = runner.invoke(cli, args)
        assert r.exit_code == 2, (args, r.output)
    r = fails(runner, "audit", "stream", "list", "--org", "org_nope")
    assert "[organization_not_found]" in r.stderr
    r = fails(runner, "audit", "stream", "test", "audit_stream_x")
    assert "[audit_stream_not_found]" in r.stderr
    assert ok(runner, "audit", "stream", "list", "--org", org)["data"] == []
