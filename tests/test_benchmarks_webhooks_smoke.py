"""The webhook benchmark harness (``benchmarks/bench_webhooks.py``) still runs: both parts with
tiny counts on SQLite and on PostgreSQL, the receiver in its own process, the report and the profiles included.

No timing assertions: only that every case runs (with its own correctness checks: each event
arrives once at the receiver, signed so that ``verify`` accepts it, every delivery and attempt
is recorded; a SCIM POST writes one event and one audit entry with the outbox, none without it,
and its fan-out to a subscribed endpoint happens in the sequencer, not in the request) and
returns numbers, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_webhooks.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_webhooks", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_webhooks", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


bench = _load()
TINY = bench.Config(events=20, delivery_rounds=1, posts=3, scim_rounds=2, warmup=1, profile=20)


def _positive(x: Any) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def _name(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Any]:
    r = bench.ReceiverProcess()
    yield r
    r.close()


async def test_delivery_part(database_url: str, receiver: Any) -> None:
    name = _name(database_url)
    b = await bench.build_delivery_backend(database_url, receiver, concurrency=4)
    try:
        await bench.check_delivery(b, receiver)  # the harness's own checks, both workers
        res = await bench.measure_delivery([b], receiver, TINY, log=lambda _line: None)
        cases = res["cases"]
        assert set(cases) == {f"{name}/own", f"{name}/httpx_pools", *bench.CEILINGS}
        for case in cases.values():
            assert _positive(case["per_s"]["median"]) and len(case["runs"]) == 1
            assert all(_positive(r["median"]) for r in case["of"].values())
        stages = cases[f"{name}/own"]["stages_ms_per_1000"]
        assert stages["send (HTTP)"] > 0 and stages["sequence + fan-out"] > 0
        table = bench.markdown_delivery(res)
        assert "ceiling" in table
        assert ("≥ 500/s" in table) == (name == "PostgreSQL")  # its target is PostgreSQL's
        text = await bench.profile_delivery(b, receiver, TINY.profile, top=3)
        assert text.startswith(f"### {name}") and text.count("\n") == 3
        counts = await bench.delivery_counts(b)
        assert counts.get("pending", 0) == 0 and counts["unsequenced"] == 0
    finally:
        await b.aclose()


async def test_outbox_part(database_url: str, receiver: Any) -> None:
    b = await bench.build_scim_backend(database_url, receiver.url)
    try:
        await bench.check_scim(b)  # events, audit entries and fan-out per mode; statements
        st = b.statements
        assert st[bench.EVENT_ONLY] == st[bench.NO_OUTBOX] + 1
        assert st[bench.OUTBOX] == st[bench.SUBSCRIBED]
        res = await bench.measure_outbox([b], TINY, log=lambda _line: None)
        data = res[_name(database_url)]
        assert set(data["median_ms"]) == set(bench.MODES)
        assert all(_positive(r["median"]) for r in data["ratio"].values())
        assert data["posts"] == len(bench.MODES) * TINY.posts * TINY.scim_rounds
        table = bench.markdown_outbox(res)
        assert "≤ 1.3×" in table and "no outbox" in table
        # The patched recorder is gone again: a POST writes its event.
        before = await bench.scim_events(b)
        await bench.scim_case(b, bench.OUTBOX)(1)
        after = await bench.scim_events(b)
        assert after["events"] == before["events"] + 1
        text = await bench.profile_scim(b, 2, top=3)
        assert text.count("###") == 2
    finally:
        await b.aclose()
