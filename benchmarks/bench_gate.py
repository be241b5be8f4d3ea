"""In-process benchmarks of the gate's per-request overhead (see ``benchmarks/README.md``).

Every request is a direct call of the ASGI app with a hand-built scope, ``receive`` and ``send``
(no HTTP server, no sockets). The cases run interleaved, round after round (the order rotates
each round), and each case's figure is the median over the rounds; ratios are computed per round
against the bare app measured in the same round, then the median is taken. On a shared, noisy
machine only these ratios are meaningful; the absolute microseconds are context.

    .venv/bin/python benchmarks/bench_gate.py            # full run (~40 s)
    .venv/bin/python benchmarks/bench_gate.py --quick    # smoke run (~5 s)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run from a checkout without relying on the editable install's import hook.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware.sessions import SessionMiddleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from sso_gate import Profile, SSOGate  # noqa: E402
from sso_gate._ids import new_id  # noqa: E402
from sso_gate.settings import Secret, Settings  # noqa: E402
from sso_gate.store.tables import connections, organization_domains, organizations  # noqa: E402
from sso_gate.web.context import get_context  # noqa: E402

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

# Case names (also the keys of the JSON output).
BARE = "bare"
PEER = "starlette_session"
ANON = "gate_anonymous"
ANON_BROWSER = "gate_anonymous_browser"
SESSION = "gate_session"
LOGIN_BARE = "login_bare"
LOGIN_GATE = "login_gate"
ROUTING = "routing_warm"

LOGIN_BODY = b"email=bob@example.com&password=x"
# What a browser adds to the three basic headers (the gate scans headers; the bare app does not).
BROWSER_HEADERS = [
    (b"accept-language", b"en-GB,en;q=0.9"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"referer", b"http://app.test/dashboard"),
    (b"sec-fetch-dest", b"document"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-site", b"same-origin"),
    (b"sec-fetch-user", b"?1"),
    (b"upgrade-insecure-requests", b"1"),
    (b"priority", b"u=0, i"),
    (b"cookie", b"_ga=GA1.1.123456789.1700000000; theme=dark; csrftoken=abcdef0123456789"),
]
STARLETTE_SECRET = "bench-" + "s" * 32

# -- the app under test -----------------------------------------------------------------------


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


async def login(request: Request) -> Response:
    # The app's own password login: it reads the body (echoed, so checks can compare bytes).
    body = await request.body()
    return Response(body, media_type="text/plain")


async def whoami(request: Request) -> Response:
    ctx = get_context(request.scope)
    who = ctx.profile.email if ctx is not None and ctx.profile is not None else "anonymous"
    return PlainTextResponse(who)


def hello_app() -> Starlette:
    """The bare Starlette hello world (plus the login endpoint and a check-only route)."""
    return Starlette(
        routes=[
            Route("/", hello),
            Route("/login", login, methods=["POST"]),
            Route("/whoami", whoami),
        ]
    )


# -- hand-built ASGI plumbing -----------------------------------------------------------------


def http_scope(
    method: str,
    path: str,
    extra_headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    headers = [
        (b"host", b"app.test"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        *extra_headers,
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("app.test", 80),
    }


def make_receive(body: bytes = b"") -> Callable[[], Awaitable[Message]]:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def discard(message: Message) -> None:
    return None


async def call(app: ASGIApp, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    """One request, with the response captured (for checks, not timing)."""
    status = 0
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope), make_receive(body), send)
    return status, b"".join(chunks)


def request_case(app: ASGIApp, scope: dict[str, Any], body: bytes = b"") -> Callable[[int], Any]:
    """A timed case: ``n`` sequential requests; returns µs per request."""
    receive = make_receive(body)
    copy = scope.copy

    async def run(n: int) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await app(copy(), receive, discard)
        return (time.perf_counter_ns() - t0) / n / 1000

    return run


# -- environment ------------------------------------------------------------------------------


@dataclass
class Env:
    tmp: Path
    gate: SSOGate
    app: Starlette
    wrapped: ASGIApp
    peer: ASGIApp
    gate_cookie: str
    peer_cookie: str
    org_domains: list[str]
    cases: dict[str, Callable[[int], Awaitable[float]]] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.gate.aclose()


def make_settings(database_url: str) -> Settings:
    # As ``tests/conftest.py::make_settings``: http base URL, so the cookie is ``sso_gate_session``.
    return Settings(
        secret_keys=(Secret("k1-" + secrets.token_urlsafe(24)),),
        base_url="http://app.test",
        database_url=database_url,
        environment="development",
        admin_api_key=Secret("bench-admin-key-0123456789"),
    )


def make_profile(n: int = 0) -> Profile:
    return Profile(
        id=new_id("prof"),
        idp_id=f"idp-user-{n}",
        email=f"alice{n}@acme.test",
        first_name="Alice",
        last_name="Example",
        organization_id="org_bench",
        connection_id="conn_bench",
        connection_type="GenericOIDC",
        groups=("engineering",),
    )


async def bulk_orgs(gate: SSOGate, count: int, batch: int = 5_000) -> list[str]:
    """``count`` organizations with one verified domain each (every 10th: SSO required, with an
    active OIDC connection), bulk-inserted with SQLAlchemy Core. Returns the domains."""
    engine = gate._rt.engine
    now = datetime.now(UTC)
    domains: list[str] = []
    async with engine.begin() as conn:
        for start in range(0, count, batch):
            orgs, doms, conns = [], [], []
            for i in range(start, min(start + batch, count)):
                org_id = new_id("org")
                domain = f"company{i}.example-corp.test"
                required = i % 10 == 0
                orgs.append(
                    {
                        "id": org_id,
                        "name": f"Company {i}",
                        "sso_policy": "required" if required else "optional",
                        "external_id": f"ext-{i}",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                doms.append(
                    {
                        "id": new_id("org_domain"),
                        "organization_id": org_id,
                        "domain": domain,
                        "state": "verified",
                        "created_at": now,
                    }
                )
                if required:
                    conns.append(
                        {
                            "id": new_id("conn"),
                            "organization_id": org_id,
                            "connection_type": "GenericOIDC",
                            "name": f"IdP of company {i}",
                            "state": "active",
                            "config": {"oidc": {"issuer": f"https://idp.{domain}"}},
                            "secret_ciphertext": None,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                domains.append(domain)
            await conn.execute(sa.insert(organizations), orgs)
            await conn.execute(sa.insert(organization_domains), doms)
            if conns:
                await conn.execute(sa.insert(connections), conns)
    return domains


async def build_env(tmp: Path, orgs: int = 100_000, database_url: str | None = None) -> Env:
    """The gate on a new SQLite file in ``tmp`` (or on ``database_url``, an empty or migrated
    database: the smoke test's PostgreSQL case), ``orgs`` organizations, every case checked."""
    app = hello_app()
    gate = SSOGate(make_settings(database_url or f"sqlite:///{tmp / 'bench.db'}"))
    await gate.migrate()
    org_domains = await bulk_orgs(gate, orgs)
    wrapped = gate.wrap(app)
    peer = SessionMiddleware(app, secret_key=STARLETTE_SECRET)
    gate_cookie, _ = await gate.sessions.create(make_profile())
    env = Env(
        tmp=tmp,
        gate=gate,
        app=app,
        wrapped=wrapped,
        peer=peer,
        gate_cookie=gate_cookie,
        peer_cookie=await mint_starlette_cookie(),
        org_domains=org_domains,
    )
    await check(env)

    get = http_scope("GET", "/")
    form = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(LOGIN_BODY)).encode()),
    ]
    post = http_scope("POST", "/login", form)
    env.cases = {
        BARE: request_case(app, get),
        PEER: request_case(peer, http_scope("GET", "/", [peer_cookie_header(env)])),
        ANON: request_case(wrapped, get),
        ANON_BROWSER: request_case(wrapped, http_scope("GET", "/", BROWSER_HEADERS)),
        SESSION: request_case(wrapped, http_scope("GET", "/", [gate_cookie_header(env)])),
        LOGIN_BARE: request_case(app, post, LOGIN_BODY),
        LOGIN_GATE: request_case(wrapped, post, LOGIN_BODY),
        ROUTING: routing_case(gate, org_domains),
    }
    return env


