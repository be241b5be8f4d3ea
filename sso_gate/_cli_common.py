"""What every ``sso-gate`` command shares: run a coroutine against a gate built from the
environment, print JSON, report errors as ``error: <message> [code]`` with exit status 1."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from sso_gate.exceptions import SSOGateError

__all__ = ["run", "print_json"]

T = TypeVar("T")


def run(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Build a gate from the environment, run ``fn(gate)``, print errors cleanly."""
    from sso_gate.gate import SSOGate

    async def go() -> T:
        gate = SSOGate.from_env()
        try:
            return await fn(gate)
        finally:
            await gate.aclose()

    try:
        return asyncio.run(go())
    except SSOGateError as exc:
        click.echo(f"error: {exc.message} [{exc.code}]", err=True)
        sys.exit(1)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))
