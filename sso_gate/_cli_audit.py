"""``sso-gate audit …``: record, query, export and verify the audit log; retention and purge."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, Any

import click

from sso_gate._audit_scope import check_audit_scope
from sso_gate._cli_audit_streams import stream_group
from sso_gate._cli_common import print_json, run
from sso_gate._time import parse_timestamp

__all__ = ["audit_group"]

_MAX_RETENTION_DAYS = 36500  # the bound of the REST API (routes_audit.MAX_RETENTION_DAYS)
_ORG_HELP = 'organization id ("gate" for the gate\'s own organization-less entries)'


@click.group("audit")
def audit_group() -> None:
    """The audit log: who did what, when and from where, per organization."""


def _filter_options(fn: Any) -> Any:
    """--action, --actor, --target, --target-type, --since, --until (shared by list/export)."""
    for decorator in reversed(
        [
            click.option("--action", "actions", multiple=True, help="repeat for several"),
            click.option("--actor", "actor_ids", multiple=True, help="actor id; repeatable"),
            click.option("--target", "target_ids", multiple=True, help="target id; repeatable"),
            click.option(
                "--target-type", "target_types", multiple=True, help="target type; repeatable"
            ),
            click.option("--since", help="occurred at or after this ISO-8601 time"),
            click.option("--until", help="occurred before this ISO-8601 time"),
        ]
    ):
        fn = decorator(fn)
    return fn


def _filters(
    actions: tuple[str, ...],
    actor_ids: tuple[str, ...],
    target_ids: tuple[str, ...],
    target_types: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> dict[str, Any]:
    return {
        "actions": list(actions) or None,
        "actor_ids": list(actor_ids) or None,
        "target_ids": list(target_ids) or None,
        "target_types": list(target_types) or None,
        "range_start": parse_timestamp(since, "since") if since else None,
        "range_end": parse_timestamp(until, "until") if until else None,
    }


@audit_group.command("emit")
@click.option("--org", "organization_id", required=True, help=_ORG_HELP)
@click.option("--json", "json_text", help="the event as JSON (a list records a batch)")
@click.option(
    "--file", "json_file", type=click.File("r"), help="read the JSON from a file ('-' = stdin)"
)
@click.option("--idempotency-key", help="a repeat within 24 h returns the first event")
def audit_emit(
    organization_id: str,
    json_text: str | None,
    json_file: IO[str] | None,
    idempotency_key: str | None,
) -> None:
    """Record an app event (WorkOS schema: action, occurred_at, actor, targets, context,
    metadata). A JSON list is recorded as one batch: all events or none."""
    if json_text is not None and json_file is None:
        text = json_text
    elif json_file is not None and json_text is None:
        text = json_file.read()
    else:
        raise click.UsageError("give the event with --json or --file")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"the event is not valid JSON: {exc}") from None
    if isinstance(data, list) and idempotency_key is not None:
        raise click.UsageError("--idempotency-key applies to one event, not to a batch")

    async def go(gate: Any) -> Any:
        if isinstance(data, list):
            stored = await gate.audit.emit_many(organization_id, data)
            return {"object": "list", "data": [e.to_dict() for e in stored]}
        event = await gate.audit.emit(organization_id, data, idempotency_key=idempotency_key)
        return event.to_dict()

    print_json(run(go))


@audit_group.command("list")
@click.option("--org", "organization_id", required=True, help=_ORG_HELP)
@_filter_options
@click.option("--limit", default=100, type=click.IntRange(1, 100), show_default=True)
@click.option("--after", help="list_metadata.after of the previous page (older events)")
@click.option("--before", help="list_metadata.before of a page (newer events)")
def audit_list(
    organization_id: str,
    limit: int,
    after: str | None,
    before: str | None,
    **filters: Any,
) -> None:
    """Events of an organization, newest first."""
    if after and before:
        raise click.UsageError("give --after or --before, not both")

    async def go(gate: Any) -> Any:
        args = _filters(**filters)
        org = await check_audit_scope(gate, organization_id)
        page = await gate.audit.list(org, limit=limit, after=after, before=before, **args)
        return page.to_dict()

    print_json(run(go))


@audit_group.command("export")
@click.option("--org", "organization_id", required=True, help=_ORG_HELP)
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "ndjson"]))
@_filter_options
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="write to this file (replaced only once the export is complete); default stdout",
)
def audit_export(organization_id: str, fmt: str, output: Path | None, **filters: Any) -> None:
    """Every matching event, newest first, as CSV or NDJSON, streamed in constant memory."""

    async def go(gate: Any) -> int:
        args = _filters(**filters)
        org = await check_audit_scope(gate, organization_id)
        chunks = await gate.audit.export(org, fmt, **args)  # validated: nothing written yet
        if output is None:
            out = sys.stdout.buffer
            total = 0
            async for chunk in chunks:
                out.write(chunk)
                out.flush()
                total += len(chunk)
            return total
        partial = output.with_name(f".{output.name}.partial")
        try:
            with partial.open("wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
                    f.flush()
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        return output.stat().st_size

    try:
        size = run(go)
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, without a second error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    if output is not None:
        click.echo(f"exported {size} bytes to {output}", err=True)


@audit_group.command("verify")
@click.option("--org", "organization_id", required=True, help=_ORG_HELP)
def audit_verify(organization_id: str) -> None:
    """Check the organization's hash chain. Exit status 0 when intact, 2 when rows were
    edited, deleted, inserted or reordered (each one is named)."""

    async def go(gate: Any) -> Any:
        org = await check_audit_scope(gate, organization_id)
        return (await gate.audit.verify(org)).to_dict()

    report = run(go)
    print_json(report)
    if report["ok"]:
        click.echo(f"audit log intact: {report['checked']} event(s) verified", err=True)
        return
    click.echo(f"TAMPERING DETECTED in the audit log of {report['organization_id']}:", err=True)
    for p in report["problems"]:
        where = f"position {p['seq']}" if p["seq"] is not None else "the chain"
        row = f" {p['id']}" if p["id"] else ""
        click.echo(f"  {p['kind']}{row} at {where}: {p['detail']}", err=True)
    if report["more_problems"]:
        click.echo(f"  … and {report['more_problems']} more", err=True)
    sys.exit(2)


@audit_group.command("retention")
@click.option("--org", "organization_id", required=True)
@click.option("--days", type=click.IntRange(1, _MAX_RETENTION_DAYS), help="keep this many days")
@click.option("--unlimited", is_flag=True, help="keep the audit log forever")
def audit_retention(organization_id: str, days: int | None, unlimited: bool) -> None:
    """Show the organization's audit log retention, or set it with --days or --unlimited."""
    if days is not None and unlimited:
        raise click.UsageError("give --days or --unlimited, not both")
    change = days is not None or unlimited

    async def go(gate: Any) -> Any:
        if change:
            await gate.audit.set_retention(organization_id, days)
        return {
            "organization_id": organization_id,
            "retention_days": await gate.audit.retention(organization_id),
        }

    print_json(run(go))


@audit_group.command("purge")
def audit_purge() -> None:
    """Delete events older than each organization's retention now (the worker also does it);
    a signed checkpoint keeps each chain verifiable and the purge is itself audited."""

    async def go(gate: Any) -> int:
        return int(await gate.audit.purge())

    click.echo(f"purged {run(go)} audit event(s)")


audit_group.add_command(stream_group)
