"""The long fuzz runs: tests/fuzz with every property's example count multiplied, then a summary.

    .venv/bin/python fuzz/run.py                 # scale 25 (~15 min on 2 cores)
    .venv/bin/python fuzz/run.py --scale 100     # longer
    .venv/bin/python fuzz/run.py --scale 2 -k saml --results /tmp/r.md

It runs ``pytest tests/fuzz`` with ``SSO_GATE_FUZZ_SCALE`` (examples per property = the CI
count x scale) and ``SSO_GATE_FUZZ_REPORT`` (what every request or call answered), and writes
the counts, the duration and pytest's verdict to ``fuzz/RESULTS.md``. Exit status is pytest's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AREAS = {
    "api": "Management API (schemathesis, OpenAPI document)",
    "scim": "SCIM endpoints (hypothesis bodies, filters, queries)",
    "scim-properties": "SCIM filter parser and PATCH engine (properties)",
    "domains": "Email/domain normalization and routing (properties)",
    "saml": "SAML response parsing and verification (mutations)",
    "saml-mutations": "SAML mutations used (alone or combined), and what became of them",
}


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _summary(report: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    lines: list[str] = []
    for area, title in AREAS.items():
        labels = report.get(area, {})
        if not labels:
            continue
        total = sum(sum(v.values()) for v in labels.values())
        lines += [
            f"### {title}",
            "",
            f"{len(labels)} {'operations' if area == 'api' else 'targets'}, "
            f"{total} examples checked.",
            "",
            "| target | examples | outcomes |",
            "|---|---:|---|",
        ]
        for label, outcomes in sorted(labels.items()):
            shown = ", ".join(f"{k}: {n}" for k, n in sorted(outcomes.items(), key=lambda x: -x[1]))
            lines.append(f"| `{label}` | {sum(outcomes.values())} | {shown} |")
        lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=25, help="CI example counts x this")
    parser.add_argument("--results", type=Path, default=ROOT / "fuzz" / "RESULTS.md")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (a partial run)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "SSO_GATE_FUZZ_SCALE": str(args.scale),
            "SSO_GATE_FUZZ_REPORT": str(report_path),
        }
        # pytest-timeout's 120 s per test is for CI-sized runs
        command = [sys.executable, "-m", "pytest", "tests/fuzz", "-q", "-p", "no:cacheprovider"]
        command += ["--timeout", "0"]
        if args.keyword:
            command += ["-k", args.keyword]
        started = time.monotonic()
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        sys.stdout.write(proc.stdout[-20000:])
        sys.stderr.write(proc.stderr[-5000:])
        report = json.loads(report_path.read_text()) if report_path.exists() else {}

    verdict = (proc.stdout.strip().splitlines() or ["(no output)"])[-1].strip("= ")
    dirty = (
        " (with uncommitted changes)"
        if _git("status", "--porcelain", "--", "sso_gate", "tests/fuzz")
        else ""
    )
    lines = [
        "# Last long fuzz run",
        "",
        f"* command: `.venv/bin/python fuzz/run.py --scale {args.scale}"
        + (f" -k {args.keyword!r}" if args.keyword else "")
        + "`",
        f"* when: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"commit {_git('rev-parse', '--short', 'HEAD')}{dirty}",
        f"* machine: {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores",
        "* databases: "
        + (
            "SQLite and PostgreSQL (`SSO_GATE_TEST_POSTGRES_URL` set: every database test twice)"
            if os.environ.get("SSO_GATE_TEST_POSTGRES_URL")
            else "SQLite only (set `SSO_GATE_TEST_POSTGRES_URL` for PostgreSQL too)"
        ),
        f"* duration: {seconds / 60:.1f} min",
        f"* pytest: **{verdict}**",
        "",
        *_summary(report),
    ]
    args.results.write_text("\n".join(lines).rstrip() + "\n")
    print(f"\nwrote {args.results} ({seconds / 60:.1f} min)")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
