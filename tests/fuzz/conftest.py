"""Fuzz runs write what they did to ``SSO_GATE_FUZZ_REPORT`` (a JSON file) when it is set."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz._harness import STATS


@pytest.fixture(scope="session", autouse=True)
def fuzz_report() -> Iterator[None]:
    yield
    target = os.environ.get("SSO_GATE_FUZZ_REPORT")
    if target:
        data = {area: {k: dict(v) for k, v in labels.items()} for area, labels in STATS.items()}
        Path(target).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
