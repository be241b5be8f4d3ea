"""In-process benchmark of the SCIM 2.0 endpoints (see ``benchmarks/README.md``).

Every request is a direct call of ``gate.wrap(app)`` with a hand-built ASGI scope (no server, no
sockets), authenticated with the directory's bearer token, on a real SQLite file and, when a URL
is given, a real PostgreSQL database. Three things are measured:

1. ``GET /Users?filter=userName eq "…"`` with 100,000 users in the directory (target ≤ 5 ms);
2. ``PATCH /Groups/{id}`` adding one member to a group of 10 vs 10,000 members (target: the
   large group ≤ 2× the small one): as Okta and Entra ID send it (answered 204 No Content),
   with ``?excludedAttributes=members`` (200, the group without its members) and with
   ``?attributes=members`` (200 and every member, with its ``display``, which naming
   ``members`` asks for: O(members) by definition, reported);
3. provisioning 10,000 users by sequential ``POST /Users`` (target ≤ 60 s on SQLite).

The cases run interleaved, round after round (the order rotates each round, both backends in
the same rounds); each figure is the median over the rounds, each ratio the median of the
per-round ratios. On a shared, noisy machine only the ratios are meant to be compared.

    .venv/bin/python benchmarks/bench_scim.py                      # full run, SQLite only
    .venv/bin/python benchmarks/bench_scim.py --postgres postgresql://postgres@127.0.0.1/scim_bench
    .venv/bin/python benchmarks/bench_scim.py --quick              # smoke run (~10 s)

The PostgreSQL database must exist and be disposable: the benchmark creates its tables there
and drops them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Run from a checkout without relying on the editable install's import hook.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from sso_gate import SSOGate  # noqa: E402
from sso_gate._ids import new_id  # noqa: E402
from sso_gate.models import Directory  # noqa: E402
from sso_gate.scim import schema as scim_schema  # noqa: E402
from sso_gate.services._scim_store import user_columns  # noqa: E402
from sso_gate.settings import Secret, Settings  # noqa: E402
from sso_gate.store.tables import (  # noqa: E402
    directory_group_members,
    directory_users,
    events,
    metadata,
)

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# Case names (also the keys of the JSON output), per backend.
LOOKUP = "lookup"
PATCH_SMALL = "patch_small"
PATCH_BIG = "patch_big"
PATCH_SMALL_EXCL = "patch_small_excluded"
PATCH_BIG_EXCL = "patch_big_excluded"
PATCH_SMALL_MEMBERS = "patch_small_members"
PATCH_BIG_MEMBERS = "patch_big_members"
CREATE = "create"
TIMED_CASES = (
    LOOKUP,
    PATCH_SMALL,
    PATCH_BIG,
    PATCH_SMALL_EXCL,
    PATCH_BIG_EXCL,
    PATCH_SMALL_MEMBERS,
    PATCH_BIG_MEMBERS,
)
# The PATCH variants: the query string of each (the default answers 204 No Content).
VARIANTS = {
    "default": "",
    "excluded": "excludedAttributes=members",
    "members": "attributes=members",
}
# (small, big) case names per variant, in report order.
PATCH_PAIRS = {
    "default": (PATCH_SMALL, PATCH_BIG),
    "excluded": (PATCH_SMALL_EXCL, PATCH_BIG_EXCL),
    "members": (PATCH_SMALL_MEMBERS, PATCH_BIG_MEMBERS),
}

# The peers, quoted from DESIGN §5 (measured there over HTTP, one server process, one request
# at a time, 10k users), not re-measured here.
PEERS = {
    "polis_memory": {"lookups_s": 1359, "creates_s": 1245, "member_adds_s": 1000},
    "polis_sqlite": {"writes_s": (180, 245), "lookups_s": (700, 970)},
    "scim2_server": {"lookups_s": 270, "creates_s": 385, "member_add_s": (200, 0.7)},
}


# -- hand-built ASGI plumbing -----------------------------------------------------------------


def user_body(i: int, tag: str = "") -> dict[str, Any]:
    """What Okta sends to create a user (plus an enterprise extension, as Entra ID does)."""
    user_name = f"{tag}user{i:06d}@bench.example.com"
    return {
        "schemas": [USER, scim_schema.ENTERPRISE_USER_SCHEMA],
        "userName": user_name,
        "externalId": f"00u{tag}{i:07d}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "displayName": f"Given{i} Family{i}",
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "active": True,
        "locale": "en-US",
        scim_schema.ENTERPRISE_USER_SCHEMA: {"department": f"Dept {i % 40}"},
    }


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Direct ASGI calls of the wrapped app, each with the directory's bearer token."""

    def __init__(self, app: ASGIApp, base_path: str, token: str) -> None:
        self.app = app
        self.base_path = base_path
        self.auth = f"Bearer {token}".encode()

    def scope(self, method: str, path: str, query: str, body: bytes) -> dict[str, Any]:
        full = self.base_path + path
        headers = [
            (b"host", b"app.test"),
            (b"user-agent", b"Okta SCIM Client 1.0.0"),
            (b"accept", b"application/scim+json"),
            (b"authorization", self.auth),
        ]
        if body:
            headers += [
                (b"content-type", b"application/scim+json; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ]
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": full,
            "raw_path": full.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("app.test", 80),
        }

    async def timed(
        self, method: str, path: str, query: str = "", data: Any = None
    ) -> tuple[float, Reply]:
        """One request; returns (µs from the call to the end of the response, the response)."""
        body = b"" if data is None else json.dumps(data).encode()
        scope = self.scope(method, path, query, body)
        sent = False
        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.update((k.decode(), v.decode()) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        t0 = time.perf_counter_ns()
        await self.app(scope, receive, send)
        us = (time.perf_counter_ns() - t0) / 1000
        return us, Reply(status, headers, b"".join(chunks))

    async def call(self, method: str, path: str, query: str = "", data: Any = None) -> Reply:
        return (await self.timed(method, path, query, data))[1]


def filter_query(user_name: str, extra: str = "") -> str:
    return "filter=" + quote(f'userName eq "{user_name}"') + extra


def add_member_body(user_id: str) -> dict[str, Any]:
    """Okta's member add (Entra ID sends the same with ``"op": "Add"``)."""
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
    }


# -- environment ------------------------------------------------------------------------------


def make_settings(database_url: str) -> Settings:
    return Settings(
        secret_keys=(Secret("k1-" + secrets.token_urlsafe(24)),),
        base_url="http://app.test",
        database_url=database_url,
        environment="development",
        admin_api_key=Secret("bench-admin-key-0123456789"),
        # one client address sends every request: measure the endpoints, not the 429s
        rate_limits=False,
    )


@dataclass
class Backend:
    """One database with its gate, a directory of ``users`` users and the two groups."""

    name: str  # "SQLite" / "PostgreSQL"
    gate: SSOGate
    client: Client
    directory: Directory
    user_names: list[str]
    user_ids: list[str]
    small_group: str
    big_group: str
    small_members: int
    big_members: int
    spare: list[str]  # users in neither group: the members the timed PATCHes add
    provision: Client  # a second, empty directory for the POST /Users case
    provision_dir: str
    created: int = 0
    cases: dict[str, Callable[[int], Awaitable[list[float]]]] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.gate.aclose()


async def bulk_users(gate: SSOGate, directory: Directory, count: int, batch: int = 5_000) -> None:
    """``count`` users, as ``POST /Users`` would store them (validated resource, the columns
    ``user_columns`` derives), bulk-inserted with SQLAlchemy Core. No events are written."""
    now = datetime.now(UTC)
    async with gate._rt.engine.begin() as conn:
        for start in range(0, count, batch):
            rows = []
            for i in range(start, min(start + batch, count)):
                resource = scim_schema.validate_resource(scim_schema.USER_TYPE, user_body(i))
                rows.append(
                    {
                        "id": new_id("directory_user"),
                        "directory_id": directory.id,
                        "organization_id": directory.organization_id,
                        **user_columns(resource),
                        "resource": resource,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            await conn.execute(sa.insert(directory_users), rows)


async def build_backend(url: str, users: int, small: int, big: int) -> Backend:
    """A migrated database with ``users`` users in a directory, a group of ``small`` and one of
    ``big`` members, and a second, empty directory; the tables must not exist yet."""
    gate = SSOGate(make_settings(url))
    await gate.migrate()
    org = await gate.organizations.create("Bench Corp", domains=["bench.example.com"])
    directory, token = await gate.directories.create(org.id, type="okta scim v2.0")
    prov_dir, prov_token = await gate.directories.create(org.id, type="okta scim v2.0")
    wrapped = gate.wrap(Starlette(routes=[Route("/", hello)]))
    prefix = gate.settings.prefix
    client = Client(wrapped, f"{prefix}/scim/v2/{directory.id}", token)
    provision = Client(wrapped, f"{prefix}/scim/v2/{prov_dir.id}", prov_token)

    await bulk_users(gate, directory, users)
    async with gate._rt.read() as conn:
        rows = (
            await conn.execute(
                sa.select(directory_users.c.id, directory_users.c.user_name)
                .where(directory_users.c.directory_id == directory.id)
                .order_by(directory_users.c.id)
            )
        ).all()
    user_ids = [r[0] for r in rows]
    user_names = [r[1] for r in rows]

    # The groups are created through the API, then filled with direct membership inserts.
    groups = []
    for label in ("Small team", "Everyone"):
        r = await client.call("POST", "/Groups", data={"schemas": [GROUP], "displayName": label})
        assert r.status == 201, r.body
        groups.append(r.json()["id"])
    small = min(small, users // 4)
    big = min(big, users // 2)
    rng = random.Random(7)
    shuffled = user_ids[:]
    rng.shuffle(shuffled)
    members = {groups[0]: shuffled[:small], groups[1]: shuffled[small : small + big]}
    async with gate._rt.engine.begin() as conn:
        for gid, uids in members.items():
            await conn.execute(
                sa.insert(directory_group_members),
                [{"group_id": gid, "user_id": u, "directory_id": directory.id} for u in uids],
            )
    if gate._rt.engine.dialect.name == "postgresql":
        async with gate._rt.engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE"))
    return Backend(
        name="PostgreSQL" if gate._rt.engine.dialect.name == "postgresql" else "SQLite",
        gate=gate,
        client=client,
        directory=directory,
        user_names=user_names,
        user_ids=user_ids,
        small_group=groups[0],
        big_group=groups[1],
        small_members=small,
        big_members=big,
        spare=shuffled[small + big :],
        provision=provision,
        provision_dir=prov_dir.id,
    )


async def member_count(b: Backend, gid: str) -> int:
    async with b.gate._rt.read() as conn:
        stmt = sa.select(sa.func.count()).where(directory_group_members.c.group_id == gid)
        return int((await conn.execute(stmt)).scalar_one())


async def drop_membership(b: Backend, gid: str, uids: list[str]) -> None:
    """Put a group back to its size after timed adds (outside the timing)."""
    async with b.gate._rt.engine.begin() as conn:
        await conn.execute(
            sa.delete(directory_group_members).where(
                directory_group_members.c.group_id == gid,
                directory_group_members.c.user_id.in_(uids),
            )
        )


# -- checks -----------------------------------------------------------------------------------


async def check(b: Backend) -> None:
    """Every case does what it claims, before anything is timed."""
    c = b.client
    # A bulk-loaded user reads back exactly like one created through POST /Users.
    posted = await c.call("POST", "/Users", data=user_body(0, tag="check"))
    assert posted.status == 201, posted.body
    i = b.user_ids.index(b.spare[-1])  # a user in no group (the timed PATCHes add spares)
    r = await c.call("GET", "/Users", filter_query(b.user_names[i]))
    assert r.status == 200 and r.headers["content-type"].startswith("application/scim+json")
    page = r.json()
    assert page["schemas"] == [LIST] and page["totalResults"] == 1, page
    found = page["Resources"][0]
    assert found["id"] == b.user_ids[i] and found["userName"] == b.user_names[i]
    via_post = posted.json()

    def shape(resource: dict[str, Any]) -> Any:
        return sorted(resource), sorted(resource["meta"]), resource["schemas"]

    assert shape(found) == shape(via_post), (shape(found), shape(via_post))
    assert found["name"] == user_body(i)["name"] and "groups" not in found
    # Filters match userName case-insensitively (RFC 7643 caseExact=false); unknown: empty.
    r = await c.call("GET", "/Users", filter_query(b.user_names[i].upper()))
    assert r.json()["totalResults"] == 1
    r = await c.call("GET", "/Users", filter_query("nobody@bench.example.com"))
    assert r.status == 200 and r.json()["totalResults"] == 0
    deleted = await c.call("DELETE", f"/Users/{via_post['id']}")
    assert deleted.status == 204

    # The groups have the sizes the case names claim.
    assert await member_count(b, b.small_group) == b.small_members
    assert await member_count(b, b.big_group) == b.big_members
    for gid, size in ((b.small_group, b.small_members), (b.big_group, b.big_members)):
        uid = b.spare[0]
        before = await events_count(b, "dsync.group.user_added")
        # As the IdPs send it: 204 No Content and the new version's ETag.
        r = await c.call("PATCH", f"/Groups/{gid}", data=add_member_body(uid))
        assert r.status == 204 and r.body == b"", r.body
        got = (await c.call("GET", f"/Groups/{gid}")).json()
        assert r.headers["etag"] == got["meta"]["version"]
        assert len(got["members"]) == size + 1 and uid in {m["value"] for m in got["members"]}
        assert await member_count(b, gid) == size + 1
        assert await events_count(b, "dsync.group.user_added") == before + 1
        # The same add again changes no membership (idempotent), and no event.
        r = await c.call("PATCH", f"/Groups/{gid}", data=add_member_body(uid))
        assert r.status == 204 and await member_count(b, gid) == size + 1
        assert await events_count(b, "dsync.group.user_added") == before + 1
        await drop_membership(b, gid, [uid])
        r = await c.call("PATCH", f"/Groups/{gid}", VARIANTS["excluded"], add_member_body(uid))
        assert r.status == 200, r.body
        assert "members" not in r.json() and r.json()["id"] == gid, r.json()
        assert await member_count(b, gid) == size + 1
        assert await events_count(b, "dsync.group.user_added") == before + 2
        await drop_membership(b, gid, [uid])
        r = await c.call("PATCH", f"/Groups/{gid}", VARIANTS["members"], add_member_body(uid))
        assert r.status == 200, r.body
        members = r.json()["members"]
        assert len(members) == size + 1 and uid in {m["value"] for m in members}
        assert await events_count(b, "dsync.group.user_added") == before + 3
        await drop_membership(b, gid, [uid])
        r = await c.call("GET", f"/Groups/{gid}")
        assert len(r.json()["members"]) == size

    # Provisioning: a POST creates the user (and its event); a second is a 409.
    body = user_body(0, tag="prov-check")
    r = await b.provision.call("POST", "/Users", data=body)
    assert r.status == 201 and r.json()["userName"] == body["userName"], r.body
    assert r.headers["location"].endswith(r.json()["id"])
    assert (await b.provision.call("POST", "/Users", data=body)).status == 409
    assert (await b.provision.call("DELETE", f"/Users/{r.json()['id']}")).status == 204


async def events_count(b: Backend, name: str) -> int:
    async with b.gate._rt.read() as conn:
        stmt = sa.select(sa.func.count()).where(events.c.event == name)
        return int((await conn.execute(stmt)).scalar_one())


# -- cases ------------------------------------------------------------------------------------


def lookup_case(b: Backend, seed: int = 11) -> Callable[[int], Awaitable[list[float]]]:
    """``n`` lookups of random existing userNames; µs of each."""
    rng = random.Random(seed)
    names, ids = b.user_names, b.user_ids

    async def run(n: int) -> list[float]:
        out = []
        for _ in range(n):
            k = rng.randrange(len(names))
            us, r = await b.client.timed("GET", "/Users", filter_query(names[k]))
            out.append(us)
            page = r.json()
            assert r.status == 200 and page["totalResults"] == 1, r.body
            assert page["Resources"][0]["id"] == ids[k]
        return out

    return run


def patch_case(b: Backend, big: bool, variant: str) -> Callable[[int], Awaitable[list[float]]]:
    """``n`` PATCHes, each adding one new member, with the query of ``variant`` (see
    ``VARIANTS``); the group is put back after the block."""
    gid = b.big_group if big else b.small_group
    size = b.big_members if big else b.small_members
    query = VARIANTS[variant]
    rng = random.Random(hash((big, variant)) & 0xFFFF)

    async def run(n: int) -> list[float]:
        added = rng.sample(b.spare, n)
        out = []
        for uid in added:
            us, r = await b.client.timed("PATCH", f"/Groups/{gid}", query, add_member_body(uid))
            out.append(us)
            if variant == "default":
                assert r.status == 204 and r.body == b"" and r.headers["etag"], r.body
            elif variant == "members":
                assert r.status == 200 and len(r.json()["members"]) == size + len(out), r.body
            else:
                assert r.status == 200 and b'"members"' not in r.body, r.body
        await drop_membership(b, gid, added)
        return out

    return run


def create_case(b: Backend) -> Callable[[int], Awaitable[list[float]]]:
    """``n`` sequential ``POST /Users`` of new users (Okta's body) into the empty directory."""

    async def run(n: int) -> list[float]:
        out = []
        for _ in range(n):
            body = user_body(b.created, tag="p")
            b.created += 1
            us, r = await b.provision.timed("POST", "/Users", data=body)
            out.append(us)
            assert r.status == 201, r.body
        return out

    return run


# -- driver -----------------------------------------------------------------------------------


@dataclass
class Config:
    users: int = 100_000
    small: int = 10
    big: int = 10_000
    rounds: int = 20
    lookups: int = 50  # per round and backend
    patches: int = 10  # per round, backend and variant
    provision: int = 10_000  # users created per backend
    provision_rounds: int = 10
    warmup: int = 20
    profile: int = 200  # requests per profiled case (--top)


QUICK = Config(users=2_000, big=500, rounds=3, lookups=20, patches=5, provision=300,
               provision_rounds=3, warmup=5, profile=30)  # fmt: skip


def median_ms(values: list[float]) -> float:
    return statistics.median(values) / 1000


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def measure(
    backends: list[Backend], cfg: Config, log: Callable[[str], None] = print
) -> dict[str, Any]:
    for b in backends:
        b.cases = {LOOKUP: lookup_case(b)}
        for variant, (small, big) in PATCH_PAIRS.items():
            b.cases[small] = patch_case(b, big=False, variant=variant)
            b.cases[big] = patch_case(b, big=True, variant=variant)
        for case in b.cases.values():
            await case(cfg.warmup)
    jobs = [(b, name) for b in backends for name in TIMED_CASES]
    per_round: dict[str, dict[str, list[float]]] = {
        b.name: {n: [] for n in TIMED_CASES} for b in backends
    }
    every: dict[str, dict[str, list[float]]] = {
        b.name: {n: [] for n in TIMED_CASES} for b in backends
    }
    for r in range(cfg.rounds):
        order = jobs[r % len(jobs) :] + jobs[: r % len(jobs)]
        for b, name in order if r % 2 == 0 else order[::-1]:
            gc.collect()
            n = cfg.lookups if name == LOOKUP else cfg.patches
            times = await b.cases[name](n)
            per_round[b.name][name].append(statistics.median(times))
            every[b.name][name].extend(times)
        if r % 5 == 4 or r == cfg.rounds - 1:
            log(
                f"round {r + 1}/{cfg.rounds}: "
                + "; ".join(
                    f"{b.name} "
                    + ", ".join(f"{k}={per_round[b.name][k][-1] / 1000:.2f}ms" for k in TIMED_CASES)
                    for b in backends
                )
            )

    # Provisioning: blocks of sequential POST /Users, the backends alternating.
    create_blocks: dict[str, list[tuple[int, float]]] = {b.name: [] for b in backends}
    create_all: dict[str, list[float]] = {b.name: [] for b in backends}
    creators = {b.name: create_case(b) for b in backends}
    block = max(1, cfg.provision // cfg.provision_rounds)
    for r in range(cfg.provision_rounds):
        for b in backends if r % 2 == 0 else backends[::-1]:
            gc.collect()
            n = block if r < cfg.provision_rounds - 1 else cfg.provision - block * r
            t0 = time.perf_counter()
            times = await creators[b.name](n)
            create_blocks[b.name].append((n, time.perf_counter() - t0))
            create_all[b.name].extend(times)
        log(
            f"provisioning block {r + 1}/{cfg.provision_rounds}: "
            + ", ".join(
                f"{b.name} {n / t:.0f} users/s"
                for b in backends
                for n, t in create_blocks[b.name][-1:]
            )
        )

    results: dict[str, Any] = {}
    for b in backends:
        pr, ev = per_round[b.name], every[b.name]
        ratio = {}
        for small, big in PATCH_PAIRS.values():
            each = sorted(x / y for x, y in zip(pr[big], pr[small], strict=True))
            ratio[big] = {
                "median": statistics.median(each),
                "iqr": (_pct(each, 0.25), _pct(each, 0.75)),
            }
        blocks = create_blocks[b.name]
        total_s = sum(t for _, t in blocks)
        created = sum(n for n, _ in blocks)
        rates = [n / t for n, t in blocks]
        results[b.name] = {
            "users": len(b.user_ids),
            "small_members": b.small_members,
            "big_members": b.big_members,
            "median_ms": {k: statistics.median(v) / 1000 for k, v in pr.items()},
            "p90_ms": {k: _pct(v, 0.9) / 1000 for k, v in ev.items()},
            "iqr_ms": {k: (_pct(v, 0.25) / 1000, _pct(v, 0.75) / 1000) for k, v in pr.items()},
            "per_round_ms": {k: [x / 1000 for x in v] for k, v in pr.items()},
            "ratio": ratio,
            "create": {
                "users": created,
                "total_s": total_s,
                "users_per_s": created / total_s,
                "block_rates": rates,
                "median_block_rate": statistics.median(rates),
                "median_ms": median_ms(create_all[b.name]),
                "p90_ms": _pct(create_all[b.name], 0.9) / 1000,
                # what 10,000 sequential creations take at the measured rate
                "seconds_per_10k": 10_000 * total_s / created,
            },
        }
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "event_loop": type(asyncio.get_running_loop()).__module__,
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "config": cfg.__dict__,
        "backends": results,
        "peers": PEERS,
    }


async def profile(b: Backend, cfg: Config, top: int) -> str:
    """cProfile of ``cfg.profile`` requests of each case: the ``top`` functions by own time."""
    out = []
    cases = {
        LOOKUP: lookup_case(b, seed=99),
        PATCH_BIG: patch_case(b, big=True, variant="default"),
        PATCH_BIG_EXCL: patch_case(b, big=True, variant="excluded"),
        PATCH_BIG_MEMBERS: patch_case(b, big=True, variant="members"),
        CREATE: create_case(b),
    }
    for name, case in cases.items():
        n = cfg.profile if name in (LOOKUP, CREATE) else max(5, cfg.profile // 10)
        prof = cProfile.Profile()
        prof.enable()
        await case(n)
        prof.disable()
        stats = pstats.Stats(prof)
        lines = [f"### {b.name} {name}: {n} requests, top {top} by internal time"]
        stats.sort_stats("tottime")
        width = stats.total_tt  # type: ignore[attr-defined]
        for func, (_cc, nc, tt, ct, _callers) in sorted(
            stats.stats.items(),  # type: ignore[attr-defined]
            key=lambda kv: -kv[1][2],
        )[:top]:
            filename, line, fn = func
            where = f"{Path(filename).name}:{line}({fn})" if line else fn
            lines.append(
                f"{tt / width * 100:5.1f}%  {tt / n * 1e6:8.1f} µs/req  calls/req {nc / n:7.1f}"
                f"  cum {ct / n * 1e6:8.1f} µs/req  {where}"
            )
        out.append("\n".join(lines))
    return "\n\n".join(out)


def markdown(res: dict[str, Any]) -> str:
    names = list(res["backends"])
    lines = [
        "| Case | " + " | ".join(f"{n} median (p90)" for n in names) + " | Target | Result |",
        "|---|" + "---:|" * len(names) + "---|---|",
    ]

    def row(label: str, cells: list[str], target: str, result: str) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} | {result} |")

    def verdict(oks: list[bool]) -> str:
        return "pass" if all(oks) else "**FAIL**"

    bk = res["backends"]
    first = bk[names[0]]
    ms = [f"{bk[n]['median_ms'][LOOKUP]:.2f} ms ({bk[n]['p90_ms'][LOOKUP]:.2f})" for n in names]
    row(
        f'`GET /Users?filter=userName eq "…"`, {first["users"]:,} users',
        ms,
        "≤ 5 ms",
        verdict([bk[n]["median_ms"][LOOKUP] <= 5.0 for n in names]),
    )
    labels = {
        "default": "default (204 No Content)",
        "excluded": "`?excludedAttributes=members` (200)",
        "members": "`?attributes=members` (200, every member with its `display`)",
    }
    for variant, (small, big) in PATCH_PAIRS.items():
        label = labels[variant]
        row(
            f"`PATCH /Groups/{{id}}` add 1 member, {first['small_members']} members, {label}",
            [f"{bk[n]['median_ms'][small]:.2f} ms ({bk[n]['p90_ms'][small]:.2f})" for n in names],
            "report",
            "—",
        )
        row(
            f"`PATCH /Groups/{{id}}` add 1 member, {first['big_members']:,} members, {label}",
            [f"{bk[n]['median_ms'][big]:.2f} ms ({bk[n]['p90_ms'][big]:.2f})" for n in names],
            "report",
            "—",
        )
        ratio = [bk[n]["ratio"][big] for n in names]
        ok = [r["median"] <= 2.0 for r in ratio]
        row(
            f"ratio {first['big_members']:,} / {first['small_members']} members, {label}",
            [f"{r['median']:.2f}× ({r['iqr'][0]:.2f}–{r['iqr'][1]:.2f})" for r in ratio],
            "≤ 2×" if variant != "members" else "report",
            # Asking for the members lists every one: O(members) by definition.
            verdict(ok) if variant != "members" else "— (lists every member)",
        )
    cr = [bk[n]["create"] for n in names]
    row(
        f"`POST /Users`, {cr[0]['users']:,} users one after another: users/s",
        [f"{c['users_per_s']:.0f} (median {c['median_ms']:.2f} ms/user)" for c in cr],
        "report",
        "—",
    )
    row(
        f"… total seconds for {cr[0]['users']:,} users",
        [f"{c['total_s']:.1f} s" for c in cr],
        "≤ 60 s for 10,000 (SQLite)",
        verdict(
            [c["seconds_per_10k"] <= 60.0 for c, n in zip(cr, names, strict=True) if n == "SQLite"]
        ),  # fmt: skip
    )
    return "\n".join(lines)


async def drop_postgres_tables(url: str) -> None:
    """Leave the (disposable) PostgreSQL database empty, as it was found."""
    from sso_gate.store.db import create_engine

    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    await engine.dispose()


async def main_async(
    cfg: Config, postgres: str | None, json_path: str | None, top: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sso_gate_bench_scim_") as d:
        urls = [f"sqlite:///{Path(d) / 'bench.db'}"]
        if postgres:
            await drop_postgres_tables(postgres)  # leftovers of an interrupted run
            urls.append(postgres)
        backends: list[Backend] = []
        try:
            for url in urls:
                t0 = time.perf_counter()
                b = await build_backend(url, cfg.users, cfg.small, cfg.big)
                backends.append(b)
                print(
                    f"{b.name}: {cfg.users:,} users, groups of {b.small_members} and"
                    f" {b.big_members:,} loaded in {time.perf_counter() - t0:.1f} s"
                )
                await check(b)
            res = await measure(backends, cfg)
            if top:
                for b in backends:
                    print()
                    print(await profile(b, cfg, top))
        finally:
            for b in backends:
                await b.aclose()
            if postgres:
                await drop_postgres_tables(postgres)
    print()
    print(
        f"Python {res['python']} ({res['implementation']}), event loop: {res['event_loop']}, "
        f"{res['cpus']} CPUs, load {res['load'][0]:.2f}, {res['date']}; {cfg.rounds} rounds × "
        f"{cfg.lookups} lookups and {cfg.patches} PATCHes per variant; provisioning in "
        f"{cfg.provision_rounds} blocks"
    )
    print(markdown(res))
    if json_path:
        Path(json_path).write_text(json.dumps(res, indent=2))
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fast smoke run (small counts)")
    p.add_argument("--postgres", metavar="URL", help="also run on this (disposable) database")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 20)")
    p.add_argument("--users", type=int, help="users in the directory (default 100000)")
    p.add_argument("--provision", type=int, help="users created by POST (default 10000)")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--top", type=int, default=0, help="cProfile each case, print top N functions")
    args = p.parse_args(argv)
    cfg = Config(**QUICK.__dict__) if args.quick else Config()
    for attr in ("rounds", "users", "provision"):
        if getattr(args, attr) is not None:
            setattr(cfg, attr, getattr(args, attr))
    asyncio.run(main_async(cfg, args.postgres, args.json, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