def gate_cookie_header(env: Env) -> tuple[bytes, bytes]:
    return (b"cookie", f"theme=dark; sso_gate_session={env.gate_cookie}".encode())


def peer_cookie_header(env: Env) -> tuple[bytes, bytes]:
    return (b"cookie", f"theme=dark; session={env.peer_cookie}".encode())


async def mint_starlette_cookie() -> str:
    """A valid ``SessionMiddleware`` cookie, minted by the middleware itself."""

    async def set_session(request: Request) -> Response:
        request.session.update({"user_id": "user_123", "email": "alice@acme.test"})
        return PlainTextResponse("ok")

    minter = SessionMiddleware(
        Starlette(routes=[Route("/", set_session)]), secret_key=STARLETTE_SECRET
    )
    headers: list[tuple[bytes, bytes]] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers.extend(message["headers"])

    await minter(http_scope("GET", "/"), make_receive(), send)
    value = next(v for k, v in headers if k == b"set-cookie").decode()
    return value.split(";", 1)[0].split("=", 1)[1]


async def check(env: Env) -> None:
    """Each case does what it claims before it is timed."""
    assert await call(env.app, http_scope("GET", "/")) == (200, b"Hello, world!")
    assert await call(env.wrapped, http_scope("GET", "/")) == (200, b"Hello, world!")
    who = await call(env.wrapped, http_scope("GET", "/whoami", [gate_cookie_header(env)]))
    assert who == (200, b"alice0@acme.test"), who
    assert await call(env.wrapped, http_scope("GET", "/whoami")) == (200, b"anonymous")
    form = [(b"content-type", b"application/x-www-form-urlencoded")]
    echoed = await call(env.wrapped, http_scope("POST", "/login", form), LOGIN_BODY)
    assert echoed == (200, LOGIN_BODY), echoed  # not SSO: the body reaches the app intact

    peer_check = SessionMiddleware(env.app, secret_key=STARLETTE_SECRET)
    seen: dict[str, Any] = {}

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope["session"])
        await env.app(scope, receive, send)

    peer_check.app = probe
    await call(peer_check, http_scope("GET", "/", [peer_cookie_header(env)]))
    assert seen.get("user_id") == "user_123", seen  # the peer's cookie really is valid

    decision = await env.gate.routing.for_email(f"x@{env.org_domains[0]}")
    assert decision is not None and decision.sso_required  # company0 requires SSO


