"""``sso-gate audit stream …``: push an organization's audit log to its SIEM."""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import click

from sso_gate._audit_scope import check_audit_scope
from sso_gate._cli_common import print_json, run

__all__ = ["stream_group"]

_TYPES = ["https", "splunk_hec", "datadog", "syslog"]
_CONFIG_HELP = (
    "settings and secrets as a JSON object, e.g. "
    '\'{"url": "https://splunk:8088", "token": "…"}\' (prefer --config-file for secrets)'
)


@click.group("stream")
def stream_group() -> None:
    """Log streams: the audit log pushed to https, Splunk HEC, Datadog or syslog."""


def _config(text: str | None, file: IO[str] | None, required: bool) -> dict[str, Any] | None:
    if text is not None and file is not None:
        raise click.UsageError("give --config or --config-file, not both")
    raw = text if text is not None else (file.read() if file is not None else None)
    if raw is None:
        if required:
            raise click.UsageError("give the destination with --config or --config-file")
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise click.UsageError(f"the config is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.UsageError("the config must be a JSON object")
    return data


@stream_group.command("create")
@click.option("--org", "organization_id", required=True, help='organization id (or "gate")')
@click.option("--type", "type_", required=True, type=click.Choice(_TYPES))
@click.option("--config", "config_text", help=_CONFIG_HELP)
@click.option(
    "--config-file", type=click.File("r"), help="the config JSON from a file ('-' = stdin)"
)
@click.option("--name")
@click.option("--disabled", is_flag=True, help="create without delivering yet")
@click.option(
    "--from-beginning", is_flag=True, help="send the retained log first (default: from now on)"
)
def stream_create(
    organization_id: str,
    type_: str,
    config_text: str | None,
    config_file: IO[str] | None,
    name: str | None,
    disabled: bool,
    from_beginning: bool,
) -> None:
    """Add a stream; prints it (secrets shown only as their last 4 characters)."""
    config = _config(config_text, config_file, required=True)

    async def go(gate: Any) -> Any:
        stream = await gate.audit_streams.create(
            organization_id,
            type_,
            config,
            name=name,
            enabled=not disabled,
            start="beginning" if from_beginning else "now",
        )
        return stream.to_dict()

    print_json(run(go))


@stream_group.command("list")
@click.option("--org", "organization_id", required=True)
@click.option("--limit", default=100, type=click.IntRange(1, 100))
def stream_list(organization_id: str, limit: int) -> None:
    async def go(gate: Any) -> Any:
        org = await check_audit_scope(gate, organization_id)
        return (await gate.audit_streams.list(org, limit=limit)).to_dict()

    print_json(run(go))


@stream_group.command("get")
@click.argument("stream_id")
def stream_get(stream_id: str) -> None:
    """A stream with its state, cursor, lag and last error."""

    async def go(gate: Any) -> Any:
        return (await gate.audit_streams.get(stream_id)).to_dict()

    print_json(run(go))


@stream_group.command("update")
@click.argument("stream_id")
@click.option("--name")
@click.option("--config", "config_text", help="merged into the current config (null removes)")
@click.option("--config-file", type=click.File("r"))
@click.option("--enable/--disable", "enabled", default=None)
@click.option("--cursor", type=click.IntRange(0), help="chain position: rewind or skip ahead")
def stream_update(
    stream_id: str,
    name: str | None,
    config_text: str | None,
    config_file: IO[str] | None,
    enabled: bool | None,
    cursor: int | None,
) -> None:
    """Change a stream's name, config, state or cursor."""
    changes: dict[str, Any] = {}
    config = _config(config_text, config_file, required=False)
    for key, value in (("name", name), ("config", config), ("enabled", enabled)):
        if value is not None:
            changes[key] = value
    if cursor is not None:
        changes["cursor"] = cursor
    if not changes:
        raise click.UsageError("give --name, --config, --enable/--disable or --cursor")

    async def go(gate: Any) -> Any:
        return (await gate.audit_streams.update(stream_id, changes)).to_dict()

    print_json(run(go))


@stream_group.command("delete")
@click.argument("stream_id")
def stream_delete(stream_id: str) -> None:
    async def go(gate: Any) -> None:
        await gate.audit_streams.delete(stream_id)

    run(go)
    click.echo(f"deleted {stream_id}")


@stream_group.command("test")
@click.argument("stream_id")
def stream_test(stream_id: str) -> None:
    """Send one synthetic event now; exit status 1 when the destination refused it."""

    async def go(gate: Any) -> Any:
        return (await gate.audit_streams.test(stream_id)).to_dict()

    result = run(go)
    print_json(result)
    if not result["success"]:
        click.echo(f"error: the test send failed: {result['error']}", err=True)
        sys.exit(1)
