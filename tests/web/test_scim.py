"""SCIM 2.0 endpoints through the gate: CRUD, filters, PATCH dialects, errors, tenant isolation,
deprovisioning, events, and the SSO <-> directory link."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sso_gate import SSOGate
from sso_gate.models import Directory, Organization
from sso_gate.store.tables import events
from tests.conftest import ADMIN_KEY
from tests.web.conftest import Env, make_env

pytestmark = pytest.mark.anyio
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass
class Scim:
    env: Env
    gate: SSOGate
    org: Organization
    directory: Directory
    token: str
    client: httpx.AsyncClient

    def url(self, path: str, directory_id: str | None = None) -> str:
        return f"/sso-gate/scim/v2/{directory_id or self.directory.id}{path}"

    async def req(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str | None = None,
        directory_id: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kw.pop("headers", {})}
        if json is not None:
            headers["Content-Type"] = "application/scim+json"
        return await self.client.request(
            method, self.url(path, directory_id), json=json, headers=headers, **kw
        )

    async def user(self, user_name: str = "alice@acme.test", **extra: Any) -> dict[str, Any]:
        body = {
            "schemas": [USER],
            "userName": user_name,
            "externalId": "ext-" + user_name,
            "name": {"givenName": "Alice", "familyName": "Anderson"},
            "emails": [{"value": user_name, "type": "work", "primary": True}],
            "active": True,
            **extra,
        }
        r = await self.req("POST", "/Users", body)
        assert r.status_code == 201, r.text
        return r.json()

    async def events(self, name: str) -> list[dict[str, Any]]:
        async with self.gate._rt.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(events).where(events.c.event == name).order_by(events.c.id)
                )
            ).all()
        return [r.data for r in rows]


@pytest.fixture
async def scim(database_url: str) -> AsyncIterator[Scim]:
    env = await make_env(database_url)
    d, token = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    yield Scim(env, env.gate, env.org, d, token, env.client)
    await env.client.aclose()
    await env.gate.aclose()


# -- auth and discovery ------------------------------------------------------------------------


async def test_auth(scim: Scim) -> None:
    for token in ("", "nope", scim.token + "x"):
        r = await scim.client.get(scim.url("/Users"), headers={"Authorization": f"Bearer {token}"})
        assert (
            r.status_code == 401 and r.json()["schemas"] == [ERROR] and r.json()["status"] == "401"
        )
    r = await scim.client.get(scim.url("/Users"))
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/scim+json")


async def test_token_rotation_and_revocation(scim: Scim) -> None:
    new = await scim.gate.directories.rotate_token(scim.directory.id)
    assert (await scim.req("GET", "/Users", token=new)).status_code == 200
    assert (await scim.req("GET", "/Users", token=scim.token)).status_code == 200  # grace period
    await scim.gate.directories.revoke_tokens(scim.directory.id)
    assert (await scim.req("GET", "/Users", token=new)).status_code == 401
    assert (await scim.req("GET", "/Users", token=scim.token)).status_code == 401


async def test_token_stored_hashed(scim: Scim) -> None:
    from sso_gate.store.tables import directories

    async with scim.gate._rt.read() as conn:
        rows = (await conn.execute(sa.select(directories))).all()
    assert scim.token not in repr(rows)


async def test_discovery(scim: Scim) -> None:
    spc = (await scim.req("GET", "/ServiceProviderConfig")).json()
    assert spc["patch"]["supported"] is True and spc["bulk"]["supported"] is False
    assert spc["filter"]["supported"] is True and spc["etag"]["supported"] is True
    schemas = (await scim.req("GET", "/Schemas")).json()
    assert {s["id"] for s in schemas["Resources"]} == {USER, GROUP, ENTERPRISE}
    assert (await scim.req("GET", f"/Schemas/{USER}")).json()["id"] == USER
    types = (await scim.req("GET", "/ResourceTypes")).json()
    assert {t["name"] for t in types["Resources"]} == {"User", "Group"}
    assert (await scim.req("GET", "/ResourceTypes/User")).json()["endpoint"] == "/Users"
    assert (await scim.req("GET", "/Schemas/urn:nope")).status_code == 404


# -- users ---------------------------------------------------------------------------------------


async def test_user_crud(scim: Scim) -> None:
    u = await scim.user()
    assert u["id"].startswith("directory_user_") and u["meta"]["resourceType"] == "User"
    assert u["meta"]["version"] == 'W/"1"' and u["active"] is True and "password" not in u
    got = await scim.req("GET", f"/Users/{u['id']}")
    assert got.json()["userName"] == "alice@acme.test" and got.headers["etag"] == 'W/"1"'
    body = {
        **{k: v for k, v in u.items() if k not in ("meta", "id", "groups")},
        "name": {"givenName": "Alicia", "familyName": "Anderson"},
    }
    put = await scim.req("PUT", f"/Users/{u['id']}", body, headers={"If-Match": 'W/"1"'})
    assert put.status_code == 200 and put.json()["name"]["givenName"] == "Alicia"
    stale = await scim.req("PUT", f"/Users/{u['id']}", body, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert (await scim.req("DELETE", f"/Users/{u['id']}")).status_code == 204
    assert (await scim.req("GET", f"/Users/{u['id']}")).status_code == 404
    await scim.user()  # the userName is free again
    names = [e["email"] for e in await scim.events("dsync.user.created")]
    assert names == ["alice@acme.test", "alice@acme.test"]
    assert len(await scim.events("dsync.user.deleted")) == 1


async def test_uniqueness_is_case_insensitive(scim: Scim) -> None:
    await scim.user()
    r = await scim.req("POST", "/Users", {"schemas": [USER], "userName": "ALICE@acme.test"})
    assert r.status_code == 409 and r.json()["scimType"] == "uniqueness"


async def test_list_filter_paginate_sort(scim: Scim) -> None:
    for i in range(5):
        await scim.user(f"user{i}@acme.test", title=f"t{4 - i}")
    r = (await scim.req("GET", "/Users", params={"filter": 'userName eq "USER3@acme.test"'})).json()
    assert r["totalResults"] == 1 and r["Resources"][0]["userName"] == "user3@acme.test"
    r = (await scim.req("GET", "/Users", params={"startIndex": 2, "count": 2})).json()
    assert r["totalResults"] == 5 and r["itemsPerPage"] == 2 and r["startIndex"] == 2
    r = (
        await scim.req(
            "GET",
            "/Users",
            params={
                "filter": 'userName sw "user" and not (userName eq "user0@acme.test")',
                "sortBy": "title",
                "sortOrder": "descending",
            },
        )
    ).json()
    assert [x["title"] for x in r["Resources"]] == ["t3", "t2", "t1", "t0"]
    r = (
        await scim.req(
            "GET", "/Users", params={"filter": 'emails[type eq "work" and value co "user2"]'}
        )
    ).json()
    assert [x["userName"] for x in r["Resources"]] == ["user2@acme.test"]
    r = (await scim.req("GET", "/Users", params={"attributes": "userName", "count": 1})).json()
    assert set(r["Resources"][0]) <= {"id", "userName", "schemas", "meta"}
    r = (await scim.req("GET", "/Users", params={"count": 10**9})).json()
    assert r["itemsPerPage"] == 5


async def test_okta_connectivity_and_lookup(scim: Scim) -> None:
    r = await scim.req("GET", "/Users", params={"startIndex": 1, "count": 1})
    assert r.status_code == 200 and r.json()["totalResults"] == 0 and r.json()["Resources"] == []
    r = await scim.req(
        "GET",
        "/Users",
        params={"filter": 'userName eq "alice@acme.test"', "startIndex": 1, "count": 100},
    )
    assert r.json()["totalResults"] == 0
    u = await scim.user()
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert r.status_code == 200 and r.json()["active"] is False


async def test_entra_patch_dialect(scim: Scim) -> None:
    u = await scim.user()
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {
            "schemas": [PATCH],
            "Operations": [
                {"op": "Replace", "path": "name.givenName", "value": "Al"},
                {"op": "Add", "path": 'phoneNumbers[type eq "work"].value', "value": "+1 555"},
                {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "R&D"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"]["givenName"] == "Al" and body[ENTERPRISE]["department"] == "R&D"
    assert body["phoneNumbers"][0]["value"] == "+1 555"
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
    )
    assert r.json()["active"] is False


async def test_noop_patch_keeps_version(scim: Scim) -> None:
    u = await scim.user()
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "userName", "value": "alice@acme.test"}],
        },
    )
    assert r.status_code == 200 and r.json()["meta"]["version"] == 'W/"1"'
    assert len(await scim.events("dsync.user.updated")) == 0


# -- groups -------------------------------------------------------------------------------------


async def test_groups_and_members(scim: Scim) -> None:
    a, b = await scim.user("a@acme.test"), await scim.user("b@acme.test")
    r = await scim.req(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Admins", "members": [{"value": a["id"]}]},
    )
    assert r.status_code == 201, r.text
    g = r.json()
    assert [m["value"] for m in g["members"]] == [a["id"]]
    r = await scim.req(
        "PATCH",
        f"/Groups/{g['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": b["id"]}]}],
        },
    )
    assert r.status_code == 204, r.text  # group PATCH without attributes=: no body
    r = await scim.req("GET", f"/Groups/{g['id']}")
    assert {m["value"] for m in r.json()["members"]} == {a["id"], b["id"]}
    r = await scim.req(
        "PATCH",
        f"/Groups/{g['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Remove", "path": f'members[value eq "{a["id"]}"]'}],
        },
        params={"attributes": "members"},
    )
    assert r.status_code == 200 and [m["value"] for m in r.json()["members"]] == [b["id"]]
    r = await scim.req(
        "PATCH",
        f"/Groups/{g['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": b["id"]}]}],
        },
        params={"attributes": "members"},
    )
    assert r.json().get("members", []) == []
    user_b = (await scim.req("GET", f"/Users/{b['id']}")).json()
    assert user_b.get("groups", []) == []
    added = await scim.events("dsync.group.user_added")
    removed = await scim.events("dsync.group.user_removed")
    assert len(added) == 2 and len(removed) == 2 and added[0]["group"]["name"] == "Admins"
    r = await scim.req(
        "GET",
        "/Groups",
        params={"filter": 'displayName eq "admins"', "excludedAttributes": "members"},
    )
    assert r.json()["totalResults"] == 1 and "members" not in r.json()["Resources"][0]
    r = await scim.req(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "X", "members": [{"value": "directory_user_nope"}]},
    )
    assert r.status_code == 400 and r.json()["scimType"] == "invalidValue"
    assert (await scim.req("DELETE", f"/Groups/{g['id']}")).status_code == 204


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "scim_type"),
    [
        ("GET", "/Users?filter=userName%20eq", None, 400, "invalidFilter"),
        (
            "GET",
            "/Users?filter=" + "(" * 200 + 'userName eq "x"' + ")" * 200,
            None,
            400,
            "invalidFilter",
        ),
        ("GET", "/Users?startIndex=abc", None, 400, "invalidValue"),
        ("POST", "/Users", {"userName": "x"}, 400, None),
        ("POST", "/Users", {"schemas": [USER]}, 400, "invalidValue"),
        ("POST", "/Users", {"schemas": [USER], "userName": "x", "active": "maybe"}, 400, None),
        ("PATCH", "/Users/directory_user_nope", {"schemas": [PATCH], "Operations": []}, 404, None),
        ("GET", "/Users/directory_user_nope", None, 404, None),
    ],
)
async def test_errors(
    scim: Scim, method: str, path: str, body: Any, status: int, scim_type: str | None
) -> None:
    r = await scim.req(method, path, body)
    assert r.status_code == status, r.text
    data = r.json()
    assert data["schemas"] == [ERROR] and data["status"] == str(status) and data["detail"]
    if scim_type:
        assert data["scimType"] == scim_type


async def test_invalid_json_and_huge_body(scim: Scim) -> None:
    r = await scim.client.post(
        scim.url("/Users"), content=b"{nope", headers={"Authorization": f"Bearer {scim.token}"}
    )
    assert r.status_code == 400 and r.json()["scimType"] == "invalidSyntax"
    r = await scim.client.post(
        scim.url("/Users"),
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    assert r.status_code == 413 and r.json()["schemas"] == [ERROR]


async def test_patch_errors(scim: Scim) -> None:
    u = await scim.user()
    for ops, scim_type in (
        ([{"op": "replace", "path": "id", "value": "x"}], "mutability"),
        ([{"op": "jump", "path": "userName", "value": "x"}], "invalidSyntax"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "replace", "path": "emails[type eq", "value": "x"}], "invalidPath"),
    ):
        r = await scim.req("PATCH", f"/Users/{u['id']}", {"schemas": [PATCH], "Operations": ops})
        assert r.status_code == 400, (ops, r.text)
        assert r.json()["scimType"] in (
            scim_type,
            "invalidPath",
            "invalidSyntax",
            "invalidValue",
        ), r.text


# -- tenant isolation ---------------------------------------------------------------------------


async def test_tenant_isolation(scim: Scim) -> None:
    u = await scim.user()
    g = (await scim.req("POST", "/Groups", {"schemas": [GROUP], "displayName": "G"})).json()
    other_org = await scim.gate.organizations.create("Globex", domains=["globex.test"])
    other, other_token = await scim.gate.directories.create(other_org.id)
    # B's token on A's URL: 401; B's token on B's URL with A's ids: 404 for every operation
    assert (await scim.req("GET", "/Users", token=other_token)).status_code == 401
    for method, path, body in (
        ("GET", f"/Users/{u['id']}", None),
        ("PUT", f"/Users/{u['id']}", {"schemas": [USER], "userName": "x@globex.test"}),
        (
            "PATCH",
            f"/Users/{u['id']}",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        ),
        ("DELETE", f"/Users/{u['id']}", None),
        ("GET", f"/Groups/{g['id']}", None),
        (
            "PATCH",
            f"/Groups/{g['id']}",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": u["id"]}]}],
            },
        ),
        ("DELETE", f"/Groups/{g['id']}", None),
    ):
        r = await scim.req(method, path, body, token=other_token, directory_id=other.id)
        assert r.status_code == 404, (method, path, r.status_code)
    r = await scim.req(
        "GET",
        "/Users",
        token=other_token,
        directory_id=other.id,
        params={"filter": f'id eq "{u["id"]}" or userName eq "alice@acme.test"'},
    )
    assert r.json()["totalResults"] == 0
    # B cannot put A's user into its own group
    gb = (
        await scim.req(
            "POST",
            "/Groups",
            {"schemas": [GROUP], "displayName": "GB"},
            token=other_token,
            directory_id=other.id,
        )
    ).json()
    r = await scim.req(
        "PATCH",
        f"/Groups/{gb['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": u["id"]}]}],
        },
        token=other_token,
        directory_id=other.id,
    )
    assert r.status_code == 400
    assert (await scim.req("GET", f"/Users/{u['id']}")).json()["active"] is True


# -- deprovisioning and the SSO link ------------------------------------------------------------


async def test_deprovisioning_revokes_sessions_and_calls_hook(scim: Scim) -> None:
    seen: list[str] = []
    scim.gate.on_deprovision(lambda user: seen.append(user.email or ""))
    await scim.env.login("alice@acme.test")
    assert (await scim.client.get("/sso-gate/sso/me")).status_code == 200
    u = await scim.user()
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
    )
    assert r.status_code == 200
    assert (await scim.client.get("/sso-gate/sso/me")).status_code == 401
    assert seen == ["alice@acme.test"]
    # the next SSO login is refused while the directory says inactive
    r = await scim.env.login("alice@acme.test")
    assert r.status_code == 400 and "user_deprovisioned" in r.text
    # reactivated: login works again
    await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]},
    )
    assert (await scim.env.login("alice@acme.test")).status_code == 303
    await scim.req("DELETE", f"/Users/{u['id']}")
    assert (await scim.client.get("/sso-gate/sso/me")).status_code == 401
    assert "user_deprovisioned" in (await scim.env.login("alice@acme.test")).text


async def test_sso_profile_gains_directory_groups_and_roles(scim: Scim) -> None:
    u = await scim.user()
    await scim.req(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Finance", "members": [{"value": u["id"]}]},
    )
    await scim.req(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Owners", "members": [{"value": u["id"]}]},
    )
    await scim.gate.organizations.set_role_mapping(
        scim.org.id, [("Owners", "owner"), ("Finance", "billing")], "member"
    )
    await scim.env.login()
    prof = (await scim.client.get("/sso-gate/sso/me")).json()["profile"]
    assert prof["directory_user_id"] == u["id"]
    assert {"Finance", "Owners"} <= set(prof["groups"])
    assert prof["role"] == {"slug": "owner"} and [r["slug"] for r in prof["roles"]] == [
        "owner",
        "billing",
    ]


async def test_management_api_for_directories(scim: Scim) -> None:
    u = await scim.user()
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = await scim.client.post(
        "/sso-gate/api/directories",
        headers=auth,
        json={"organization_id": scim.org.id, "type": "azure scim v2.0"},
    )
    assert r.status_code == 201 and r.json()["bearer_token"].startswith("scim_")
    assert r.json()["scim_base_url"].endswith(f"/sso-gate/scim/v2/{r.json()['id']}")
    listed = (
        await scim.client.get(f"/sso-gate/api/directories/{scim.directory.id}/users", headers=auth)
    ).json()
    assert [x["id"] for x in listed["data"]] == [u["id"]]
    assert (
        listed["data"][0]["object"] == "directory_user" and listed["data"][0]["state"] == "active"
    )
    one = (await scim.client.get(f"/sso-gate/api/directory_users/{u['id']}", headers=auth)).json()
    assert one["email"] == "alice@acme.test" and one["first_name"] == "Alice"
    assert (
        "bearer_token"
        not in (
            await scim.client.get(f"/sso-gate/api/directories/{scim.directory.id}", headers=auth)
        ).json()
    )


# -- RFC details surfaced by scim2-tester (tests/e2e/test_scim_conformance.py) --------------------

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


async def test_unknown_endpoints_and_methods_are_scim_errors(scim: Scim) -> None:
    # RFC 7644 §3.12: errors are SCIM error bodies, for unknown URLs and methods too
    r = await scim.req("GET", "/Nope/deeper")
    assert r.status_code == 404 and r.json()["schemas"] == [ERROR]
    assert r.headers["content-type"].startswith("application/scim+json")
    r = await scim.req("POST", "/Schemas", {"schemas": [USER]})
    assert r.status_code == 405 and r.json()["status"] == "405"
    assert "GET" in r.headers["allow"] and "POST" not in r.headers["allow"]
    r = await scim.req("DELETE", "/Users")
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    assert (await scim.req("GET", "/Nope", token="wrong")).status_code == 401
    # RFC 7644 §3.4.3: a search across all resource types is not supported
    r = await scim.req("POST", "/.search", {"schemas": [SEARCH]})
    assert r.status_code == 501 and r.json()["schemas"] == [ERROR]


async def test_search_with_post(scim: Scim) -> None:
    await scim.user("a@acme.test")
    await scim.user("b@acme.test")
    r = await scim.req(
        "POST",
        "/Users/.search",
        {
            "schemas": [SEARCH],
            "filter": 'userName sw "b"',
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalResults"] == 1 and body["Resources"][0]["userName"] == "b@acme.test"
    assert "emails" not in body["Resources"][0]
    r = await scim.req("POST", "/Users/.search", {"schemas": [SEARCH], "sortBy": "userName"})
    assert [x["userName"] for x in r.json()["Resources"]] == ["a@acme.test", "b@acme.test"]
    for bad, scim_type in (
        ({"count": "ten"}, "invalidValue"),
        ({"attributes": "userName"}, "invalidValue"),
        ({"bogus": 1}, "invalidSyntax"),
        ({"filter": "userName eq"}, "invalidFilter"),
    ):
        r = await scim.req("POST", "/Users/.search", {"schemas": [SEARCH], **bad})
        assert r.status_code == 400 and r.json()["scimType"] == scim_type, (bad, r.text)
    r = await scim.req(
        "POST", "/Groups/.search", {"schemas": [SEARCH], "excludedAttributes": ["members"]}
    )
    assert r.status_code == 200 and r.json()["totalResults"] == 0


async def test_member_display_is_returned_on_request(scim: Scim) -> None:
    u = await scim.user()
    r = await scim.req(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "G", "members": [{"value": u["id"]}]}
    )
    g = r.json()
    # what the client wrote comes back as written (RFC 7643 §8.7.1 has no members.display)
    assert [set(m) for m in g["members"]] == [{"value", "$ref", "type"}]
    r = await scim.req("GET", f"/Groups/{g['id']}", params={"attributes": "members.display"})
    assert r.json()["members"] == [{"display": "alice@acme.test"}]


async def test_removing_active_leaves_it_unassigned(scim: Scim) -> None:
    u = await scim.user()
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "remove", "path": "active"}]},
    )
    # RFC 7644 §3.5.2.2: a removed single-valued attribute "SHALL be considered unassigned"
    assert r.status_code == 200 and "active" not in r.json()
    assert (await scim.req("GET", f"/Users/{u['id']}")).json().get("active") is None
    # unassigned is not a deprovisioning: the user stays active for SSO
    assert (await scim.gate.directories.get_user(u["id"])).state == "active"


async def test_extension_value_may_carry_its_schemas(scim: Scim) -> None:
    u = await scim.user()
    value = {"schemas": [ENTERPRISE], "department": "Ops"}
    r = await scim.req(
        "PATCH",
        f"/Users/{u['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "add", "path": ENTERPRISE, "value": value}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()[ENTERPRISE] == {"department": "Ops"} and ENTERPRISE in r.json()["schemas"]
    body = {"schemas": [USER, ENTERPRISE], "userName": "x@acme.test", ENTERPRISE: value}
    r = await scim.req("POST", "/Users", body)
    assert r.status_code == 201 and r.json()[ENTERPRISE] == {"department": "Ops"}


async def test_unindexed_filter_on_huge_directory_is_too_many(
    scim: Scim, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sso_gate.services.scim as service

    monkeypatch.setattr(service, "MAX_SCAN", 2)
    for i in range(3):
        await scim.user(f"u{i}@acme.test")
    r = await scim.req("GET", "/Users", params={"filter": "title pr"})
    assert r.status_code == 400 and r.json()["scimType"] == "tooMany"
    # an indexed equality narrows the scan: fine
    r = await scim.req(
        "GET", "/Users", params={"filter": 'userName eq "u1@acme.test" and title pr'}
    )
    assert r.status_code == 200


async def test_list_attributes_are_case_insensitive(scim: Scim) -> None:
    u = await scim.user()
    await scim.req(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "G", "members": [{"value": u["id"]}]}
    )
    for attrs in ("Members", f"{GROUP}:members", "members"):
        r = (await scim.req("GET", "/Groups", params={"attributes": attrs})).json()
        assert [m["value"] for m in r["Resources"][0]["members"]] == [u["id"]], attrs


async def test_deleted_users_are_gone_from_the_api(scim: Scim) -> None:
    from sso_gate import NotFoundError

    u = await scim.user()
    await scim.req("DELETE", f"/Users/{u['id']}")
    assert (await scim.gate.directories.list_users(directory_id=scim.directory.id)).data == ()
    with pytest.raises(NotFoundError):
        await scim.gate.directories.get_user(u["id"])