# -- routing ----------------------------------------------------------------------------------


def routing_case(gate: SSOGate, domains: list[str], cached: int = 1_000) -> Callable[[int], Any]:
    """Warm ``gate.routing.for_email``: a rotating set of already-cached domains."""
    rng = random.Random(1)
    emails = [f"user{i}@{d}" for i, d in enumerate(rng.sample(domains, min(cached, len(domains))))]
    for_email = gate.routing.for_email

    async def run(n: int) -> float:
        for e in emails:  # (re)fill the cache outside the timing (TTL 30 s)
            await for_email(e)
        k = len(emails)
        t0 = time.perf_counter_ns()
        for i in range(n):
            await for_email(emails[i % k])
        return (time.perf_counter_ns() - t0) / n / 1000

    return run


async def routing_cold(gate: SSOGate, domains: list[str], count: int) -> list[float]:
    """µs of the first lookup of ``count`` distinct domains (one indexed query each)."""
    rng = random.Random(2)
    gate.routing.invalidate()
    out = []
    for d in rng.sample(domains, min(count, len(domains))):
        email = f"someone@{d}"
        t0 = time.perf_counter_ns()
        decision = await gate.routing.for_email(email)
        out.append((time.perf_counter_ns() - t0) / 1000)
        assert decision is not None and decision.organization_id is not None
    return out


async def routing_memory(gate: SSOGate, domains: list[str], count: int) -> dict[str, float]:
    """Bytes the routing cache holds for ``count`` cached domains (tracemalloc, after GC)."""
    sample = random.Random(3).sample(domains, min(count, len(domains)))
    emails = [f"someone@{d}" for d in sample]
    gate.routing.invalidate()
    for e in emails[:50]:  # warm the code paths (compiled-statement cache, pool)
        await gate.routing.for_email(e)
    gate.routing.invalidate()
    gc.collect()
    tracemalloc.start()
    try:
        for e in emails:
            await gate.routing.for_email(e)
        gc.collect()
        filled = tracemalloc.get_traced_memory()[0]
        gate.routing.invalidate()
        gc.collect()
        emptied = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    total = filled - emptied
    return {"entries": len(emails), "bytes": total, "bytes_per_entry": total / len(emails)}


