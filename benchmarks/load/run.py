"""Load test: wrk against uvicorn serving the demo app with and without the gate, on loopback.

.. code-block:: sh

    .venv/bin/python benchmarks/load/run.py                 # full run (~17 min: 10-minute soak)
    .venv/bin/python benchmarks/load/run.py --quick         # smoke run (~1 min)
    .venv/bin/python benchmarks/load/run.py --postgres postgresql://postgres@127.0.0.1/bench_load

Two uvicorn processes (one worker each, ``--loop asyncio --http h11``: what the project installs)
serve ``benchmarks/load/server.py`` on free ports of 127.0.0.1: ``gate`` (the ``sso-gate demo``
app wrapped by the gate, the development IdP mounted in it, ``SSO_GATE_RATE_LIMITS=off``) and
``bare`` (the same Starlette app without the gate). Measured in one run:

1. requests: wrk (``count.lua``) per case, the cases interleaved in rounds (order rotated and
   reversed every other round) so the gate and its baseline see the same machine load; the
   ratio is the median of the per-round ratios gate/bare;
2. SSO logins end to end (OIDC and SAML) by a Python asyncio client (httpx; wrk cannot carry
   cookies and form fields from one response to the next request): login POST intercepted by
   the gate -> dev IdP page -> dev IdP approval -> callback (the gate redeems the code at the dev
   IdP's token endpoint over HTTP) or ACS (+ completion step) -> session cookie -> landing page;
3. a SCIM provisioning burst: wrk (``scim.lua``) POSTs new users (unique userNames), then the
   number of users the directory lists is checked against the 201s counted;
4. a soak: wrk (``mixed.lua``) in one-minute segments plus OIDC/SAML logins throughout, the gate
   process's RSS sampled from ``/proc`` every few seconds; memory is stable when RSS grows less
   than 10% from the end of the warm-up to the end.

Every response must be 2xx/3xx and every login complete; errors are counted, never hidden. The
Markdown report goes to stdout (progress to stderr); ``--json PATH`` keeps the raw numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PREFIX = "/sso-gate"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The request cases: (name, server, path, which cookie). Each gate case has its bare baseline.
CASES: dict[str, tuple[str, str, str | None]] = {
    "bare_anonymous": ("bare", "/", None),
    "gate_anonymous": ("gate", "/", None),
    "bare_password": ("bare", "/dashboard", "password"),
    "gate_sso": ("gate", "/dashboard", "sso"),
    "gate_password": ("gate", "/dashboard", "password"),
}
PAIRS = {
    "gate_anonymous": "bare_anonymous",
    "gate_sso": "bare_password",
    "gate_password": "bare_password",
}
CASE_TEXT = {
    "bare_anonymous": "bare app, anonymous `GET /` (baseline)",
    "gate_anonymous": "gate, anonymous `GET /` (pass-through)",
    "bare_password": "bare app, `GET /dashboard`, app's own password cookie (baseline)",
    "gate_sso": "gate, `GET /dashboard`, SSO session cookie (authenticated)",
    "gate_password": "gate, `GET /dashboard`, app's own password cookie (pass-through)",
}


@dataclasses.dataclass
class Config:
    duration: float = 5.0  # seconds per wrk run of a request case
    rounds: int = 6
    connections: int = 16
    threads: int = 1
    login_seconds: float = 20.0  # per protocol
    login_concurrency: int = 8
    scim_seconds: float = 10.0
    scim_connections: int = 8
    soak_minutes: float = 10.0
    soak_warmup: float = 60.0  # seconds excluded from the RSS growth
    soak_connections: int = 8
    soak_login_concurrency: int = 2
    rss_every: float = 5.0
    postgres: str | None = None


QUICK = Config(
    duration=2.0,
    rounds=1,
    login_seconds=4.0,
    scim_seconds=3.0,
    soak_minutes=0.5,
    soak_warmup=10.0,
    rss_every=2.0,
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- servers ------------------------------------------------------------------------------------


class Server:
    """One uvicorn process (one worker) serving ``server.py`` in ``mode`` on 127.0.0.1."""

    def __init__(self, mode: str, database_url: str, admin_key: str, logdir: Path) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logdir / f"{mode}.log"
        env = {
            **os.environ,
            "SSO_GATE_LOAD_MODE": mode,
            "SSO_GATE_SECRET_KEYS": secrets.token_urlsafe(32),
            "SSO_GATE_BASE_URL": self.url,
            "SSO_GATE_DATABASE_URL": database_url,
            "SSO_GATE_ENVIRONMENT": "development",
            "SSO_GATE_ADMIN_API_KEY": admin_key,
            "SSO_GATE_RATE_LIMITS": "off",
        }
        env.pop("SSO_GATE_REDIS_URL", None)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "server:create",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "asyncio",
            "--http",
            "h11",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.mode} server exited:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.mode} server not ready after {timeout}s:\n{self.log_text()}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# -- wrk ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class WrkResult:
    requests: int
    seconds: float
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    latency_us: dict[str, float]
    server_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        bad = sum(n for code, n in self.statuses.items() if not 200 <= int(code) < 400)
        return bad + sum(v for k, v in self.socket_errors.items() if k != "status")

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / max(self.requests, 1)


def wrk_command(
    url: str,
    script: str,
    seconds: float,
    connections: int,
    threads: int,
    headers: Sequence[str] = (),
    args: Sequence[str] = (),
) -> list[str]:
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(HERE / script),
    ]
    for h in headers:
        cmd += ["-H", h]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    return cmd


def parse_wrk(stdout: str, server_cpu_s: float) -> WrkResult:
    for line in stdout.splitlines():
        if line.startswith("LOAD_RESULT "):
            raw = json.loads(line[len("LOAD_RESULT ") :])
            return WrkResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                statuses=raw["statuses"],
                socket_errors=raw["errors"],
                latency_us=raw["latency_us"],
                server_cpu_s=server_cpu_s,
            )
    raise RuntimeError(f"wrk printed no LOAD_RESULT line:\n{stdout}")


async def run_wrk(server: Server, cmd: list[str]) -> WrkResult:
    cpu0 = server.cpu_seconds()
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()}\n{out.decode()}")
    return parse_wrk(out.decode(), server.cpu_seconds() - cpu0)


# -- logins (Python client: wrk cannot follow the flow) -----------------------------------------


class LoginError(Exception):
    pass


def _expect(r: httpx.Response, status: int, contains: str = "") -> None:
    where = r.headers.get("location", "") if status == 303 else r.text
    if r.status_code != status or contains not in where:
        raise LoginError(
            f"{r.request.method} {r.request.url.path}: {r.status_code} (expected {status}"
            f"{' with ' + repr(contains) if contains else ''}) {r.text[:200]!r}"
        )


def _hidden(page: str, name: str) -> str:
    try:
        return page.split(f'name="{name}" value="', 1)[1].split('"', 1)[0]
    except IndexError:
        raise LoginError(f"no {name} in the page: {page[:200]!r}") from None


async def _land(c: httpx.AsyncClient, r: httpx.Response, email: str) -> None:
    """Follow the gate's last redirect to the app and check the app sees the SSO user."""
    _expect(r, 303)
    page = await c.get(r.headers["location"])
    if page.status_code != 200 or f"as <b>{email}</b>" not in page.text:
        if f"Hello {email} (signed in with SSO)" not in page.text:
            raise LoginError(
                f"landing {r.headers['location']}: {page.status_code} {page.text[:200]!r}"
            )


