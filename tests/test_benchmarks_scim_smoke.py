"""The SCIM benchmark harness (``benchmarks/bench_scim.py``) still runs: every case with tiny
counts, on SQLite and (when configured) PostgreSQL, the profile and the report included.

No timing assertions: only that each case runs (its correctness checks included: the lookups
find the right user, the PATCHes add exactly one member, answered 204, without and with
``members`` in the response, the POSTs create) and returns numbers, so the harness cannot rot unnoticed.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.anyio

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scim.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scim", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_scim", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


bench = _load()
TINY = bench.Config(
    users=60,
    small=3,
    big=20,
    rounds=2,
    lookups=3,
    patches=2,
    provision=6,
    provision_rounds=2,
    warmup=1,
    profile=4,
)


def _numbers(xs: list[float]) -> bool:
    return bool(xs) and all(isinstance(x, float) and math.isfinite(x) and x > 0 for x in xs)


@pytest.fixture
async def backend(database_url: str):  # type: ignore[no-untyped-def]
    b = await bench.build_backend(database_url, TINY.users, TINY.small, TINY.big)
    yield b
    await b.aclose()


async def test_checks_and_every_case_run(backend) -> None:  # type: ignore[no-untyped-def]
    await bench.check(backend)  # the harness's own correctness checks
    assert (backend.small_members, backend.big_members) == (3, 20)
    cases = {
        "lookup": bench.lookup_case(backend),
        **{
            name: bench.patch_case(backend, big=size == "big", variant=variant)
            for variant in bench.VARIANTS
            for size, name in zip(("small", "big"), bench.PATCH_PAIRS[variant], strict=True)
        },
        "create": bench.create_case(backend),
    }
    assert set(cases) == {*bench.TIMED_CASES, "create"}
    for name, case in cases.items():
        assert _numbers(await case(2)), name
    # The PATCH cases put the groups back to their size.
    assert await bench.member_count(backend, backend.big_group) == 20
    assert backend.created == 2


async def test_measure_report_and_profile(backend) -> None:  # type: ignore[no-untyped-def]
    res = await bench.measure([backend], TINY, log=lambda _line: None)
    data = res["backends"][backend.name]
    assert set(data["median_ms"]) == set(bench.TIMED_CASES)
    assert data["create"]["users"] == TINY.provision and data["create"]["users_per_s"] > 0
    assert all(data["ratio"][big]["median"] > 0 for _, big in bench.PATCH_PAIRS.values())
    table = bench.markdown(res)
    assert "userName eq" in table and "excludedAttributes=members" in table
    assert "204 No Content" in table and "attributes=members" in table
    text = await bench.profile(backend, TINY, top=3)
    assert text.count("###") == 5
