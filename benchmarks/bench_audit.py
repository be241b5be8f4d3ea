"""Benchmark of the audit log (``gate.audit``) on SQLite and PostgreSQL (``benchmarks/README.md``).

Through the Python API, with the data in a real SQLite file and, when a URL is given, a real
PostgreSQL database, per backend:

1. **ingest**: 1,000,000 events of one organization with ``emit_many`` in batches of 1,000
   (target ≥ 10,000 events/s on SQLite), then ``chain()``, the deferred part of ingest (the
   worker assigns each event its place in the organization's hash chain): events chained/s;
2. **query**: the first page (``limit=10``, WorkOS's default; ``limit=100`` reported too) of
   ``list(org, actions=[one action])`` over those 1,000,000 events, 20 actions (target ≤ 20 ms
   median); also two actions and no filter (reported);
3. **export** of the 1,000,000 events and of a second organization's 100,000, CSV and NDJSON,
   each in a fresh subprocess that reads its own peak RSS: rows/s and the peak RSS growth
   during the export (target: flat, the same for 100,000 and 1,000,000 rows);
4. **verify** the organization's chain of 1,000,000 events: events/s.

    .venv/bin/python benchmarks/bench_audit.py                     # full run, SQLite only
    .venv/bin/python benchmarks/bench_audit.py --postgres postgresql://postgres@127.0.0.1/bench_audit
    .venv/bin/python benchmarks/bench_audit.py --quick             # smoke run: 2,000 events

The PostgreSQL database must exist and be disposable: the benchmark creates sso_gate's tables
there and drops them at the start and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run from a checkout without relying on the editable install's import hook.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from sso_gate import SSOGate  # noqa: E402
from sso_gate.services.audit import CSV_COLUMNS  # noqa: E402
from sso_gate.settings import Secret, Settings  # noqa: E402
from sso_gate.store.tables import audit_events, metadata  # noqa: E402

# 20 actions, as an app would emit them: 18 with a skewed frequency (weight 1/(k+1): the most
# common is 29 % of the events, the 18th 1.6 %) and two rare administrative ones (1 in 5,000
# events each, about 200 per 1,000,000).
ACTIONS = (
    "user.signed_in",
    "document.viewed",
    "user.signed_out",
    "document.updated",
    "invoice.created",
    "document.downloaded",
    "invoice.paid",
    "user.updated",
    "document.shared",
    "team.member_added",
    "invoice.voided",
    "team.member_removed",
    "role.assigned",
    "api_key.created",
    "user.created",
    "role.revoked",
    "api_key.revoked",
    "settings.updated",
    "sso_connection.updated",
    "sso_connection.deleted",
)
COMMON = ACTIONS[:18]
RARE = ACTIONS[18:]
WEIGHTS = tuple(1 / (k + 1) for k in range(len(COMMON))) + (7e-4, 7e-4)
TARGET_TYPES = {"user": "user", "document": "document", "invoice": "invoice", "team": "team"}
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
START = datetime(2026, 11, 1, tzinfo=UTC)

# Query case names (also the JSON keys).
Q_ONE = "one_action_10"
Q_ONE_100 = "one_action_100"
Q_RARE = "rare_action_10"
Q_TWO = "two_actions_10"
Q_TWO_RARE = "two_rare_actions_10"
Q_ALL = "no_filter_10"
QUERY_CASES = (Q_ONE, Q_ONE_100, Q_RARE, Q_TWO, Q_TWO_RARE, Q_ALL)
QUERY_LABELS = {
    Q_ONE: "`list(actions=[one action], limit=10)` (WorkOS default page), the 20 actions in turn",
    Q_ONE_100: "… `limit=100`",
    Q_RARE: "… `limit=10`, a rare action (1 in 5,000 events)",
    Q_TWO: "… `limit=10`, two common actions (`actions=[a, b]`)",
    Q_TWO_RARE: "… `limit=10`, the two rare actions",
    Q_ALL: "… `limit=10`, no filter (the organization's newest)",
}
FORMATS = ("csv", "ndjson")


@dataclass
class Config:
    events: int = 1_000_000  # events of the big organization
    small: int = 0  # events of the second organization (export comparison); 0: events // 10
    batch: int = 1_000  # events per emit_many
    rounds: int = 20  # query rounds
    queries: int = 25  # queries per case per round
    warmup: int = 2  # queries per case before the rounds
    export: bool = True
    export_subprocess: bool = True  # False: in this process (the smoke test; memory not flat)
    profile_events: int = 20_000  # --top: the profiled workload

    def small_events(self) -> int:
        return self.small or max(1, self.events // 10)


QUICK = Config(events=2_000, batch=200, rounds=3, queries=5, warmup=1, profile_events=1_000)


def make_settings(database_url: str) -> Settings:
    return Settings(
        secret_keys=(Secret("k1-" + secrets.token_urlsafe(24)),),
        base_url="http://127.0.0.1",
        database_url=database_url,
        environment="development",
    )


# -- the events ------------------------------------------------------------------------------


def make_events(rng: random.Random, start: int, count: int) -> list[dict[str, Any]]:
    """``count`` app events as WorkOS's examples show them (actor, one or two targets, IP and
    user agent, a little metadata), ``occurred_at`` 2.5 s apart, actions skewed by ``WEIGHTS``."""
    actions = rng.choices(ACTIONS, WEIGHTS, k=count)
    out = []
    for j, action in enumerate(actions):
        i = start + j
        user = rng.randrange(5_000)
        kind = TARGET_TYPES.get(action.split(".", 1)[0], "resource")
        targets: list[dict[str, Any]] = [
            {"type": kind, "id": f"{kind}_{i:08d}", "name": f"{kind.title()} {i}"}
        ]
        if i % 4 == 0:
            targets.append({"type": "team", "id": f"team_{user % 50:03d}"})
        out.append(
            {
                "action": action,
                "occurred_at": (START + timedelta(seconds=i * 2.5)).isoformat(),
                "version": 1,
                "actor": {"type": "user", "id": f"user_{user:05d}", "name": f"User {user}"},
                "targets": targets,
                "context": {"location": f"203.0.113.{user % 250}", "user_agent": USER_AGENT},
                "metadata": {"request_id": f"req_{i:010d}", "plan": "enterprise"},
            }
        )
    return out


@dataclass
class Backend:
    name: str  # "SQLite" / "PostgreSQL"
    url: str
    gate: SSOGate
    org: str  # the big organization
    small_org: str
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    loaded: int = 0
    # the newest ids per action, as emit_many returned them (the first pages must match)
    newest: dict[str, collections.deque[str]] = field(default_factory=dict)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)

    async def aclose(self) -> None:
        await self.gate.aclose()


async def build_backend(url: str) -> Backend:
    gate = SSOGate(make_settings(url))
    await gate.migrate()
    org = await gate.organizations.create("Acme")
    small = await gate.organizations.create("Initech")
    await gate.audit.chain()  # the gate's own entries (organization.created), not timed
    name = "PostgreSQL" if gate._rt.engine.dialect.name == "postgresql" else "SQLite"
    return Backend(name, url, gate, org.id, small.id)


async def drop_postgres_tables(url: str) -> None:
    """Leave the (disposable) PostgreSQL database empty, as it was found."""
    from sso_gate.store.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


# -- 1. ingest and chain ---------------------------------------------------------------------


async def ingest(
    b: Backend, org: str, count: int, batch: int, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """``count`` events through ``emit_many`` in batches; each batch is generated before its
    timing starts. Returns the per-batch wall times."""
    times: list[tuple[int, float]] = []
    cpu = 0.0
    done = 0
    next_log = count // 10
    while done < count:
        n = min(batch, count - done)
        evs = make_events(b.rng, b.loaded, n)
        c0 = time.process_time()
        t0 = time.perf_counter()
        stored = await b.gate.audit.emit_many(org, evs)
        times.append((n, time.perf_counter() - t0))
        cpu += time.process_time() - c0
        assert len(stored) == n and stored[-1].action == evs[-1]["action"]
        if org == b.org:
            for e in stored:
                b.newest.setdefault(e.action, collections.deque(maxlen=100)).append(e.id)
                b.counts[e.action] += 1
        done += n
        b.loaded += n
        if done >= next_log and count >= 100_000:
            s = sum(t for _, t in times)
            log(f"  {b.name}: {done:,} events in {s:.1f} s ({done / s:,.0f}/s)")
            next_log += count // 10
    total = sum(t for _, t in times)
    tenth = max(1, len(times) // 10)
    first, last = times[:tenth], times[-tenth:]
    return {
        "events": count,
        "batch": batch,
        "seconds": total,
        "events_per_s": count / total,
        "cpu_seconds": cpu,
        "events_per_cpu_s": count / cpu,
        "first_tenth_per_s": sum(n for n, _ in first) / sum(t for _, t in first),
        "last_tenth_per_s": sum(n for n, _ in last) / sum(t for _, t in last),
        "median_batch_ms": statistics.median(t for _, t in times) * 1000,
        "p90_batch_ms": _pct([t for _, t in times], 0.9) * 1000,
    }


async def chain(b: Backend, expected: int) -> dict[str, Any]:
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    n = await b.gate.audit.chain()
    s = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert n == expected, (n, expected)
    return {"events": n, "seconds": s, "events_per_s": n / s, "events_per_cpu_s": n / cpu}


# -- 2. query --------------------------------------------------------------------------------


def query_case(b: Backend, case: str) -> Callable[[int], Any]:
    """A block of ``n`` first-page queries; returns their times (ms). Actions rotate, so every
    action's first page is asked for."""
    limit = 100 if case == Q_ONE_100 else 10

    def actions_for(i: int) -> list[str] | None:
        if case == Q_ALL:
            return None
        if case == Q_RARE:
            return [RARE[i % 2]]
        if case == Q_TWO_RARE:
            return list(RARE)
        if case == Q_TWO:
            return [COMMON[i % len(COMMON)], COMMON[(i + 7) % len(COMMON)]]
        return [ACTIONS[i % len(ACTIONS)]]

    counter = 0

    async def run(n: int) -> list[float]:
        nonlocal counter
        times = []
        for _ in range(n):
            actions = actions_for(counter)
            counter += 1
            t0 = time.perf_counter()
            page = await b.gate.audit.list(b.org, actions=actions, limit=limit)
            times.append((time.perf_counter() - t0) * 1000)
            matching = sum(b.counts[a] for a in actions) if actions else b.counts.total()
            assert len(page.data) == min(limit, matching), (len(page.data), matching)
        return times

    return run


