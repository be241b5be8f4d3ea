"""The ``sso-gate`` command: ``demo``, ``migrate``, ``worker``, ``org``, ``connection``,
``directory``, ``webhook``, ``events``, ``audit``, ``keys``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from sso_gate._cli_audit import audit_group
from sso_gate._cli_common import print_json as _print
from sso_gate._cli_common import run as _run
from sso_gate._cli_portal import domain_group, portal_link
from sso_gate._cli_webhooks import events_group, webhook_group
from sso_gate.exceptions import SSOGateError

__all__ = ["main", "cli"]


@click.group()
@click.version_option(package_name="sso-gate")
def cli() -> None:
    """sso_gate: enterprise SSO for ASGI apps. Configured by SSO_GATE_* environment variables."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--database-url", default="sqlite:///./sso_gate_demo.db", show_default=True)
def demo(host: str, port: int, database_url: str) -> None:
    """Run the demo app: password login + SSO through a built-in dev IdP, on localhost."""
    import uvicorn

    from sso_gate.demo import build_demo, seed

    base = f"http://localhost:{port}"
    d = build_demo(base_url=base, database_url=database_url)
    asyncio.run(seed(d))
    click.echo(
        f"""
sso_gate demo running on {base}

  1. Open {base}/login
  2. Sign in as alice@acme.test  -> Acme requires SSO: you go to the dev IdP and back
  3. Sign in as erin@initech.test -> Initech requires SSO over SAML (signed AuthnRequest)
  4. Sign in as bob@example.com / password -> ordinary password login, untouched
  5. {base}/sso-gate/sso/me shows the SSO session

Management API: curl -H 'Authorization: Bearer {d.admin_api_key}' {base}/sso-gate/api/organizations
"""
    )
    uvicorn.run(d.app, host=host, port=port, log_level="warning")


