"""The benchmark harness (``benchmarks/bench_gate.py``) still runs: every case, tiny counts.

No timing assertions: only that each case runs (its correctness checks included) and returns a
number, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gate.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gate", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_gate", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


bench = _load()


def _number(x: object) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


@pytest.fixture
async def env(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    # build_env also runs the harness's checks
    e = await bench.build_env(tmp_path, orgs=60, database_url=database_url)
    yield e
    await e.aclose()


async def test_every_request_case_runs(env) -> None:  # type: ignore[no-untyped-def]
    assert set(env.cases) == {
        bench.BARE,
        bench.PEER,
        bench.ANON,
        bench.ANON_BROWSER,
        bench.SESSION,
        bench.LOGIN_BARE,
        bench.LOGIN_GATE,
        bench.ROUTING,
    }
    for name, case in env.cases.items():
        assert _number(await case(5)), name


async def test_cold_paths_and_memory_run(env) -> None:  # type: ignore[no-untyped-def]
    cold = await bench.session_cold(env, 3)
    assert len(cold) == 3 and all(_number(x) for x in cold)
    routes = await bench.routing_cold(env.gate, env.org_domains, 5)
    assert len(routes) == 5 and all(_number(x) for x in routes)
    mem = await bench.routing_memory(env.gate, env.org_domains, 20)
    assert mem["entries"] == 20 and mem["bytes_per_entry"] > 0


async def test_measure_and_report(env) -> None:  # type: ignore[no-untyped-def]
    cfg = bench.Config(
        rounds=1, n=3, warmup=2, orgs=60, cold_sessions=2, cold_routes=3, mem_entries=10
    )
    res = await bench.measure(env, cfg, log=lambda _: None)
    assert all(_number(v) for v in res["median_us"].values())
    assert set(res["ratio"]) == set(env.cases) - {bench.ROUTING}
    assert set(res["targets"]) == {bench.ANON, bench.SESSION, bench.LOGIN_GATE, bench.ROUTING}
    assert "| Case |" in bench.markdown(res)