async def check_queries(b: Backend) -> None:
    """The first pages are the newest events of the action(s), newest first (before timing)."""
    for action, ids in b.newest.items():
        page = await b.gate.audit.list(b.org, actions=[action], limit=10)
        expected = list(reversed(ids))[:10]
        assert [e.id for e in page.data] == expected, action
        assert all(e.action == action for e in page.data)
    for two in ([COMMON[0], COMMON[-1]], list(RARE)):
        page = await b.gate.audit.list(b.org, actions=two, limit=10)
        merged = sorted([i for a in two for i in b.newest.get(a, ())], reverse=True)[:10]
        assert [e.id for e in page.data] == merged
    ids = [e.id for e in (await b.gate.audit.list(b.org, limit=100)).data]
    assert ids == sorted(ids, reverse=True)


async def measure_queries(
    b: Backend, cfg: Config, log: Callable[[str], None] = print
) -> dict[str, Any]:
    cases = {c: query_case(b, c) for c in QUERY_CASES}
    for run in cases.values():
        await run(cfg.warmup)
    per_round: dict[str, list[float]] = {c: [] for c in QUERY_CASES}
    every: dict[str, list[float]] = {c: [] for c in QUERY_CASES}
    names = list(QUERY_CASES)
    for r in range(cfg.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for c in order if r % 2 == 0 else order[::-1]:
            gc.collect()
            # a case slower than 100 ms a query runs 3 per round (a few would take minutes)
            slow = bool(per_round[c]) and per_round[c][-1] > 100
            times = await cases[c](min(cfg.queries, 3) if slow else cfg.queries)
            per_round[c].append(statistics.median(times))
            every[c].extend(times)
        if r % 5 == 4 or r == cfg.rounds - 1:
            log(
                f"  {b.name} query round {r + 1}/{cfg.rounds}: "
                + ", ".join(f"{c}={per_round[c][-1]:.2f}ms" for c in QUERY_CASES)
            )
    return {
        c: {
            "median_ms": statistics.median(per_round[c]),
            "p90_ms": _pct(every[c], 0.9),
            "iqr_ms": (_pct(per_round[c], 0.25), _pct(per_round[c], 0.75)),
        }
        for c in QUERY_CASES
    }


# -- 3. export, in a subprocess that measures its own memory ----------------------------------


def _status() -> dict[str, int]:
    """VmRSS / VmHWM in bytes from /proc/self/status (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) * 1024
    return out


def _reset_hwm() -> bool:
    """Reset the peak-RSS mark (VmHWM) of this process (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


async def export_child(args: dict[str, Any]) -> dict[str, Any]:
    """Runs in the subprocess: export one organization and report rows, time and memory."""
    gate = SSOGate(make_settings(args["url"]))
    try:
        await gate.audit.list(args["org"], limit=1)  # open the pool, import everything
        gc.collect()
        before = _status()
        maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        hwm_reset = _reset_hwm()
        rows = 0
        nbytes = 0
        chunks = 0
        peak_sampled = before["VmRSS"]
        samples: list[tuple[int, int]] = []
        step = max(1, args["expected"] // 20)
        next_sample = step
        first = b""
        last = b""
        c0 = time.process_time()
        t0 = time.perf_counter()
        stream = await gate.audit.export(args["org"], args["fmt"])
        async for chunk in stream:
            chunks += 1
            nbytes += len(chunk)
            rows += chunk.count(b"\n")
            if not first:
                first = chunk[:4096]
            last = chunk[-4096:]
            rss = _status()["VmRSS"]
            peak_sampled = max(peak_sampled, rss)
            if rows >= next_sample:
                samples.append((rows, rss))
                next_sample += step
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
        after = _status()
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    finally:
        await gate.aclose()
    if args["fmt"] == "csv":
        header = first.split(b"\r\n", 1)[0].decode()
        assert header.split(",") == list(CSV_COLUMNS), header
        rows -= 1  # the header line
    else:
        newest = json.loads(first.split(b"\n", 1)[0])
        oldest = json.loads(last.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        assert newest["object"] == "audit_log_event" and newest["id"] > oldest["id"]
    peak = after["VmHWM"] if hwm_reset else max(peak_sampled, after["VmHWM"])
    return {
        "format": args["fmt"],
        "rows": rows,
        "bytes": nbytes,
        "chunks": chunks,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "rows_per_cpu_s": rows / cpu,
        "rss_before": before["VmRSS"],
        "peak_rss": peak,
        "peak_growth": peak - before["VmRSS"],
        "peak_sampled": peak_sampled,
        "hwm_reset": hwm_reset,
        "maxrss_growth": maxrss_after - maxrss_before,
        "samples": samples,
    }


async def export_in_subprocess(url: str, org: str, fmt: str, expected: int) -> dict[str, Any]:
    args = json.dumps({"url": url, "org": org, "fmt": fmt, "expected": expected})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--export-child",
        args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"export subprocess failed ({proc.returncode}): {err.decode()[-2000:]}")
    res: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    assert res["rows"] == expected, (res["rows"], expected)
    return res


async def org_events(b: Backend, org: str) -> int:
    """Every audit event of ``org``: the benchmark's plus the gate's own (organization.created)."""
    async with b.gate._rt.read() as conn:
        stmt = sa.select(sa.func.count()).where(audit_events.c.organization_id == org)
        return int((await conn.execute(stmt)).scalar_one())


async def measure_exports(
    b: Backend, subprocess: bool = True, log: Callable[[str], None] = print
) -> Any:
    res: dict[str, dict[str, Any]] = {}
    for fmt in FORMATS:
        res[fmt] = {}
        for label, org in (("small", b.small_org), ("big", b.org)):
            n = await org_events(b, org)
            if subprocess:
                r = await export_in_subprocess(b.url, org, fmt, n)
            else:
                r = await export_child({"url": b.url, "org": org, "fmt": fmt, "expected": n})
                assert r["rows"] == n, (r["rows"], n)
            res[fmt][label] = r
            log(
                f"  {b.name} export {fmt} {n:,} rows: {r['seconds']:.1f} s, "
                f"{r['rows_per_s']:,.0f} rows/s, peak RSS +{r['peak_growth'] / 2**20:.1f} MiB"
            )
    return res


# -- 4. verify -------------------------------------------------------------------------------


async def verify(b: Backend) -> dict[str, Any]:
    expected = await org_events(b, b.org)
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    report = await b.gate.audit.verify(b.org)
    s = time.perf_counter() - t0
    cpu = time.process_time() - c0
    assert report.ok and report.checked == expected, report.to_dict()
    n = report.checked
    return {"events": n, "seconds": s, "events_per_s": n / s, "events_per_cpu_s": n / cpu}


async def storage(b: Backend) -> dict[str, Any]:
    """The database's size after loading (SQLite: the file and its WAL; PostgreSQL: the audit
    tables with their indexes)."""
    if b.name == "SQLite":
        path = Path(b.url.removeprefix("sqlite:///"))
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        return {"bytes": size}
    async with b.gate._rt.read() as conn:
        size = (
            await conn.execute(
                sa.text(
                    "SELECT pg_total_relation_size('audit_events')"
                    " + pg_total_relation_size('audit_event_targets')"
                )
            )
        ).scalar_one()
    return {"bytes": int(size)}


# -- the run ---------------------------------------------------------------------------------


async def analyze(b: Backend) -> None:
    """PostgreSQL: fresh planner statistics, as autovacuum would have them (the server used
    here runs with autovacuum off). Committed: a rolled-back ANALYZE leaves no statistics."""
    if b.name == "PostgreSQL":
        async with b.gate._rt.engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))


async def run_backend(b: Backend, cfg: Config, log: Callable[[str], None] = print) -> Any:
    res: dict[str, Any] = {"load": {"start": _load()}}
    log(f"{b.name}: ingesting {cfg.events:,} events in batches of {cfg.batch:,}")
    gc.collect()
    res["ingest"] = await ingest(b, b.org, cfg.events, cfg.batch, log)
    log(
        f"  {b.name} ingest: {res['ingest']['seconds']:.1f} s, "
        f"{res['ingest']['events_per_s']:,.0f} events/s"
    )
    res["chain"] = await chain(b, cfg.events)
    log(
        f"  {b.name} chain: {res['chain']['seconds']:.1f} s, "
        f"{res['chain']['events_per_s']:,.0f} events/s"
    )
    res["load"]["after_ingest"] = _load()
    # The queries twice: while the organization's events are the newest in the table, and
    # after another organization wrote newer ones (a busy tenant next to an idle one).
    await analyze(b)
    await check_queries(b)
    res["query"] = await measure_queries(b, cfg, log)
    small_n = cfg.small_events()
    res["ingest_small"] = await ingest(b, b.small_org, small_n, cfg.batch, log)
    res["chain_small"] = await chain(b, small_n)
    await analyze(b)
    res["storage"] = await storage(b)
    await check_queries(b)
    res["query_after_other"] = await measure_queries(b, cfg, log)
    res["load"]["after_query"] = _load()
    if cfg.export:
        res["export"] = await measure_exports(b, cfg.export_subprocess, log)
    res["verify"] = await verify(b)
    log(
        f"  {b.name} verify: {res['verify']['seconds']:.1f} s, "
        f"{res['verify']['events_per_s']:,.0f} events/s"
    )
    res["load"]["end"] = _load()
    return res


async def measure(
    backends: list[Backend], cfg: Config, log: Callable[[str], None] = print
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "config": dict(cfg.__dict__),
        "backends": {},
    }
    for b in backends:
        res["backends"][b.name] = await run_backend(b, cfg, log)
    return res


def _mib(x: float) -> str:
    return f"{x / 2**20:.1f} MiB"


def markdown(res: dict[str, Any]) -> str:
    bk = res["backends"]
    names = list(bk)
    first = bk[names[0]]
    n = first["ingest"]["events"]
    small = first["ingest_small"]["events"]
    lines = [
        "| Case | " + " | ".join(names) + " | Target | Result |",
        "|---|" + "---:|" * len(names) + "---|---|",
    ]

    def row(label: str, cells: list[str], target: str, result: str) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} | {result} |")

    def verdict(ok: list[bool]) -> str:
        if not ok:
            return "— (not run)"
        return "**pass**" if all(ok) else "**miss**"

    ing = [bk[x]["ingest"] for x in names]
    row(
        f"`emit_many`, {n:,} events in batches of {ing[0]['batch']:,}: events/s (total)",
        [f"**{i['events_per_s']:,.0f}/s** ({i['seconds']:.1f} s)" for i in ing],
        "≥ 10,000/s (SQLite)",
        verdict([i["events_per_s"] >= 10_000 for i, x in zip(ing, names, strict=True)
                 if x == "SQLite"]),
    )  # fmt: skip
    row(
        "… first / last tenth of the load (table growing)",
        [f"{i['first_tenth_per_s']:,.0f} / {i['last_tenth_per_s']:,.0f}/s" for i in ing],
        "report",
        "—",
    )
    row(
        "… per batch, median (p90)",
        [f"{i['median_batch_ms']:.0f} ms ({i['p90_batch_ms']:.0f})" for i in ing],
        "report",
        "—",
    )
    row(
        "… events per CPU-second of the benchmark process (SQLite: all the work; "
        "PostgreSQL: the client side only)",
        [f"{i['events_per_cpu_s']:,.0f}" for i in ing],
        "report",
        "—",
    )
    ch = [bk[x]["chain"] for x in names]
    row(
        f"`chain()` (deferred: hash chain positions), {n:,} events: events/s",
        [
            f"{c['events_per_s']:,.0f}/s ({c['seconds']:.1f} s; {c['events_per_cpu_s']:,.0f}/CPU-s)"
            for c in ch
        ],
        "report",
        "—",
    )
    row(
        "… ingest and chain together",
        [f"{n / (i['seconds'] + c['seconds']):,.0f}/s" for i, c in zip(ing, ch, strict=True)],
        "report",
        "—",
    )
    phases = {
        "query": f"{n:,} events, the organization's the newest in the table",
        "query_after_other": f"the same {n:,} events, then {small:,} newer ones of another "
        "organization",
    }
    for phase, title in phases.items():
        lines.append(f"| *First pages ({title}): median (p90)* |" + " |" * (len(names) + 2))
        for case in QUERY_CASES:
            q = [bk[x][phase][case] for x in names]
            row(
                QUERY_LABELS[case],
                [f"**{v['median_ms']:.2f} ms** ({v['p90_ms']:.2f})" if case == Q_ONE
                 else f"{v['median_ms']:.2f} ms ({v['p90_ms']:.2f})" for v in q],
                "≤ 20 ms" if case == Q_ONE else "report",
                verdict([v["median_ms"] <= 20 for v in q]) if case == Q_ONE else "—",
            )  # fmt: skip
    if "export" in first:
        for fmt in FORMATS:
            ex = [bk[x]["export"][fmt] for x in names]
            row(
                f"export {fmt.upper()}, {n:,} rows: rows/s (per CPU-s); peak RSS growth",
                [
                    f"{e['big']['rows_per_s']:,.0f}/s ({e['big']['rows_per_cpu_s']:,.0f}); "
                    f"**+{_mib(e['big']['peak_growth'])}**"
                    for e in ex
                ],
                "report",
                "—",
            )  # fmt: skip
            row(
                f"… {small:,} rows (another organization)",
                [
                    f"{e['small']['rows_per_s']:,.0f}/s ({e['small']['rows_per_cpu_s']:,.0f}); "
                    f"+{_mib(e['small']['peak_growth'])}"
                    for e in ex
                ],
                "report",
                "—",
            )  # fmt: skip
            diffs = [e["big"]["peak_growth"] - e["small"]["peak_growth"] for e in ex]
            row(
                f"… peak growth {n:,} minus {small:,} rows",
                [f"{d / 2**20:+.1f} MiB" for d in diffs],
                "flat",
                # flat: ten times the rows may not cost more than 8 MiB more at the peak
                verdict([d <= 8 * 2**20 for d in diffs]),
            )
    ve = [bk[x]["verify"] for x in names]
    row(
        f"`verify(org)`, a chain of {n:,} events: events/s",
        [
            f"{v['events_per_s']:,.0f}/s ({v['seconds']:.1f} s; {v['events_per_cpu_s']:,.0f}/CPU-s)"
            for v in ve
        ],
        "report",
        "—",
    )
    st = [bk[x]["storage"] for x in names]
    row(
        f"storage, {n + small:,} events",
        [f"{_mib(s['bytes'])} ({s['bytes'] / (n + small):,.0f} B/event)" for s in st],
        "report",
        "—",
    )
    return "\n".join(lines)


