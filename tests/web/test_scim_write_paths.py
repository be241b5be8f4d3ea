"""SCIM write paths as the hot-path work left them (``benchmarks/bench_scim.py``): the request
log (one entry per write, written in the write's transaction; failures logged after the
rollback), responses that leave out ``members``/``groups`` (not loaded, same bytes otherwise),
group PATCHes answered 204 No Content unless ``attributes``/``excludedAttributes`` ask for the
resource, member events, and a PUT that replaces a large membership."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sso_gate.store.tables import directory_group_members, events, scim_requests
from tests.web.conftest import Env, make_env

pytestmark = pytest.mark.anyio
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Client:
    def __init__(self, env: Env, directory_id: str, token: str) -> None:
        self.env = env
        self.gate = env.gate
        self.base = f"/sso-gate/scim/v2/{directory_id}"
        self.directory_id = directory_id
        self.token = token

    async def __call__(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return await self.env.client.request(
            method, self.base + path, json=json, headers=headers, **kw
        )

    async def user(self, name: str) -> dict[str, Any]:
        body = {
            "schemas": [USER],
            "userName": name,
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": name, "type": "work", "primary": True}],
        }
        r = await self("POST", "/Users", body)
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created

    async def log(self) -> list[tuple[str, str, int, str | None]]:
        async with self.gate._rt.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(scim_requests)
                    .where(scim_requests.c.directory_id == self.directory_id)
                    .order_by(scim_requests.c.id)
                )
            ).all()
        return [(r.method, r.path.removeprefix(self.base), r.status, r.error) for r in rows]

    async def events(self, name: str) -> list[dict[str, Any]]:
        async with self.gate._rt.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(events.c.data).where(events.c.event == name).order_by(events.c.id)
                )
            ).all()
        return [r[0] for r in rows]


@pytest.fixture(params=["returning", "no_returning"])
async def scim(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    env = await make_env(database_url)
    if request.param == "no_returning":  # as on SQLite < 3.35: written rows are read back
        dialect = env.gate._rt.engine.dialect
        dialect.insert_returning = dialect.update_returning = False
    d, token = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    yield Client(env, d.id, token)
    await env.client.aclose()
    await env.gate.aclose()


async def test_request_log_has_one_entry_per_request(scim: Client) -> None:
    u = await scim.user("ann@acme.test")
    uid = u["id"]
    dup = await scim("POST", "/Users", {"schemas": [USER], "userName": "ANN@acme.test"})
    assert dup.status_code == 409
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "X"}]}
    assert (await scim("PATCH", f"/Users/{uid}", body)).status_code == 200
    assert (await scim("PATCH", f"/Users/{uid}", body)).status_code == 200  # no-op
    put = {"schemas": [USER], "userName": "ann@acme.test", "title": "Y"}
    assert (await scim("PUT", f"/Users/{uid}", put)).status_code == 200
    stale = await scim("PUT", f"/Users/{uid}", put, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    bad = {"schemas": [PATCH], "Operations": [{"op": "jump", "path": "title"}]}
    assert (await scim("PATCH", f"/Users/{uid}", bad)).status_code == 400
    assert (await scim("GET", f"/Users/{uid}")).status_code == 200
    assert (await scim("GET", "/Users/directory_user_nope")).status_code == 404
    g = await scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "Team"})
    gid = g.json()["id"]
    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}  # fmt: skip
    assert (
        await scim("PATCH", f"/Groups/{gid}?excludedAttributes=members", add)
    ).status_code == 200
    assert (await scim("PATCH", f"/Groups/{gid}", add)).status_code == 204  # no body asked for
    assert (await scim("DELETE", f"/Groups/{gid}")).status_code == 204
    assert (await scim("DELETE", f"/Users/{uid}")).status_code == 204
    assert (await scim("DELETE", f"/Users/{uid}")).status_code == 404

    log = await scim.log()
    assert [(m, p, s) for m, p, s, _ in log] == [
        ("POST", "/Users", 201),
        ("POST", "/Users", 409),
        ("PATCH", f"/Users/{uid}", 200),
        ("PATCH", f"/Users/{uid}", 200),
        ("PUT", f"/Users/{uid}", 200),
        ("PUT", f"/Users/{uid}", 412),
        ("PATCH", f"/Users/{uid}", 400),
        ("GET", "/Users/directory_user_nope", 404),
        ("POST", "/Groups", 201),
        ("PATCH", f"/Groups/{gid}", 200),
        ("PATCH", f"/Groups/{gid}", 204),
        ("DELETE", f"/Groups/{gid}", 204),
        ("DELETE", f"/Users/{uid}", 204),
        ("DELETE", f"/Users/{uid}", 404),
    ]
    errors = [e for _, _, s, e in log if s >= 400]
    assert all(errors) and "already taken" in str(errors[0])
    assert all(e is None for _, _, s, e in log if s < 400)


async def test_leaving_out_members_and_groups(scim: Client) -> None:
    a, b = await scim.user("a@acme.test"), await scim.user("b@acme.test")
    r = await scim(
        "POST",
        "/Groups?excludedAttributes=members",
        {"schemas": [GROUP], "displayName": "Team", "members": [{"value": a["id"]}]},
    )
    assert r.status_code == 201 and "members" not in r.json()
    gid = r.json()["id"]
    full = (await scim("GET", f"/Groups/{gid}")).json()
    assert [m["value"] for m in full["members"]] == [a["id"]]
    assert r.json() == {k: v for k, v in full.items() if k != "members"}

    # The same resource, whatever loads it: only the projection differs.
    for query, has_members in (
        ("excludedAttributes=members", False),
        ("excludedAttributes=MEMBERS", False),
        ("excludedAttributes=displayName", True),
        ("excludedAttributes=members.value", True),
        ("attributes=displayName", False),
        ("attributes=Members", True),
        ("attributes=members.value", True),
        (f"attributes={GROUP}:members", True),
        (f"attributes={GROUP}", True),
    ):
        got = (await scim("GET", f"/Groups/{gid}?{query}")).json()
        assert ("members" in got) is has_members, query
    # A member's display (its userName) is returned on request only; then it is read.
    assert all("display" not in m for m in full["members"])
    for query in ("attributes=members.display", "attributes=MEMBERS.Display,displayName"):
        got = (await scim("GET", f"/Groups/{gid}?{query}")).json()
        assert [m["display"] for m in got["members"]] == ["a@acme.test"], query

    add = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": b["id"]}]}]}  # fmt: skip
    r = await scim("PATCH", f"/Groups/{gid}?excludedAttributes=members", add)
    assert r.status_code == 200 and "members" not in r.json()
    full = (await scim("GET", f"/Groups/{gid}")).json()
    assert r.json() == {k: v for k, v in full.items() if k != "members"}
    assert r.headers["etag"] == full["meta"]["version"] == 'W/"2"'
    assert sorted(m["value"] for m in full["members"]) == sorted([a["id"], b["id"]])
    r = await scim("PATCH", f"/Groups/{gid}?attributes=members", add)  # no-op: still shown
    assert sorted(m["value"] for m in r.json()["members"]) == sorted([a["id"], b["id"]])
    r = await scim("PATCH", f"/Groups/{gid}?attributes=members.display", add)
    assert sorted(m["display"] for m in r.json()["members"]) == ["a@acme.test", "b@acme.test"]

    put = {"schemas": [GROUP], "displayName": "Team 2", "members": [{"value": b["id"]}]}
    r = await scim("PUT", f"/Groups/{gid}?excludedAttributes=members", put)
    assert r.status_code == 200 and "members" not in r.json()
    assert r.json()["displayName"] == "Team 2"

    # Users: ``groups`` likewise.
    r = await scim("GET", f"/Users/{b['id']}?excludedAttributes=groups")
    assert "groups" not in r.json()
    full_user = (await scim("GET", f"/Users/{b['id']}")).json()
    assert [g["value"] for g in full_user["groups"]] == [gid]
    assert r.json() == {k: v for k, v in full_user.items() if k != "groups"}
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "T"}]}
    r = await scim("PATCH", f"/Users/{b['id']}?attributes=groups", body)
    assert [g["value"] for g in r.json()["groups"]] == [gid]
    r = await scim("PATCH", f"/Users/{b['id']}?excludedAttributes=groups", body)  # no-op
    assert "groups" not in r.json() and r.json()["title"] == "T"


async def test_member_events_and_a_large_replace(scim: Client) -> None:
    users = [await scim.user(f"u{i:02d}@acme.test") for i in range(40)]
    ids = sorted(u["id"] for u in users)
    r = await scim(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Big", "members": [{"value": u} for u in ids[:25]]},
    )
    gid = r.json()["id"]
    added = await scim.events("dsync.group.user_added")
    assert [e["user"]["id"] for e in added] == ids[:25]
    first = next(u for u in users if u["id"] == ids[0])
    assert added[0]["user"]["email"] == first["userName"]
    assert added[0]["user"]["username"] == first["userName"]
    assert added[0]["group"]["id"] == gid and added[0]["directory_id"] == scim.directory_id

    # PUT with members 10..39 (in reverse order): adds 25..39 as written, removes 0..9 by id.
    wanted = list(reversed(ids[10:]))
    put = {"schemas": [GROUP], "displayName": "Big", "members": [{"value": u} for u in wanted]}
    r = await scim("PUT", f"/Groups/{gid}", put)
    assert r.status_code == 200
    assert sorted(m["value"] for m in r.json()["members"]) == ids[10:]
    added = (await scim.events("dsync.group.user_added"))[25:]
    removed = await scim.events("dsync.group.user_removed")
    assert [e["user"]["id"] for e in added] == [u for u in wanted if u not in ids[:25]]
    assert [e["user"]["id"] for e in removed] == ids[:10]
    async with scim.gate._rt.read() as conn:
        stmt = sa.select(directory_group_members.c.user_id).where(
            directory_group_members.c.group_id == gid
        )
        assert sorted(r[0] for r in (await conn.execute(stmt)).all()) == ids[10:]

    # Removing a member that is not there and adding one that is: no membership change and no
    # event (the group still gets a new version, as a member PATCH always did).
    ops = [
        {"op": "remove", "path": "members", "value": [{"value": ids[0]}]},
        {"op": "add", "path": "members", "value": [{"value": ids[10]}]},
    ]
    r = await scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": ops})
    assert r.status_code == 204 and r.headers["etag"] == 'W/"3"'
    assert len(await scim.events("dsync.group.user_removed")) == 10
    assert len(await scim.events("dsync.group.user_added")) == 40
    # An unknown member is refused and nothing is written.
    ops = [{"op": "add", "path": "members", "value": [{"value": "directory_user_nope"}]}]
    r = await scim("PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": ops})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert (await scim("GET", f"/Groups/{gid}")).json()["meta"]["version"] == 'W/"3"'


async def test_group_patch_answers_204_unless_the_resource_is_asked_for(
    scim: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 7644 §3.5.2: 204 No Content with the new version's ETag; 200 with the (projected)
    resource when the query has ``attributes`` or ``excludedAttributes``. User PATCHes and
    PUTs keep answering 200 with the resource."""
    a, b, c = [await scim.user(f"{n}@acme.test") for n in "abc"]
    r = await scim(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Team", "members": [{"value": a["id"]}]},
    )
    gid = r.json()["id"]

    def add(user: dict[str, Any]) -> dict[str, Any]:
        return {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}]}  # fmt: skip

    # A 204 shows no member: the service must not read (let alone serialise) the member list.
    real = scim.gate.scim._group_members

    async def no_member_reads(*args: Any, **kw: Any) -> Any:
        raise AssertionError("a 204 PATCH read the group's members")

    monkeypatch.setattr(scim.gate.scim, "_group_members", no_member_reads)
    r = await scim("PATCH", f"/Groups/{gid}", add(b))
    assert r.status_code == 204 and r.content == b"", r.text
    assert "content-type" not in r.headers
    assert r.headers["etag"] == 'W/"2"'
    assert r.headers["location"].endswith(f"/Groups/{gid}")
    rename = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Team 2"}]}  # fmt: skip
    r = await scim("PATCH", f"/Groups/{gid}", rename, headers={"If-Match": 'W/"2"'})
    assert r.status_code == 204 and r.headers["etag"] == 'W/"3"'
    noop = await scim("PATCH", f"/Groups/{gid}", rename)  # the same name: nothing written
    assert noop.status_code == 204 and noop.headers["etag"] == 'W/"3"'
    monkeypatch.setattr(scim.gate.scim, "_group_members", real)

    full = (await scim("GET", f"/Groups/{gid}")).json()
    assert full["meta"]["version"] == 'W/"3"' and full["displayName"] == "Team 2"
    assert sorted(m["value"] for m in full["members"]) == sorted([a["id"], b["id"]])
    assert len(await scim.events("dsync.group.user_added")) == 2

    # Failures are still SCIM errors, not 204s.
    stale = await scim("PATCH", f"/Groups/{gid}", add(c), headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["scimType"] == "invalidVers"
    bad = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": "directory_user_nope"}]}]}  # fmt: skip
    r = await scim("PATCH", f"/Groups/{gid}", bad)
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"

    # attributes= / excludedAttributes=: 200 and the resource, projected as asked.
    r = await scim("PATCH", f"/Groups/{gid}?attributes=members", add(c))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/scim+json")
    assert r.headers["etag"] == 'W/"4"'
    assert sorted(m["value"] for m in r.json()["members"]) == sorted([a["id"], b["id"], c["id"]])
    assert "displayName" not in r.json()
    r = await scim("PATCH", f"/Groups/{gid}?attributes=displayName", rename)  # no-op
    assert r.status_code == 200 and r.json()["displayName"] == "Team 2"
    assert "members" not in r.json()
    remove = {"schemas": [PATCH], "Operations": [{"op": "remove", "path": f'members[value eq "{c["id"]}"]'}]}  # fmt: skip
    r = await scim("PATCH", f"/Groups/{gid}?excludedAttributes=members", remove)
    assert r.status_code == 200 and "members" not in r.json()
    assert r.json()["displayName"] == "Team 2" and r.headers["etag"] == 'W/"5"'
    r = await scim("PATCH", f"/Groups/{gid}?excludedAttributes=displayName", add(c))
    assert r.status_code == 200 and "displayName" not in r.json()
    assert len(r.json()["members"]) == 3

    # A PUT of a group, and a PATCH of a user, answer 200 with the resource (Okta wants the
    # user back).
    put = {"schemas": [GROUP], "displayName": "Team 3", "members": [{"value": a["id"]}]}
    r = await scim("PUT", f"/Groups/{gid}", put)
    assert r.status_code == 200 and [m["value"] for m in r.json()["members"]] == [a["id"]]
    title = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "T"}]}
    r = await scim("PATCH", f"/Users/{a['id']}", title)
    assert r.status_code == 200 and r.json()["title"] == "T"
    assert (
        r.json()["userName"] == "a@acme.test" and r.headers["etag"] == r.json()["meta"]["version"]
    )
    assert [g["value"] for g in r.json()["groups"]] == [gid]
    deactivate = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    r = await scim("PATCH", f"/Users/{b['id']}", deactivate)
    assert r.status_code == 200 and r.json()["active"] is False

    log = [(m, s) for m, p, s, _ in await scim.log() if p.startswith("/Groups/")]
    assert log[:4] == [("PATCH", 204), ("PATCH", 204), ("PATCH", 204), ("PATCH", 412)]