@cli.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Serve this worker's Prometheus metrics (webhook deliveries) on this port.",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Address for --metrics-port."
)
def worker(once: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Deliver webhooks (and sequence and purge events) until stopped (SIGINT/SIGTERM).

    Run any number of these on PostgreSQL; on SQLite a single worker delivers and others
    stand by. Set SSO_GATE_WORKER=off in the app's processes when workers run separately.
    """
    import logging
    import signal

    from sso_gate.gate import SSOGate

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def go() -> None:
        gate = SSOGate.from_env()
        server = None
        try:
            if metrics_port is not None:
                from prometheus_client import start_http_server

                # no authentication here: bind it to a private address
                server, _ = start_http_server(
                    metrics_port, metrics_host, registry=gate.metrics.registry
                )
                click.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics", err=True)
            if once:
                await gate.worker.drain()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            click.echo(f"sso-gate worker {gate.worker.name} running", err=True)
            await gate.run_worker(stop)
        finally:
            if server is not None:
                server.shutdown()
            await gate.aclose()

    try:
        asyncio.run(go())
    except SSOGateError as exc:
        click.echo(f"error: {exc.message} [{exc.code}]", err=True)
        sys.exit(1)


@cli.command()
def migrate() -> None:
    """Create or upgrade the database schema at SSO_GATE_DATABASE_URL."""

    async def go(gate: Any) -> None:
        await gate.migrate()

    _run(go)
    click.echo("database is up to date")


@cli.group()
def org() -> None:
    """Organizations."""


@org.command("create")
@click.option("--name", required=True)
@click.option("--domain", "domains", multiple=True, help="repeat for several domains")
@click.option("--policy", type=click.Choice(["required", "optional"]), default="optional")
@click.option("--external-id")
def org_create(name: str, domains: tuple[str, ...], policy: str, external_id: str | None) -> None:
    async def go(gate: Any) -> Any:
        o = await gate.organizations.create(
            name, domains=list(domains), sso_policy=policy, external_id=external_id
        )
        return o.to_dict()

    _print(_run(go))


@org.command("list")
@click.option("--domain")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def org_list(domain: str | None, limit: int) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.organizations.list(domain=domain, limit=limit)).to_dict()

    _print(_run(go))


@org.command("get")
@click.argument("organization_id")
def org_get(organization_id: str) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.organizations.get(organization_id)).to_dict()

    _print(_run(go))


@org.command("update")
@click.argument("organization_id")
@click.option("--name")
@click.option("--policy", type=click.Choice(["required", "optional"]))
def org_update(organization_id: str, name: str | None, policy: str | None) -> None:
    async def go(gate: Any) -> Any:
        o = await gate.organizations.update(organization_id, name=name, sso_policy=policy)
        return o.to_dict()

    _print(_run(go))


@org.command("delete")
@click.argument("organization_id")
def org_delete(organization_id: str) -> None:
    async def go(gate: Any) -> None:
        await gate.organizations.delete(organization_id)

    _run(go)
    click.echo(f"deleted {organization_id}")


@cli.group()
def connection() -> None:
    """SSO connections."""


@connection.command("create-oidc")
@click.option("--org", "organization_id", required=True)
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option(
    "--client-secret",
    envvar="SSO_GATE_OIDC_CLIENT_SECRET",
    prompt=True,
    hide_input=True,
    help="or set SSO_GATE_OIDC_CLIENT_SECRET; prompted for if missing",
)
@click.option("--name")
@click.option("--type", "connection_type", default="GenericOIDC", show_default=True)
@click.option("--inactive", is_flag=True, help="create without activating")
def connection_create_oidc(
    organization_id: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    name: str | None,
    connection_type: str,
    inactive: bool,
) -> None:
    async def go(gate: Any) -> Any:
        c = await gate.connections.create_oidc(
            organization_id,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
            name=name,
            connection_type=connection_type,
            state="inactive" if inactive else "active",
        )
        return gate.connections.public_dict(c)

    _print(_run(go))


@connection.command("create-saml")
@click.option("--org", "organization_id", required=True)
@click.option("--metadata-file", type=click.File("r"), help="IdP metadata XML file ('-' = stdin)")
@click.option("--metadata-url", help="IdP metadata URL (refreshed on a schedule)")
@click.option("--entity-id", "idp_entity_id", help="IdP entity ID (with --sso-url and --cert)")
@click.option("--sso-url", help="IdP SingleSignOnService URL")
@click.option("--cert", "certs", multiple=True, type=click.File("r"), help="IdP signing cert PEM")
@click.option("--name")
@click.option("--type", "connection_type", default="GenericSAML", show_default=True)
@click.option("--sign-requests", is_flag=True)
@click.option("--encrypt-assertions", is_flag=True)
@click.option("--allow-idp-initiated", is_flag=True)
def connection_create_saml(
    organization_id: str,
    metadata_file: Any,
    metadata_url: str | None,
    idp_entity_id: str | None,
    sso_url: str | None,
    certs: tuple[Any, ...],
    name: str | None,
    connection_type: str,
    sign_requests: bool,
    encrypt_assertions: bool,
    allow_idp_initiated: bool,
) -> None:
    """Create a SAML connection; prints the ACS URL and SP entity ID to give the IdP."""
    xml = metadata_file.read() if metadata_file else None
    pems = [f.read() for f in certs]

    async def go(gate: Any) -> Any:
        c = await gate.connections.create_saml(
            organization_id,
            metadata_xml=xml,
            metadata_url=metadata_url,
            idp_entity_id=idp_entity_id,
            sso_url=sso_url,
            certificates=pems,
            name=name,
            connection_type=connection_type,
            sign_requests=sign_requests,
            encrypt_assertions=encrypt_assertions,
            allow_idp_initiated=allow_idp_initiated,
        )
        return gate.connections.public_dict(c)

    _print(_run(go))


@connection.command("refresh-metadata")
@click.argument("connection_id")
def connection_refresh_metadata(connection_id: str) -> None:
    """Fetch a SAML connection's metadata URL again."""

    async def go(gate: Any) -> Any:
        return gate.connections.public_dict(
            await gate.connections.refresh_saml_metadata(connection_id)
        )

    _print(_run(go))


@connection.command("check-certificates")
def connection_check_certificates() -> None:
    """Report SAML IdP certificates expiring within 30 days (run daily, e.g. from cron)."""

    async def go(gate: Any) -> int:
        return int(await gate.connections.check_saml_certificates())

    click.echo(f"{_run(go)} renewal event(s) written")


@connection.command("list")
@click.option("--org", "organization_id")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def connection_list(organization_id: str | None, limit: int) -> None:
    async def go(gate: Any) -> Any:
        page = await gate.connections.list(organization_id=organization_id, limit=limit)
        return page.to_dict()

    _print(_run(go))


def _state_command(name: str, method: str) -> None:
    @connection.command(name)
    @click.argument("connection_id")
    def cmd(connection_id: str) -> None:
        async def go(gate: Any) -> Any:
            return (await getattr(gate.connections, method)(connection_id)).to_dict()

        _print(_run(go))

    cmd.__doc__ = f"{name.capitalize()} a connection."


_state_command("activate", "activate")
_state_command("deactivate", "deactivate")


@connection.command("delete")
@click.argument("connection_id")
def connection_delete(connection_id: str) -> None:
    async def go(gate: Any) -> None:
        await gate.connections.delete(connection_id)

    _run(go)
    click.echo(f"deleted {connection_id}")


@cli.group()
def directory() -> None:
    """SCIM directories."""


@directory.command("create")
@click.option("--org", "organization_id", required=True)
@click.option("--name")
@click.option("--type", "dtype", default="generic scim v2.0", show_default=True)
def directory_create(organization_id: str, name: str | None, dtype: str) -> None:
    """Create a directory; prints the SCIM base URL and the bearer token (shown once)."""

    async def go(gate: Any) -> Any:
        d, token = await gate.directories.create(organization_id, name=name, type=dtype)
        return {**d.to_dict(gate.directories.scim_base_url(d.id)), "bearer_token": token}

    _print(_run(go))


@directory.command("list")
@click.option("--org", "organization_id")
def directory_list(organization_id: str | None) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.directories.list(organization_id=organization_id, limit=100)).to_dict()

    _print(_run(go))


@directory.command("rotate-token")
@click.argument("directory_id")
def directory_rotate(directory_id: str) -> None:
    """New bearer token; the old one keeps working for 24 hours."""

    async def go(gate: Any) -> Any:
        return {"bearer_token": await gate.directories.rotate_token(directory_id)}

    _print(_run(go))


@directory.command("users")
@click.argument("directory_id")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def directory_users_cmd(directory_id: str, limit: int) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.directories.list_users(directory_id=directory_id, limit=limit)).to_dict()

    _print(_run(go))


@cli.group("keys")
def keys_group() -> None:
    """SSO_GATE_SECRET_KEYS rotation."""


@keys_group.command("reseal")
def keys_reseal() -> None:
    """Re-encrypt stored secrets and re-sign audit chain heads and checkpoints with the first
    key of SSO_GATE_SECRET_KEYS, so older keys can be removed. Exit status 2 when values sealed
    by a key no longer configured, or signatures no key verifies, were found (listed)."""

    async def go(gate: Any) -> Any:
        return (await gate.keys.reseal()).to_dict()

    report = _run(go)
    _print(report)
    if not report["ok"]:
        sys.exit(2)


cli.add_command(webhook_group)
cli.add_command(events_group)
cli.add_command(audit_group)
cli.add_command(portal_link)
cli.add_command(domain_group)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