# -- profile (--top) ---------------------------------------------------------------------------


def _top(pr: cProfile.Profile, top: int, title: str) -> str:
    stats = pstats.Stats(pr)
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda kv: kv[1][2],
        reverse=True,
    )
    total = sum(v[2] for _, v in rows) or 1.0
    lines = [f"### {title}", "", "| Function | tottime s | share |", "|---|---:|---:|"]
    for (file, line, func), v in rows[:top]:
        where = f"{Path(file).name}:{line}({func})" if file != "~" else func
        lines.append(f"| `{where}` | {v[2]:.3f} | {v[2] / total:.0%} |")
    return "\n".join(lines)


async def profile(b: Backend, cfg: Config, top: int) -> str:
    """cProfile of ingest, chain, a first page, export (in-process) and verify of a fresh
    organization with ``profile_events`` events."""
    org = (await b.gate.organizations.create("Profiled")).id
    out = [f"## {b.name}: cProfile, {cfg.profile_events:,} events"]
    batches = [
        make_events(b.rng, i, min(cfg.batch, cfg.profile_events - i))
        for i in range(0, cfg.profile_events, cfg.batch)
    ]
    pr = cProfile.Profile()
    pr.enable()
    for evs in batches:
        await b.gate.audit.emit_many(org, evs)
    pr.disable()
    out.append(_top(pr, top, "ingest (`emit_many`)"))
    pr = cProfile.Profile()
    pr.enable()
    await b.gate.audit.chain()
    pr.disable()
    out.append(_top(pr, top, "`chain()`"))
    pr = cProfile.Profile()
    pr.enable()
    for i in range(100):
        await b.gate.audit.list(b.org, actions=[ACTIONS[i % len(ACTIONS)]], limit=10)
    pr.disable()
    out.append(_top(pr, top, "100 first pages, one action, limit 10 (the big organization)"))
    for fmt in FORMATS:
        pr = cProfile.Profile()
        pr.enable()
        async for _ in await b.gate.audit.export(org, fmt):  # type: ignore[arg-type]
            pass
        pr.disable()
        out.append(_top(pr, top, f"export {fmt}"))
    pr = cProfile.Profile()
    pr.enable()
    report = await b.gate.audit.verify(org)
    pr.disable()
    assert report.ok
    out.append(_top(pr, top, "`verify(org)`"))
    return "\n\n".join(out)