# -- sessions ---------------------------------------------------------------------------------


async def session_cold(env: Env, count: int) -> list[float]:
    """µs of a whole request whose cookie was never seen (HMAC + one database read)."""
    cookies = [(await env.gate.sessions.create(make_profile(i)))[0] for i in range(1, count + 1)]
    out = []
    for cookie in cookies:
        scope = http_scope("GET", "/", [(b"cookie", f"sso_gate_session={cookie}".encode())])
        t0 = time.perf_counter_ns()
        await env.wrapped(scope, make_receive(), discard)
        out.append((time.perf_counter_ns() - t0) / 1000)
        assert env.gate.sessions.cached(cookie) is not None  # it was verified and cached
    return out


# -- driver -----------------------------------------------------------------------------------


@dataclass
class Config:
    rounds: int = 40
    n: int = 2_500
    warmup: int = 3_000
    orgs: int = 100_000
    cold_sessions: int = 300
    cold_routes: int = 1_000
    mem_entries: int = 10_000


QUICK = Config(rounds=3, n=500, warmup=300, orgs=5_000, cold_sessions=20, cold_routes=50,
               mem_entries=500)  # fmt: skip

TARGETS: dict[str, tuple[str, Callable[[dict[str, float], dict[str, float]], bool]]] = {
    ANON: ("≤ 1.10× bare", lambda r, us: r[ANON] <= 1.10),
    SESSION: (
        "≤ 1.5× bare, < SessionMiddleware",
        lambda r, us: r[SESSION] <= 1.5 and r[SESSION] < r[PEER],
    ),
    LOGIN_GATE: ("≤ 1.3× bare POST", lambda r, us: r[LOGIN_GATE] <= 1.3),
    ROUTING: ("≤ 20 µs", lambda r, us: us[ROUTING] <= 20.0),
}


async def measure(env: Env, cfg: Config, log: Callable[[str], None] = print) -> dict[str, Any]:
    names = list(env.cases)
    for name in names:
        await env.cases[name](cfg.warmup)
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for r in range(cfg.rounds):
        # Short blocks, every case once per round, the order rotated (and reversed every other
        # round) so that drifts in machine load hit every case alike.
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order if r % 2 == 0 else order[::-1]:
            gc.collect()
            per_round[name].append(await env.cases[name](cfg.n))
        if r % 10 == 9 or r == cfg.rounds - 1:
            log(
                f"round {r + 1}/{cfg.rounds}: "
                + ", ".join(f"{k}={per_round[k][-1]:.2f}" for k in names)
            )

    us = {name: statistics.median(v) for name, v in per_round.items()}
    baseline = {LOGIN_BARE: LOGIN_BARE, LOGIN_GATE: LOGIN_BARE}
    ratios: dict[str, float] = {}
    ratio_iqr: dict[str, tuple[float, float]] = {}
    for name in names:
        if name == ROUTING:
            continue
        base = baseline.get(name, BARE)
        each = sorted(a / b for a, b in zip(per_round[name], per_round[base], strict=True))
        ratios[name] = statistics.median(each)
        ratio_iqr[name] = (_pct(each, 0.25), _pct(each, 0.75))

    gc.collect()
    cold_session = await session_cold(env, cfg.cold_sessions)
    cold_route = await routing_cold(env.gate, env.org_domains, cfg.cold_routes)
    memory = await routing_memory(env.gate, env.org_domains, cfg.mem_entries)
    bare_get = us[BARE]
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "event_loop": type(asyncio.get_running_loop()).__module__,
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "config": cfg.__dict__,
        "per_round_us": per_round,
        "median_us": us,
        "ratio": ratios,
        "ratio_iqr": ratio_iqr,
        "targets": {
            name: {"target": text, "pass": bool(ok(ratios, us))}
            for name, (text, ok) in TARGETS.items()
        },
        "session_cold_us": {
            "median": statistics.median(cold_session),
            "p90": _pct(cold_session, 0.9),
            "ratio_vs_bare": statistics.median(cold_session) / bare_get,
        },
        "routing_cold_us": {
            "median": statistics.median(cold_route),
            "p90": _pct(cold_route, 0.9),
        },
        "routing_memory": memory,
    }


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