async def test_values_longer_than_their_columns_are_a_400(scim: Client) -> None:
    """PostgreSQL refuses a value longer than its column (found by the long fuzz run: a 500
    for a 300-character Group displayName); both backends answer 400 invalidValue naming the
    attribute, and nothing is written."""
    long = "x" * 256
    cases = [
        ("POST", "/Groups", {"schemas": [GROUP], "displayName": long}, "displayName"),
        ("POST", "/Groups", {"schemas": [GROUP], "displayName": "G", "externalId": long}, "externalId"),
        ("POST", "/Users", {"schemas": [USER], "userName": "u" * 321}, "userName"),
        # lower-casing can lengthen a value: "İ" becomes two code points
        ("POST", "/Users", {"schemas": [USER], "userName": "İ" * 200}, "userName (lower-cased)"),
        ("POST", "/Users", {"schemas": [USER], "userName": "n", "name": {"givenName": "g" * 201}}, "name.givenName"),
        (
            "POST",
            "/Users",
            {"schemas": [USER], "userName": "n", "emails": [{"value": "e" * 321, "primary": True}]},
            "the primary email",
        ),
    ]  # fmt: skip
    for method, path, body, attribute in cases:
        r = await scim(method, path, body)
        assert r.status_code == 400, (attribute, r.text)
        err = r.json()
        assert err["scimType"] == "invalidValue" and err["detail"].startswith(attribute), err
    u = await scim.user("ann@acme.test")
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "externalId", "value": long}]}  # fmt: skip
    r = await scim("PATCH", f"/Users/{u['id']}", patch)
    assert r.status_code == 400 and r.json()["detail"].startswith("externalId")
    assert await scim.events("dsync.group.created") == []
    assert len(await scim.events("dsync.user.created")) == 1  # ann only
    assert (await scim("GET", f"/Users/{u['id']}")).json().get("externalId") is None