async def main_async(
    cfg: Config, postgres: str | None, json_path: str | None, top: int, sqlite: bool = True
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sso_gate_bench_audit_") as d:
        urls = [f"sqlite:///{Path(d) / 'bench.db'}"] if sqlite else []
        if postgres:
            await drop_postgres_tables(postgres)  # leftovers of an interrupted run
            urls.append(postgres)
        results: dict[str, Any] = {}
        profiles: list[str] = []
        try:
            for url in urls:
                b = await build_backend(url)
                try:
                    part = await measure([b], cfg)
                    if top:
                        profiles.append(await profile(b, cfg, top))
                finally:
                    await b.aclose()
                if not results:
                    results = part
                else:
                    results["backends"].update(part["backends"])
        finally:
            if postgres:
                await drop_postgres_tables(postgres)
    print()
    print(
        f"Python {results['python']} ({results['implementation']}), {results['cpus']} CPUs, "
        f"{results['date']}; {cfg.events:,} events ({cfg.small_events():,} in the second "
        f"organization), batches of {cfg.batch:,}; queries: {cfg.rounds} rounds × "
        f"{cfg.queries} per case; load average per phase: "
        + "; ".join(
            f"{name} " + ", ".join(f"{k} {v[0]:.1f}" for k, v in r["load"].items())
            for name, r in results["backends"].items()
        )
    )
    print()
    print(markdown(results))
    for p in profiles:
        print()
        print(p)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fast smoke run (2,000 events)")
    p.add_argument("--postgres", metavar="URL", help="also run on this (disposable) database")
    p.add_argument("--events", type=int, help="events of the big organization (default 1000000)")
    p.add_argument("--small", type=int, help="events of the second organization (events/10)")
    p.add_argument("--batch", type=int, help="events per emit_many (default 1000)")
    p.add_argument("--rounds", type=int, help="query rounds (default 20)")
    p.add_argument("--queries", type=int, help="queries per case per round (default 25)")
    p.add_argument("--no-export", action="store_true", help="skip the export subprocesses")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (with --postgres)")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--top", type=int, default=0, help="cProfile each part, print top N functions")
    p.add_argument("--export-child", metavar="JSON", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.export_child:
        print(json.dumps(asyncio.run(export_child(json.loads(args.export_child)))))
        return 0
    cfg = Config(**QUICK.__dict__) if args.quick else Config()
    for attr in ("events", "small", "batch", "rounds", "queries"):
        if getattr(args, attr) is not None:
            setattr(cfg, attr, getattr(args, attr))
    cfg.export = not args.no_export
    if args.no_sqlite and not args.postgres:
        p.error("--no-sqlite needs --postgres")
    asyncio.run(main_async(cfg, args.postgres, args.json, args.top, sqlite=not args.no_sqlite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
