"""``sso-gate webhook …`` and ``sso-gate events …``: webhook endpoints and the Events feed."""

from __future__ import annotations

from typing import Any

import click

from sso_gate._cli_common import print_json, run
from sso_gate._time import parse_timestamp

__all__ = ["webhook_group", "events_group"]

_SECRET_NOTE = (
    'The "secret" above is shown only this once: store it where your receiver verifies '
    "signatures. (`sso-gate webhook rotate-secret` issues a new one.)"
)
_MAX_GRACE = 30 * 24 * 3600  # the bound of the REST API (routes_webhooks.MAX_GRACE_SECONDS)


@click.group("webhook")
def webhook_group() -> None:
    """Webhook endpoints: signed deliveries of events to your URLs."""


@webhook_group.command("create")
@click.option("--url", required=True, help="https URL that receives the deliveries")
@click.option(
    "--event",
    "events",
    multiple=True,
    required=True,
    help="event name or pattern (dsync.*, *); repeat for several",
)
@click.option("--org", "organization_id", help="only this organization's events")
@click.option("--description")
@click.option("--disabled", is_flag=True, help="create without delivering yet")
def webhook_create(
    url: str,
    events: tuple[str, ...],
    organization_id: str | None,
    description: str | None,
    disabled: bool,
) -> None:
    """Register an endpoint; prints it with its signing secret (shown this once)."""

    async def go(gate: Any) -> Any:
        endpoint, secret = await gate.webhooks.create(
            url,
            list(events),
            organization_id=organization_id,
            description=description,
            enabled=not disabled,
        )
        return {**endpoint.to_dict(), "secret": secret}

    print_json(run(go))
    click.echo(_SECRET_NOTE, err=True)


@webhook_group.command("list")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def webhook_list(limit: int) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.webhooks.list(limit=limit)).to_dict()

    print_json(run(go))


@webhook_group.command("get")
@click.argument("endpoint_id")
def webhook_get(endpoint_id: str) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.webhooks.get(endpoint_id)).to_dict()

    print_json(run(go))


@webhook_group.command("update")
@click.argument("endpoint_id")
@click.option("--url")
@click.option("--event", "events", multiple=True, help="replaces the subscribed events")
@click.option("--description")
def webhook_update(
    endpoint_id: str, url: str | None, events: tuple[str, ...], description: str | None
) -> None:
    """Change an endpoint's URL, subscribed events or description."""
    changes: dict[str, Any] = {}
    if url is not None:
        changes["url"] = url
    if events:
        changes["events"] = list(events)
    if description is not None:
        changes["description"] = description
    if not changes:
        raise click.UsageError("give --url, --event or --description")

    async def go(gate: Any) -> Any:
        return (await gate.webhooks.update(endpoint_id, changes)).to_dict()

    print_json(run(go))


def _state_command(name: str, enabled: bool, doc: str) -> None:
    @webhook_group.command(name, help=doc)
    @click.argument("endpoint_id")
    def cmd(endpoint_id: str) -> None:
        async def go(gate: Any) -> Any:
            return (await gate.webhooks.set_enabled(endpoint_id, enabled)).to_dict()

        print_json(run(go))


_state_command("enable", True, "Enable an endpoint: failures reset, pending retries run now.")
_state_command("disable", False, "Disable an endpoint: nothing is delivered to it.")


@webhook_group.command("rotate-secret")
@click.argument("endpoint_id")
@click.option(
    "--grace-seconds",
    type=click.IntRange(0, _MAX_GRACE),
    help="how long the old secret keeps signing too (default SSO_GATE_WEBHOOK_SECRET_GRACE)",
)
def webhook_rotate_secret(endpoint_id: str, grace_seconds: int | None) -> None:
    """A new signing secret (shown this once); the old one signs beside it for a grace period."""

    async def go(gate: Any) -> Any:
        secret = await gate.webhooks.rotate_secret(endpoint_id, grace=grace_seconds)
        return {**(await gate.webhooks.get(endpoint_id)).to_dict(), "secret": secret}

    print_json(run(go))
    click.echo(_SECRET_NOTE, err=True)


