"""The load test (``benchmarks/load/run.py``) still runs: both uvicorn servers, every wrk case,
OIDC and SAML logins, the SCIM burst and a few seconds of soak, with tiny durations; the gate on
SQLite, then on PostgreSQL (``--postgres``).

No throughput assertions: only that every part runs, returns numbers and sees zero errors (the
runner's own checks included: each case answers what it claims, every login lands signed in,
every created SCIM user is listed), so the harness cannot rot. Needs Debian's ``wrk``; skipped
without it unless ``SSO_GATE_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "load" / "run.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_load_run", module)  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _require_wrk() -> None:
    if shutil.which("wrk") is not None:
        return
    message = "Debian's wrk is needed for the load test (apt-get install -y wrk)"
    if os.environ.get("SSO_GATE_REQUIRE_PEERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.timeout(120)
def test_load_run_tiny(capsys: pytest.CaptureFixture[str], database_url: str) -> None:
    bench = _load()
    on_postgres = ["--postgres", database_url] if database_url.startswith("postgresql") else []
    res = bench.main(
        [
            *on_postgres,
            "--quick",
            "--duration=1",
            "--login-seconds=1",
            "--scim-seconds=1",
            "--soak-minutes=0.05",
            "--soak-warmup=1",
        ]
    )
    assert res["errors"] == 0 and res["server_log_errors"] == 0
    assert res["database"] == ("PostgreSQL" if on_postgres else "SQLite")
    for case in bench.CASES:
        r = res["requests"][case]
        assert r["rps"] > 0 and r["requests"] > 0 and r["errors"] == 0, case
        assert set(r["statuses"]) == {"200"}, case
    for case in bench.PAIRS:
        assert res["requests"][case]["slowdown"] > 0
    for kind in ("oidc", "saml"):
        assert res["logins"][kind]["logins"] > 0 and res["logins"][kind]["errors"] == 0
    scim = res["scim"]
    assert scim["created"] > 0 and set(scim["statuses"]) == {"201"}
    assert scim["unaccounted"] == 0
    soak = res["soak"]
    assert soak["requests"] > 0 and soak["errors"] == 0
    assert set(soak["statuses"]) <= {"200", "201"}
    assert soak["rss_mib"]["end"] > 0 and len(soak["rss_samples"]) >= 2
    out = capsys.readouterr().out
    assert "| gate, anonymous `GET /` (pass-through) |" in out and "< 10%" in out
