"""The audit log benchmark harness (``benchmarks/bench_audit.py``) still runs: every part with
tiny counts on SQLite and on PostgreSQL — ingest, chain, the query cases, the exports with their
memory readings (in-process here, plus one in its own subprocess as the real run does), verify,
the report and the profile.

No timing assertions: only that each part runs (its correctness checks included: the first
pages are the newest events of the action, newest first; each export has every row; the chain
verifies) and returns numbers, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_audit.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_audit", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_audit", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


bench = _load()
TINY = bench.Config(
    events=1_000,
    small=200,
    batch=250,
    rounds=2,
    queries=3,
    warmup=1,
    export_subprocess=False,
    profile_events=300,
)


def _positive(x: object) -> bool:
    return isinstance(x, float | int) and math.isfinite(x) and x > 0


@pytest.fixture
async def backend(database_url: str):  # type: ignore[no-untyped-def]
    b = await bench.build_backend(database_url)
    yield b
    await b.aclose()


async def test_every_part_runs_and_reports(backend) -> None:  # type: ignore[no-untyped-def]
    res = await bench.measure([backend], TINY, log=lambda _line: None)
    data = res["backends"][backend.name]
    assert data["ingest"]["events"] == TINY.events and _positive(data["ingest"]["events_per_s"])
    assert _positive(data["ingest"]["events_per_cpu_s"])
    assert data["chain"]["events"] == TINY.events and _positive(data["chain"]["events_per_s"])
    for phase in ("query", "query_after_other"):
        assert set(data[phase]) == set(bench.QUERY_CASES)
        assert all(_positive(q["median_ms"]) for q in data[phase].values())
    for fmt in bench.FORMATS:
        small, big = data["export"][fmt]["small"], data["export"][fmt]["big"]
        # every row of each organization (its own organization.created entry included)
        assert (small["rows"], big["rows"]) == (TINY.small + 1, TINY.events + 1)
        assert _positive(big["rows_per_s"]) and _positive(big["peak_rss"])
        assert big["peak_rss"] >= big["rss_before"] > 0
    assert data["verify"]["events"] == TINY.events + 1 and _positive(data["verify"]["events_per_s"])
    table = bench.markdown(res)
    assert f"| Case | {backend.name} |" in table and "≥ 10,000/s" in table and "≤ 20 ms" in table
    text = await bench.profile(backend, TINY, top=3)
    assert text.count("###") == 6


async def test_export_subprocess(backend) -> None:  # type: ignore[no-untyped-def]
    await bench.ingest(backend, backend.small_org, 30, 10, log=lambda _line: None)
    await backend.gate.audit.chain()
    r = await bench.export_in_subprocess(backend.url, backend.small_org, "csv", 31)
    assert r["rows"] == 31 and r["format"] == "csv" and r["bytes"] > 0
    assert r["peak_growth"] >= 0 and _positive(r["seconds"])
