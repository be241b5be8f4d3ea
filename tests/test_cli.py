"""The `sso-gate` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sso_gate.cli import cli


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SSO_GATE_SECRET_KEYS", "cli-test-key-0123456789")
    monkeypatch.setenv("SSO_GATE_BASE_URL", "https://app.example.com")
    monkeypatch.setenv("SSO_GATE_DATABASE_URL", database_url)
    return CliRunner()


def test_migrate_org_and_connection(runner: CliRunner) -> None:
    r = runner.invoke(cli, ["migrate"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        cli, ["org", "create", "--name", "Acme", "--domain", "acme.com", "--policy", "required"]
    )
    assert r.exit_code == 0, r.output
    org = json.loads(r.output)
    assert org["sso_policy"] == "required" and org["domains"][0]["domain"] == "acme.com"
    r = runner.invoke(
        cli,
        [
            "connection",
            "create-oidc",
            "--org",
            org["id"],
            "--issuer",
            "https://acme.okta.test",
            "--client-id",
            "cid",
        ],
        input="the-secret\n",
    )
    assert r.exit_code == 0, r.output
    conn = json.loads(r.output[r.output.index("{") :])
    assert conn["state"] == "active" and "the-secret" not in r.output.replace("Client secret: ", "")
    assert conn["oidc"]["redirect_uri"].startswith("https://app.example.com/sso-gate/sso/oidc/")
    r = runner.invoke(cli, ["connection", "deactivate", conn["id"]])
    assert json.loads(r.output)["state"] == "inactive"
    r = runner.invoke(cli, ["connection", "list", "--org", org["id"]])
    assert len(json.loads(r.output)["data"]) == 1
    r = runner.invoke(cli, ["org", "list"])
    assert [o["name"] for o in json.loads(r.output)["data"]] == ["Acme"]
    r = runner.invoke(cli, ["org", "update", org["id"], "--policy", "optional"])
    assert json.loads(r.output)["sso_policy"] == "optional"


def test_errors_are_clean(runner: CliRunner) -> None:
    runner.invoke(cli, ["migrate"])
    r = runner.invoke(cli, ["org", "create", "--name", "X", "--domain", "gmail.com"])
    assert r.exit_code == 1 and "consumer email domain" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["org", "get", "org_missing"])
    assert r.exit_code == 1 and "not found" in r.output


def test_missing_settings_named(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSO_GATE_SECRET_KEYS")
    r = runner.invoke(cli, ["migrate"])
    assert r.exit_code != 0 and "SSO_GATE_SECRET_KEYS" in (r.output + str(r.exception))


def test_create_saml_connection(runner: CliRunner, tmp_path: Path) -> None:
    from tests.fakes.saml_idp import FakeSamlIdP

    runner.invoke(cli, ["migrate"])
    org = json.loads(
        runner.invoke(cli, ["org", "create", "--name", "Acme", "--domain", "acme.com"]).output
    )
    md = tmp_path / "idp.xml"
    md.write_text(FakeSamlIdP().metadata())
    r = runner.invoke(
        cli, ["connection", "create-saml", "--org", org["id"], "--metadata-file", str(md)]
    )
    assert r.exit_code == 0, r.output
    conn = json.loads(r.output)
    assert conn["saml"]["acs_url"].startswith("https://app.example.com/sso-gate/sso/saml/conn_")
