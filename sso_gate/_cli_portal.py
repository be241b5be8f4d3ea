"""``sso-gate portal-link`` and ``sso-gate domain`` (DNS verification)."""

from __future__ import annotations

from typing import Any

import click

from sso_gate._cli_common import print_json, run
from sso_gate.services.portal import INTENTS

__all__ = ["portal_link", "domain_group"]


@click.command("portal-link")
@click.option("--org", "organization_id", required=True, help="organization id (org_…)")
@click.option("--intent", type=click.Choice(INTENTS), required=True)
@click.option("--return-url", default=None, help="where the IT admin goes when done")
def portal_link(organization_id: str, intent: str, return_url: str | None) -> None:
    """Print a single-use admin-portal link (valid 5 minutes) for a customer's IT admin."""

    async def go(gate: Any) -> Any:
        link = await gate.portal.create_link(organization_id, intent, return_url=return_url)
        return link.to_dict()

    data = run(go)
    print_json(data)
    click.echo("send this link to the IT admin; it works once, within 5 minutes", err=True)


@click.group("domain")
def domain_group() -> None:
    """Verify an organization's email domains through DNS."""


@domain_group.command("add")
@click.option("--org", "organization_id", required=True)
@click.argument("domain")
def domain_add(organization_id: str, domain: str) -> None:
    """Add a domain to verify; prints the TXT record to publish."""

    async def go(gate: Any) -> Any:
        return (await gate.domains.add(organization_id, domain)).to_dict()

    data = run(go)
    print_json(data)
    click.echo(
        f"publish a TXT record at {data['domain']}: {data['verification_txt_record']}", err=True
    )


@domain_group.command("verify")
@click.option("--org", "organization_id", required=True)
@click.argument("domain")
def domain_verify(organization_id: str, domain: str) -> None:
    """Check the TXT record now (exit status 2 when the domain is not verified)."""

    async def go(gate: Any) -> Any:
        return (await gate.domains.verify(organization_id, domain)).to_dict()

    data = run(go)
    print_json(data)
    if data["state"] != "verified":
        raise SystemExit(2)


@domain_group.command("require-verified")
@click.option("--org", "organization_id", required=True)
@click.option("--off", is_flag=True, help="route every listed domain again")
def domain_require_verified(organization_id: str, off: bool) -> None:
    """Apply SSO routing only to the organization's verified domains."""

    async def go(gate: Any) -> Any:
        return (await gate.domains.set_require_verified(organization_id, not off)).to_dict()

    print_json(run(go))
