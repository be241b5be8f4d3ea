"""The SAML benchmark harness (``benchmarks/bench_saml.py``) still runs: every sso_gate case with
tiny counts, the peers only where they are installed (pysaml2 also needs the ``xmlsec1`` binary).

No timing assertions: only that each case runs (its correctness checks included: a tampered
response is refused by every verifier) and returns a number, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_saml.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_saml", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_saml", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


bench = _load()


def _number(x: object) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


@pytest.fixture
async def env(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    # build_env also runs the harness's checks
    e = await bench.build_env(tmp_path, peers=(), database_url=database_url)
    yield e
    await e.aclose()


async def test_sso_gate_cases_run(env) -> None:  # type: ignore[no-untyped-def]
    assert set(env.cases) == {bench.VERIFY, bench.ACS}
    for name, case in env.cases.items():
        assert _number(await case(2)), name


async def test_acs_breakdown_and_profile(env) -> None:  # type: ignore[no-untyped-def]
    b = await bench.acs_breakdown(env, 3)
    assert set(b["stages"]) == set(bench.STAGES) | {"rest"}
    assert _number(b["total_us"]) and b["stages"]["verify"]["wall_us"] > 0
    assert b["stages"]["profile"]["wall_us"] > 0
    # the wrappers are gone again: the next request runs unwrapped and still succeeds
    assert "take" not in vars(env.gate.onetime) and "_connection" not in vars(env.gate.saml)
    assert _number(await env.cases[bench.ACS](1))
    p = await bench.acs_profile(env, 2, top=5)
    assert abs(sum(p["group_share"].values()) - 1) < 1e-6 and len(p["top"]) == 5


async def test_measure_and_report(env) -> None:  # type: ignore[no-untyped-def]
    cfg = bench.Config(
        rounds=1,
        n={bench.VERIFY: 2, bench.ACS: 1},
        warmup=0,
        breakdown=2,
        profile=2,
        forks=1,
    )
    res = await bench.measure(env, cfg, log=lambda _: None)
    assert set(res["median_us"]) == {bench.VERIFY, bench.ACS}
    assert all(_number(v) for v in res["median_us"].values())
    assert res["pysaml2_processes"] is None  # the peer was not set up
    assert set(res["targets"]) == {bench.VERIFY}
    assert "| Case |" in bench.markdown(res)


@pytest.mark.skipif(bench.pysaml2_missing() is not None, reason=str(bench.pysaml2_missing()))
async def test_pysaml2_peer(tmp_path: Path) -> None:
    # build_env proves pysaml2 accepts the response and refuses tampered / foreign-key copies.
    e = await bench.build_env(tmp_path, peers=(bench.PYSAML2,))
    try:
        assert _number(await e.cases[bench.PYSAML2](1))
        forks = bench.pysaml2_forks(e, 1)
        assert forks is not None and forks["processes_per_response"] >= 1
    finally:
        await e.aclose()


@pytest.mark.skipif(
    bench.python3_saml_missing() is not None, reason=str(bench.python3_saml_missing())
)
async def test_python3_saml_peer(tmp_path: Path) -> None:
    e = await bench.build_env(tmp_path, peers=(bench.PY3SAML,))
    try:
        assert _number(await e.cases[bench.PY3SAML](1))
    finally:
        await e.aclose()