@webhook_group.command("delete")
@click.argument("endpoint_id")
def webhook_delete(endpoint_id: str) -> None:
    async def go(gate: Any) -> None:
        await gate.webhooks.delete(endpoint_id)

    run(go)
    click.echo(f"deleted {endpoint_id}")


@webhook_group.command("redeliver")
@click.argument("endpoint_id")
@click.option("--event-id", help="one event")
@click.option("--since", help="every subscribed event from this ISO-8601 time …")
@click.option("--until", help="… to this one")
def webhook_redeliver(
    endpoint_id: str, event_id: str | None, since: str | None, until: str | None
) -> None:
    """Queue one event (--event-id) or a time range (--since/--until) for delivery now."""
    if (event_id is None) == (since is None and until is None):
        raise click.UsageError("give --event-id, or --since and/or --until")

    async def go(gate: Any) -> Any:
        return {
            "queued": await gate.webhooks.redeliver(
                endpoint_id,
                event_id=event_id,
                since=parse_timestamp(since, "since") if since else None,
                until=parse_timestamp(until, "until") if until else None,
            )
        }

    print_json(run(go))


@webhook_group.command("deliveries")
@click.argument("endpoint_id")
@click.option("--status", type=click.Choice(["pending", "succeeded", "failed"]))
@click.option("--event-id")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def webhook_deliveries(
    endpoint_id: str, status: str | None, event_id: str | None, limit: int
) -> None:
    """An endpoint's deliveries, newest first."""

    async def go(gate: Any) -> Any:
        page = await gate.webhooks.list_deliveries(
            endpoint_id, status=status, event_id=event_id, limit=limit
        )
        return page.to_dict()

    print_json(run(go))


@webhook_group.command("attempts")
@click.argument("endpoint_id")
@click.option("--delivery", "delivery_id", help="only this delivery's attempts")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def webhook_attempts(endpoint_id: str, delivery_id: str | None, limit: int) -> None:
    """An endpoint's HTTP attempts (status, latency, response excerpt), newest first."""

    async def go(gate: Any) -> Any:
        page = await gate.webhooks.list_attempts(endpoint_id, delivery_id=delivery_id, limit=limit)
        return page.to_dict()

    print_json(run(go))


@click.group("events")
def events_group() -> None:
    """The event feed (what webhooks deliver) and its retention."""


@events_group.command("list")
@click.option("--after", help="id of the last event already seen (list_metadata.after)")
@click.option("--event", "events", multiple=True, help="only these event names; repeatable")
@click.option("--org", "organization_id")
@click.option("--range-start", help="ISO-8601, inclusive")
@click.option("--range-end", help="ISO-8601, exclusive")
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def events_list(
    after: str | None,
    events: tuple[str, ...],
    organization_id: str | None,
    range_start: str | None,
    range_end: str | None,
    limit: int,
) -> None:
    """Events in commit order, oldest first; continue with --after list_metadata.after."""

    async def go(gate: Any) -> Any:
        page = await gate.events.list(
            after=after,
            events=list(events) or None,
            organization_id=organization_id,
            range_start=parse_timestamp(range_start, "range_start") if range_start else None,
            range_end=parse_timestamp(range_end, "range_end") if range_end else None,
            limit=limit,
        )
        return {
            "object": "list",
            "data": [e.to_dict() for e in page.data],
            "list_metadata": {"after": page.after},
        }

    print_json(run(go))


@events_group.command("get")
@click.argument("event_id")
def events_get(event_id: str) -> None:
    async def go(gate: Any) -> Any:
        return (await gate.events.get(event_id)).to_dict()

    print_json(run(go))


@events_group.command("purge")
@click.option(
    "--older-than-days",
    type=click.IntRange(0, 36500),
    help="default SSO_GATE_EVENT_RETENTION_DAYS (30)",
)
def events_purge(older_than_days: int | None) -> None:
    """Delete events (with their deliveries and attempts) older than the retention period."""

    async def go(gate: Any) -> int:
        return int(await gate.events.purge(older_than_days=older_than_days))

    click.echo(f"purged {run(go)} event(s)")