async def oidc_login(c: httpx.AsyncClient, email: str) -> None:
    c.cookies.clear()
    r = await c.post("/login", data={"email": email, "password": "x"})
    _expect(r, 303, "/dev-idp/authorize?")
    authorize = r.headers["location"]
    _expect(await c.get(authorize), 200, "development IdP")
    form = dict(httpx.QueryParams(authorize.split("?", 1)[1]))
    r = await c.post("/dev-idp/authorize", data={**form, "email": email})
    _expect(r, 303, f"{PREFIX}/sso/oidc/")
    await _land(c, await c.get(r.headers["location"]), email)


async def saml_login(c: httpx.AsyncClient, email: str) -> None:
    c.cookies.clear()
    r = await c.post("/login", data={"email": email, "password": "x"})
    _expect(r, 303, "/dev-idp/saml/sso?SAMLRequest=")
    sso = r.headers["location"]
    _expect(await c.get(sso), 200, "development IdP")
    q = httpx.QueryParams(sso.split("?", 1)[1])
    r = await c.post(
        "/dev-idp/saml/sso",
        data={"SAMLRequest": q["SAMLRequest"], "RelayState": q["RelayState"], "email": email},
    )
    _expect(r, 200, "SAMLResponse")
    acs = r.text.split('action="', 1)[1].split('"', 1)[0]
    data = {"SAMLResponse": _hidden(r.text, "SAMLResponse")}
    if 'name="RelayState"' in r.text:
        data["RelayState"] = _hidden(r.text, "RelayState")
    r = await c.post(acs, data=data)
    _expect(r, 303)
    await _land(c, await c.get(r.headers["location"]), email)