LABELS = {
    BARE: "Bare Starlette hello world (GET /)",
    PEER: "Starlette `SessionMiddleware`, valid cookie",
    ANON: "sso_gate, anonymous pass-through",
    ANON_BROWSER: "sso_gate, anonymous, 13 browser-like headers incl. other cookies",
    SESSION: "sso_gate, valid SSO session cookie (warm)",
    LOGIN_BARE: "Bare app, `POST /login` (app reads the body)",
    LOGIN_GATE: "sso_gate, `POST /login`, non-SSO domain (warm routing)",
    ROUTING: "`routing.for_email`, warm, {orgs:,} orgs in SQLite",
}


def markdown(res: dict[str, Any]) -> str:
    us, ratio, targets = res["median_us"], res["ratio"], res["targets"]
    iqr = res["ratio_iqr"]
    orgs = res["config"]["orgs"]
    lines = [
        "| Case | µs/request | Ratio vs bare (IQR over rounds) | Target | Result |",
        "|---|---:|---:|---|---|",
    ]
    for name in (BARE, PEER, ANON, ANON_BROWSER, SESSION, LOGIN_BARE, LOGIN_GATE, ROUTING):
        label = LABELS[name].format(orgs=orgs)
        if name == ROUTING:
            r = "—"
        elif name == LOGIN_BARE:
            r = "1.00× (POST baseline)"
        elif name == LOGIN_GATE:
            r = f"{ratio[name]:.2f}× bare POST ({iqr[name][0]:.2f}–{iqr[name][1]:.2f})"
        elif name == BARE:
            r = "1.00×"
        else:
            r = f"{ratio[name]:.2f}× ({iqr[name][0]:.2f}–{iqr[name][1]:.2f})"
        t = targets.get(name)
        other = {BARE: "baseline", LOGIN_BARE: "baseline", PEER: "peer"}
        target = t["target"] if t else other.get(name, "informative")
        result = ("pass" if t["pass"] else "**FAIL**") if t else "—"
        lines.append(f"| {label} | {us[name]:.2f} | {r} | {target} | {result} |")
    sc, rc, mem = res["session_cold_us"], res["routing_cold_us"], res["routing_memory"]
    lines.append(
        f"| sso_gate, SSO session cookie, cold (first sight: HMAC + DB read) | {sc['median']:.1f}"
        f" (p90 {sc['p90']:.1f}) | {sc['ratio_vs_bare']:.1f}× | report | — |"
    )
    lines.append(
        f"| `routing.for_email`, cold (first lookup of a domain: one query), {orgs:,} orgs"
        f" | {rc['median']:.1f} (p90 {rc['p90']:.1f}) | — | report | — |"
    )
    lines.append("")
    lines.append(
        f"Routing cache memory: {mem['bytes'] / 1024:.0f} KiB for {mem['entries']:,} cached domains"
        f" = **{mem['bytes_per_entry']:.0f} bytes per entry** (tracemalloc, after GC)."
    )
    return "\n".join(lines)


async def main_async(cfg: Config, json_path: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sso_gate_bench_") as d:
        t0 = time.perf_counter()
        env = await build_env(Path(d), orgs=cfg.orgs)
        print(f"setup ({cfg.orgs:,} organizations) took {time.perf_counter() - t0:.1f} s")
        try:
            res = await measure(env, cfg)
        finally:
            await env.aclose()
    print()
    print(
        f"Python {res['python']} ({res['implementation']}), event loop: {res['event_loop']}, "
        f"{res['cpus']} CPUs, {res['date']}; {cfg.rounds} rounds × {cfg.n:,} requests per case"
    )
    print(markdown(res))
    if json_path:
        Path(json_path).write_text(json.dumps(res, indent=2))
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fast smoke run (small counts)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 40)")
    p.add_argument("-n", type=int, help="requests per case per round (default 2500)")
    p.add_argument("--orgs", type=int, help="organizations in the database (default 100000)")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = p.parse_args(argv)
    cfg = Config(**QUICK.__dict__) if args.quick else Config()
    for attr, value in (("rounds", args.rounds), ("n", args.n), ("orgs", args.orgs)):
        if value is not None:
            setattr(cfg, attr, value)
    asyncio.run(main_async(cfg, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