LOGINS: dict[str, tuple[Callable[[httpx.AsyncClient, str], Awaitable[None]], str]] = {
    "oidc": (oidc_login, "acme.test"),
    "saml": (saml_login, "initech.test"),
}


@dataclasses.dataclass
class LoginStats:
    done: int = 0
    errors: int = 0
    first_errors: list[str] = dataclasses.field(default_factory=list)
    durations: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    server_cpu_s: float = 0.0

    def add_error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{type(exc).__name__}: {exc}")

    def summary(self) -> dict[str, Any]:
        d = sorted(self.durations) or [0.0]
        return {
            "logins": self.done,
            "errors": self.errors,
            "first_errors": self.first_errors,
            "per_s": self.done / self.seconds if self.seconds else 0.0,
            "p50_ms": 1000 * d[len(d) // 2],
            "p99_ms": 1000 * d[min(len(d) - 1, int(len(d) * 0.99))],
            "max_ms": 1000 * d[-1],
            "seconds": self.seconds,
            "server_cpu_ms_per_login": 1000 * self.server_cpu_s / max(self.done, 1),
        }


_users = iter(range(10**9))


async def login_load(
    server: Server,
    kinds: list[str],
    concurrency: int,
    seconds: float,
    stats: dict[str, LoginStats],
    stop: asyncio.Event | None = None,
) -> None:
    """``concurrency`` clients doing complete logins back to back for ``seconds`` (or until
    ``stop``), each alternating through ``kinds``. Users: a pool of 1,000 per domain."""
    deadline = time.monotonic() + seconds
    cpu0 = server.cpu_seconds()
    t0 = time.monotonic()

    async def client(i: int) -> None:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as c:
            k = i
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                kind = kinds[k % len(kinds)]
                k += 1
                fn, domain = LOGINS[kind]
                email = f"load{next(_users) % 1000}@{domain}"
                started = time.perf_counter()
                try:
                    await fn(c, email)
                except (LoginError, httpx.HTTPError) as exc:
                    stats[kind].add_error(exc)
                else:
                    stats[kind].durations.append(time.perf_counter() - started)
                    stats[kind].done += 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    cpu = server.cpu_seconds() - cpu0
    elapsed = time.monotonic() - t0
    for kind in kinds:
        stats[kind].seconds += elapsed
        stats[kind].server_cpu_s += cpu / len(kinds)


# -- the run ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Env:
    gate: Server
    bare: Server
    admin_key: str
    cookies: dict[str, str]  # "sso", "password_gate", "password_bare" -> Cookie header
    scim_url: str  # the directory's SCIM base URL (no trailing slash)
    scim_token: str
    tag: str


def _cookie(cookies: dict[str, str], kind: str, server: str) -> str:
    return cookies["password_" + server] if kind == "password" else cookies[kind]


def _cookie_header(jar: httpx.Cookies) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


async def prepare(gate: Server, bare: Server, admin_key: str) -> Env:
    """Sign in once each way, make a SCIM directory, and check every case does what it says."""
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(base_url=gate.url, timeout=30) as c:
        await oidc_login(c, "load-check@acme.test")
        sso = _cookie_header(c.cookies)
        await saml_login(c, "load-check@initech.test")
        api = {"Authorization": f"Bearer {admin_key}"}
        orgs = (await c.get(f"{PREFIX}/api/organizations", headers=api)).json()["data"]
        acme = next(o for o in orgs if o["name"] == "Acme")
        r = await c.post(
            f"{PREFIX}/api/directories",
            headers=api,
            json={
                "organization_id": acme["id"],
                "name": f"Load {tag}",
                "type": "generic scim v2.0",
            },
        )
        if r.status_code != 201:
            raise RuntimeError(f"directory: {r.status_code} {r.text}")
        directory = r.json()
    scim_url, token = directory["scim_base_url"].rstrip("/"), directory["bearer_token"]
    cookies = {"sso": sso}
    for server in (bare, gate):
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            r = await c.post("/login", data={"email": "bob@example.com", "password": "password"})
            if r.status_code != 303 or "demo_user" not in c.cookies:
                raise RuntimeError(f"{server.mode} password login: {r.status_code}")
            cookies[f"password_{server.mode}"] = _cookie_header(c.cookies)  # keys differ
    # every case answers what it claims, on both servers
    expect = {
        "bare_anonymous": "Not signed in",
        "gate_anonymous": "Not signed in",
        "bare_password": "Hello bob@example.com (signed in with password)",
        "gate_password": "Hello bob@example.com (signed in with password)",
        "gate_sso": "Hello load-check@acme.test (signed in with SSO)",
    }
    servers = {"gate": gate, "bare": bare}
    for case, (which, path, cookie) in CASES.items():
        headers = {"Cookie": _cookie(cookies, cookie, which)} if cookie else {}
        r = httpx.get(servers[which].url + path, headers=headers)
        if r.status_code != 200 or expect[case] not in r.text:
            raise RuntimeError(f"case {case}: {r.status_code} {r.text[:300]}")
    return Env(gate, bare, admin_key, cookies, scim_url, token, tag)


async def scim_count(env: Env) -> int:
    async with httpx.AsyncClient(timeout=60) as c:
        r = await c.get(
            f"{env.scim_url}/Users",
            params={"count": "0"},
            headers={"Authorization": f"Bearer {env.scim_token}"},
        )
        r.raise_for_status()
        return int(r.json()["totalResults"])


def case_command(env: Env, case: str, cfg: Config) -> tuple[Server, list[str]]:
    which, path, cookie = CASES[case]
    server = env.gate if which == "gate" else env.bare
    headers = [f"Cookie: {_cookie(env.cookies, cookie, which)}"] if cookie else []
    return server, wrk_command(
        server.url + path, "count.lua", cfg.duration, cfg.connections, cfg.threads, headers
    )


async def measure_requests(env: Env, cfg: Config) -> dict[str, Any]:
    names = list(CASES)
    runs: dict[str, list[WrkResult]] = {n: [] for n in names}
    loads: list[float] = []
    for rnd in range(cfg.rounds):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        if rnd % 2:
            order.reverse()
        for case in order:
            server, cmd = case_command(env, case, cfg)
            res = await run_wrk(server, cmd)
            runs[case].append(res)
            loads.append(loadavg()[0])
            log(
                f"  round {rnd + 1} {case}: {res.rps:,.0f}/s p50 {res.latency_us['p50'] / 1000:.2f}"
                f" ms p99 {res.latency_us['p99'] / 1000:.2f} ms errors {res.errors}"
            )
    out: dict[str, Any] = {}
    for case in names:
        rs = runs[case]
        out[case] = {
            "rps": statistics.median(r.rps for r in rs),
            "p50_ms": statistics.median(r.latency_us["p50"] for r in rs) / 1000,
            "p99_ms": statistics.median(r.latency_us["p99"] for r in rs) / 1000,
            "cpu_ms": statistics.median(r.cpu_ms_per_request for r in rs),
            "requests": sum(r.requests for r in rs),
            "errors": sum(r.errors for r in rs),
            "statuses": _sum_statuses(rs),
            "runs": [dataclasses.asdict(r) | {"rps": r.rps} for r in rs],
        }
        if case in PAIRS:
            base = runs[PAIRS[case]]
            ratios = [b.rps / g.rps for g, b in zip(rs, base, strict=True)]  # slowdown
            cpu = [
                g.cpu_ms_per_request / b.cpu_ms_per_request for g, b in zip(rs, base, strict=True)
            ]
            out[case]["slowdown"] = statistics.median(ratios)
            out[case]["slowdown_range"] = (min(ratios), max(ratios))
            out[case]["cpu_ratio"] = statistics.median(cpu)
    out["_loadavg"] = loads
    return out


def _sum_statuses(rs: list[WrkResult]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in rs:
        for code, n in r.statuses.items():
            total[code] = total.get(code, 0) + n
    return total


async def measure_logins(env: Env, cfg: Config) -> dict[str, Any]:
    out = {}
    for kind in LOGINS:
        stats = {kind: LoginStats()}
        await login_load(env.gate, [kind], cfg.login_concurrency, cfg.login_seconds, stats)
        out[kind] = stats[kind].summary()
        s = out[kind]
        log(
            f"  {kind} logins: {s['per_s']:.1f}/s p50 {s['p50_ms']:.0f} ms p99 {s['p99_ms']:.0f}"
            f" ms errors {s['errors']} {s['first_errors'][:1]}"
        )
    return out


async def measure_scim(env: Env, cfg: Config) -> dict[str, Any]:
    before = await scim_count(env)
    cmd = wrk_command(
        env.scim_url + "/Users",
        "scim.lua",
        cfg.scim_seconds,
        cfg.scim_connections,
        cfg.threads,
        [f"Authorization: Bearer {env.scim_token}"],
        [f"{env.tag}-burst"],
    )
    res = await run_wrk(env.gate, cmd)
    after = await scim_count(env)
    created = res.statuses.get("201", 0)
    # wrk stops with up to one request per connection in flight: the server still creates those
    # users but wrk never counts their answers. More than that, or fewer users than 201s, is an
    # error (a user lost, or created twice).
    in_flight = after - before - created
    unaccounted = 0 if 0 <= in_flight <= cfg.scim_connections else abs(in_flight)
    out = {
        "rps": res.rps,
        "p50_ms": res.latency_us["p50"] / 1000,
        "p99_ms": res.latency_us["p99"] / 1000,
        "cpu_ms": res.cpu_ms_per_request,
        "requests": res.requests,
        "errors": res.errors,
        "statuses": res.statuses,
        "created": created,
        "listed_new": after - before,
        "unaccounted": unaccounted,
        "run": dataclasses.asdict(res),
    }
    log(
        f"  SCIM burst: {res.rps:,.0f} users/s p50 {out['p50_ms']:.1f} ms p99 "
        f"{out['p99_ms']:.1f} ms errors {res.errors}; 201s {created}, listed {after - before}"
    )
    return out


async def soak(env: Env, cfg: Config) -> dict[str, Any]:
    total = cfg.soak_minutes * 60
    warmup = min(cfg.soak_warmup, total / 3)
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    t0 = time.monotonic()
    rss_start = env.gate.rss_kib()

    async def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t0, env.gate.rss_kib()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.rss_every)

    async def traffic() -> list[WrkResult]:
        segments: list[WrkResult] = []
        while (left := total - (time.monotonic() - t0)) >= 1:
            cmd = wrk_command(
                env.gate.url + "/",
                "mixed.lua",
                min(60.0, left),
                cfg.soak_connections,
                cfg.threads,
                args=[
                    f"{env.tag}-soak{len(segments)}",
                    env.cookies["sso"],
                    env.cookies["password_gate"],
                    PREFIX,
                    urlsplit(env.scim_url).path + "/Users",
                    env.scim_token,
                ],
            )
            res = await run_wrk(env.gate, cmd)
            segments.append(res)
            log(
                f"  soak {time.monotonic() - t0:5.0f} s: {res.rps:,.0f}/s errors {res.errors} "
                f"RSS {env.gate.rss_kib() / 1024:.1f} MiB load {loadavg()[0]:.2f}"
            )
        stop.set()
        return segments

    logins = {k: LoginStats() for k in LOGINS}
    sampler = asyncio.create_task(sample())
    segments, _ = await asyncio.gather(
        traffic(),
        login_load(env.gate, list(LOGINS), cfg.soak_login_concurrency, total + 120, logins, stop),
    )
    stop.set()
    await sampler
    samples.append((time.monotonic() - t0, env.gate.rss_kib()))
    after_warmup = next(kib for t, kib in samples if t >= warmup)
    end = samples[-1][1]
    requests = sum(s.requests for s in segments)
    seconds = sum(s.seconds for s in segments)
    return {
        "minutes": cfg.soak_minutes,
        "warmup_s": warmup,
        "requests": requests,
        "rps": requests / seconds,
        "p50_ms": statistics.median(s.latency_us["p50"] for s in segments) / 1000,
        "p99_ms": max(s.latency_us["p99"] for s in segments) / 1000,
        "errors": sum(s.errors for s in segments),
        "statuses": _sum_statuses(segments),
        "segments_rps": [s.rps for s in segments],
        "logins": {k: v.summary() for k, v in logins.items()},
        "rss_mib": {
            "start": rss_start / 1024,
            "after_warmup": after_warmup / 1024,
            "end": end / 1024,
            "max": max(k for _, k in samples) / 1024,
            "growth_pct": 100 * (end - after_warmup) / after_warmup,
        },
        "rss_samples": samples,
    }


# -- report -------------------------------------------------------------------------------------


def markdown(res: dict[str, Any]) -> str:
    req, logins, scim, soak_ = res["requests"], res["logins"], res["scim"], res["soak"]
    lines = [
        f"Load average (1 min) at start {res['loadavg_start'][0]:.2f}, during the request "
        f"cases {min(req['_loadavg']):.2f}–{max(req['_loadavg']):.2f}, at end "
        f"{res['loadavg_end'][0]:.2f}; {os.cpu_count()} CPUs; database: {res['database']}; "
        f"wrk -t{res['config']['threads']} -c{res['config']['connections']}, "
        f"{res['config']['duration']:g} s × {res['config']['rounds']} rounds per case.",
        "",
        "| Case | requests/s | p50 ms | p99 ms | server CPU ms/req | slowdown vs bare "
        "(min–max) | CPU vs bare | errors / requests |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        r = req[case]
        slow = (
            f"{r['slowdown']:.2f}× ({r['slowdown_range'][0]:.2f}–{r['slowdown_range'][1]:.2f})"
            if "slowdown" in r
            else "1.00× (baseline)"
        )
        cpu = f"{r['cpu_ratio']:.2f}×" if "cpu_ratio" in r else "—"
        lines.append(
            f"| {CASE_TEXT[case]} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['cpu_ms']:.3f} | {slow} | {cpu} | {r['errors']} / {r['requests']:,} |"
        )
    lines += [
        "",
        f"SSO logins end to end ({res['config']['login_concurrency']} concurrent clients, "
        f"{res['config']['login_seconds']:g} s each; Python httpx client; a login is 5 "
        "requests for OIDC, plus the gate's own request to the dev IdP's token endpoint, "
        "and 6 for SAML):",
        "",
        "| Login | logins/s | p50 ms | p99 ms | max ms | server CPU ms/login | errors / logins |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, s in logins.items():
        lines.append(
            f"| {kind.upper()} (dev IdP) | {s['per_s']:.1f} | {s['p50_ms']:.0f} | "
            f"{s['p99_ms']:.0f} | {s['max_ms']:.0f} | {s['server_cpu_ms_per_login']:.1f} | "
            f"{s['errors']} / {s['logins'] + s['errors']:,} |"
        )
    lines += [
        "",
        f"SCIM provisioning burst (wrk -c{res['config']['scim_connections']}, "
        f"{res['config']['scim_seconds']:g} s, `POST /Users`, a new user each; the users the "
        "directory lists afterwards are the 201s plus at most one request per connection still "
        "in flight when wrk stopped):",
        "",
        "| users/s | p50 ms | p99 ms | server CPU ms/user | errors / requests | 201s | "
        "new users listed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {scim['rps']:,.0f} | {scim['p50_ms']:.1f} | {scim['p99_ms']:.1f} | "
        f"{scim['cpu_ms']:.2f} | {scim['errors']} / {scim['requests']:,} | {scim['created']:,} | "
        f"{scim['listed_new']:,} |",
    ]
    m = soak_["rss_mib"]
    sl = soak_["logins"]
    lines += [
        "",
        f"Soak: {soak_['minutes']:g} min of mixed traffic "
        f"(wrk -c{res['config']['soak_connections']} `mixed.lua`: 45% anonymous, "
        "30% SSO cookie, 15% password cookie, 5% `/sso/me`, 5% "
        f"SCIM POST) + {res['config']['soak_login_concurrency']} login clients (OIDC and SAML "
        f"alternating); RSS of the gate process sampled every {res['config']['rss_every']:g} s, "
        f"growth measured from the end of a {soak_['warmup_s']:g} s warm-up:",
        "",
        "| requests | requests/s (per-minute min–max) | p50 ms | worst p99 ms | errors | logins "
        "(errors) | RSS start | after warm-up | end | max | growth | < 10% |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {soak_['requests']:,} | {soak_['rps']:,.0f} ({min(soak_['segments_rps']):,.0f}–"
        f"{max(soak_['segments_rps']):,.0f}) | {soak_['p50_ms']:.2f} | {soak_['p99_ms']:.1f} | "
        f"{soak_['errors']} | {sum(v['logins'] for v in sl.values()):,} "
        f"({sum(v['errors'] for v in sl.values())}) | {m['start']:.1f} MiB | "
        f"{m['after_warmup']:.1f} MiB | {m['end']:.1f} MiB | {m['max']:.1f} MiB | "
        f"{m['growth_pct']:+.1f}% | {'yes' if m['growth_pct'] < 10 else '**no**'} |",
        "",
        f"Errors in all: {res['errors']} (non-2xx/3xx responses, socket errors, failed logins); "
        f"server log lines with a traceback or ERROR: {res['server_log_errors']}.",
    ]
    return "\n".join(lines)


def count_log_errors(servers: list[Server]) -> int:
    n = 0
    for s in servers:
        for line in s.log_text().splitlines():
            if "Traceback" in line or "ERROR" in line:
                n += 1
    return n


@contextlib.contextmanager
def servers(cfg: Config, workdir: Path) -> Iterator[tuple[Server, Server, str]]:
    admin_key = secrets.token_urlsafe(24)
    db = cfg.postgres or f"sqlite:///{workdir / 'gate.db'}"
    started: list[Server] = []
    try:
        gate = Server("gate", db, admin_key, workdir)
        started.append(gate)
        bare = Server("bare", f"sqlite:///{workdir / 'unused.db'}", admin_key, workdir)
        started.append(bare)
        gate.wait_ready()
        bare.wait_ready()
        yield gate, bare, admin_key
    finally:
        for s in started:
            s.stop()


async def run(cfg: Config, workdir: Path) -> dict[str, Any]:
    res: dict[str, Any] = {
        "config": dataclasses.asdict(cfg) | {"postgres": bool(cfg.postgres)},
        "database": "PostgreSQL" if cfg.postgres else "SQLite",
        "loadavg_start": loadavg(),
    }
    with servers(cfg, workdir) as (gate, bare, admin_key):
        log(f"gate {gate.url} (pid {gate.proc.pid}), bare {bare.url} (pid {bare.proc.pid})")
        env = await prepare(gate, bare, admin_key)
        log("requests:")
        res["requests"] = await measure_requests(env, cfg)
        log("logins:")
        res["logins"] = await measure_logins(env, cfg)
        log("SCIM burst:")
        res["scim"] = await measure_scim(env, cfg)
        log(f"soak ({cfg.soak_minutes:g} min):")
        res["soak"] = await soak(env, cfg)
        res["server_log_errors"] = count_log_errors([gate, bare])
        if res["server_log_errors"]:
            log("server log errors:\n" + gate.log_text()[-5000:] + bare.log_text()[-2000:])
    res["loadavg_end"] = loadavg()
    res["errors"] = (
        sum(v["errors"] for k, v in res["requests"].items() if not k.startswith("_"))
        + sum(v["errors"] for v in res["logins"].values())
        + res["scim"]["errors"]
        + res["scim"]["unaccounted"]
        + res["soak"]["errors"]
        + sum(v["errors"] for v in res["soak"]["logins"].values())
    )
    return res


def parse_args(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    p.add_argument("--postgres", metavar="URL", help="gate database (default: SQLite file)")
    p.add_argument("--soak-minutes", type=float)
    p.add_argument("--duration", type=float, help="seconds per wrk run of a request case")
    p.add_argument("--rounds", type=int)
    p.add_argument("--login-seconds", type=float)
    p.add_argument("--scim-seconds", type=float)
    p.add_argument("--soak-warmup", type=float, help="seconds of the soak excluded from growth")
    p.add_argument("--json", metavar="PATH", help="also write the raw numbers here")
    a = p.parse_args(argv)
    cfg = dataclasses.replace(QUICK) if a.quick else Config()
    for name in ("soak_minutes", "duration", "rounds", "login_seconds", "scim_seconds"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    if a.soak_warmup is not None:
        cfg.soak_warmup = a.soak_warmup
    cfg.postgres = a.postgres
    return cfg, a


def main(argv: list[str] | None = None) -> dict[str, Any]:
    cfg, a = parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="sso_gate_load_") as tmp:
        res = asyncio.run(run(cfg, Path(tmp)))
    report = markdown(res)
    print(report)
    if a.json:
        Path(a.json).write_text(json.dumps(res | {"markdown": report}, indent=1))
    return res


if __name__ == "__main__":
    main()
