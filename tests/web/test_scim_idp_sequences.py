"""The request sequences Okta and Microsoft Entra ID document for SCIM 2.0 provisioning, replayed
in order against the gate (in-process httpx over ``gate.wrap(app)``). Each step asserts the
status and the shape the IdP relies on.

Request bodies follow the vendors' published examples:

* Okta: https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20 (create, read,
  update, deactivate users; Group Push: create, rename, membership, delete), and for the
  connectivity test on /Groups https://developer.okta.com/docs/reference/scim/scim-11/
* Entra ID: https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
  ("User operations", "Group operations") and, for ``"Replace"``, ``"False"``, the manager and
  the path-keyed ``value`` object (``aadOptscim062020``),
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sso_gate import SSOGate
from sso_gate.models import Directory, DirectoryUser
from sso_gate.store.tables import directory_users, events
from tests.web.conftest import make_env

pytestmark = pytest.mark.anyio

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
MEDIA = "application/scim+json"


@dataclass
class IdP:
    """One IdP talking to one directory, with the headers that IdP sends."""

    gate: SSOGate
    directory: Directory
    token: str
    client: httpx.AsyncClient
    headers: dict[str, str]
    deprovisioned: list[DirectoryUser] = field(default_factory=list)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        params: dict[str, Any] | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **self.headers}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = f"{MEDIA}; charset=utf-8"
        r = await self.client.request(
            method,
            f"/sso-gate/scim/v2/{self.directory.id}{path}",
            content=content,
            params=params,
            headers=headers,
        )
        assert r.status_code == status, (method, path, r.status_code, r.text)
        if status == 204:
            assert r.content == b""
            return None
        assert r.headers["content-type"].startswith(MEDIA)
        return r.json()

    async def events(self, name: str) -> list[dict[str, Any]]:
        async with self.gate._rt.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(events.c.data).where(events.c.event == name).order_by(events.c.id)
                )
            ).all()
        return [r.data for r in rows]


async def _idp(database_url: str, headers: dict[str, str]) -> AsyncIterator[IdP]:
    env = await make_env(database_url)
    d, token = await env.gate.directories.create(env.org.id, type="okta scim v2.0")
    idp = IdP(env.gate, d, token, env.client, headers)
    env.gate.on_deprovision(idp.deprovisioned.append)
    yield idp
    await env.client.aclose()
    await env.gate.aclose()


@pytest.fixture
async def okta(database_url: str) -> AsyncIterator[IdP]:
    async for idp in _idp(database_url, {"User-Agent": "Okta SCIM Client 1.0.0", "Accept": MEDIA}):
        yield idp


@pytest.fixture
async def entra(database_url: str) -> AsyncIterator[IdP]:
    async for idp in _idp(database_url, {"User-Agent": "Azure", "Accept": MEDIA}):
        yield idp


def assert_list(body: Any, total: int) -> list[dict[str, Any]]:
    assert body["schemas"] == [LIST]
    assert body["totalResults"] == total and body["startIndex"] == 1
    assert body["itemsPerPage"] == len(body["Resources"])
    resources: list[dict[str, Any]] = body["Resources"]
    return resources


def assert_user(body: Any) -> None:
    assert USER in body["schemas"] and body["id"].startswith("directory_user_")
    meta = body["meta"]
    assert meta["resourceType"] == "User" and meta["location"].endswith(f"/Users/{body['id']}")
    assert meta["version"].startswith('W/"') and meta["created"] and meta["lastModified"]
    assert "password" not in body


def assert_group(body: Any) -> None:
    assert GROUP in body["schemas"] and body["id"].startswith("directory_group_")
    assert body["meta"]["resourceType"] == "Group"


# -- Okta -----------------------------------------------------------------------------------


OKTA_PASSWORD = "1mz050nq"


def okta_user(user_name: str, given: str = "Test", family: str = "User") -> dict[str, Any]:
    # Okta's "Create Users" request body, verbatim in shape (password included: Okta sends one
    # when the app integration has "Sync Password" enabled).
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": OKTA_PASSWORD,
        "active": True,
    }


async def test_okta_user_lifecycle(okta: IdP) -> None:
    # 1. "Test Connector Configuration": the parameters are constant
    assert_list(await okta.call("GET", "/Users", params={"startIndex": 1, "count": 1}), 0)
    assert_list(await okta.call("GET", "/Groups", params={"startIndex": 1, "count": 100}), 0)

    # 2. Assigning a user: does the userName exist?
    lookup = {"filter": 'userName eq "test.user@okta.local"', "startIndex": 1, "count": 100}
    assert_list(await okta.call("GET", "/Users", params=lookup), 0)

    # 3. No: create it
    created = await okta.call("POST", "/Users", okta_user("test.user@okta.local"), status=201)
    assert_user(created)
    uid = created["id"]
    assert created["userName"] == "test.user@okta.local" and created["active"] is True
    assert created["name"] == {"givenName": "Test", "familyName": "User"}
    assert created["emails"] == [{"primary": True, "value": "test.user@okta.local", "type": "work"}]
    assert created["displayName"] == "Test User" and created["locale"] == "en-US"
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert created.get("groups", []) == []
    # the same lookup now finds it (Okta stores the returned id)
    found = assert_list(await okta.call("GET", "/Users", params=lookup), 1)
    assert found[0]["id"] == uid and "password" not in found[0]

    # 4. Retrieve
    got = await okta.call("GET", f"/Users/{uid}")
    assert_user(got)
    assert got["userName"] == "test.user@okta.local"

    # 5. Profile update: the full object with PUT (id, groups, password included)
    put_body = {
        **okta_user("test.user@okta.local", "Another", "User"),
        "id": uid,
        "meta": {"resourceType": "User"},
    }
    updated = await okta.call("PUT", f"/Users/{uid}", put_body)
    assert_user(updated)
    assert updated["name"]["givenName"] == "Another" and updated["displayName"] == "Another User"
    assert updated["meta"]["version"] != got["meta"]["version"] and updated["active"] is True

    # the password Okta sent (twice) is neither returned nor stored anywhere
    async with okta.gate._rt.read() as conn:
        stored = (await conn.execute(sa.select(directory_users.c.resource))).all()
        logged = (await conn.execute(sa.select(events.c.data))).all()
    assert stored and OKTA_PASSWORD not in json.dumps([r[0] for r in stored])
    assert OKTA_PASSWORD not in json.dumps([r[0] for r in logged])
    assert "password" not in json.dumps([r[0] for r in stored])

    # 6. Deactivate (unassign from the app): PATCH without a path
    deactivate = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    off = await okta.call("PATCH", f"/Users/{uid}", deactivate)
    assert_user(off)
    assert off["active"] is False and off["name"]["givenName"] == "Another"
    assert [u.id for u in okta.deprovisioned] == [uid]
    assert (await okta.gate.directories.get_user(uid)).state == "inactive"
    inactive = assert_list(await okta.call("GET", "/Users", params=lookup), 1)
    assert inactive[0]["active"] is False  # Okta reads the state back on import

    # 7. Reactivate
    reactivate = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "value": {"active": True}}],
    }
    assert (await okta.call("PATCH", f"/Users/{uid}", reactivate))["active"] is True
    assert (await okta.gate.directories.get_user(uid)).state == "active"
    assert len(okta.deprovisioned) == 1


async def test_okta_group_push(okta: IdP) -> None:
    test_user = await okta.call("POST", "/Users", okta_user("test.user@okta.local"), status=201)
    other = await okta.call("POST", "/Users", okta_user("other.user@okta.local"), status=201)

    # 1. Push a group, with its members
    body = {
        "schemas": [GROUP],
        "displayName": "Test SCIMv2",
        "members": [{"value": other["id"], "display": "other.user@okta.local"}],
    }
    group = await okta.call("POST", "/Groups", body, status=201)
    assert_group(group)
    gid = group["id"]
    assert group["displayName"] == "Test SCIMv2"
    assert [m["value"] for m in group["members"]] == [other["id"]]

    # 2. Retrieve it
    got = await okta.call("GET", f"/Groups/{gid}")
    assert_group(got)
    assert [m["value"] for m in got["members"]] == [other["id"]]

    # 3. Rename: no path, and the (readOnly) id inside the value
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}}
        ],
    }
    # (a group PATCH answers 204 No Content, which Okta's reference allows: read it back)
    assert await okta.call("PATCH", f"/Groups/{gid}", rename, status=204) is None
    renamed = await okta.call("GET", f"/Groups/{gid}")
    assert renamed["id"] == gid and renamed["displayName"] == "Test SCIMv2 renamed"
    assert [m["value"] for m in renamed["members"]] == [other["id"]]

    # 4. Membership: remove one by filter, add another, in one request
    membership = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "remove", "path": f'members[value eq "{other["id"]}"]'},
            {
                "op": "add",
                "path": "members",
                "value": [{"value": test_user["id"], "display": "test.user@okta.local"}],
            },
        ],
    }
    assert await okta.call("PATCH", f"/Groups/{gid}", membership, status=204) is None
    changed = await okta.call("GET", f"/Groups/{gid}")
    assert [m["value"] for m in changed["members"]] == [test_user["id"]]
    member = await okta.call("GET", f"/Users/{test_user['id']}")
    assert [g["value"] for g in member["groups"]] == [gid]
    assert (await okta.call("GET", f"/Users/{other['id']}")).get("groups", []) == []
    assert len(await okta.events("dsync.group.user_added")) == 2
    assert len(await okta.events("dsync.group.user_removed")) == 1

    # 5. Unlink the pushed group and delete it in the app
    assert await okta.call("DELETE", f"/Groups/{gid}", status=204) is None
    await okta.call("GET", f"/Groups/{gid}", status=404)
    assert (await okta.call("GET", f"/Users/{test_user['id']}")).get("groups", []) == []
    assert len(await okta.events("dsync.group.deleted")) == 1


# -- Microsoft Entra ID ---------------------------------------------------------------------


def entra_user(user_name: str, manager_id: str | None = None) -> dict[str, Any]:
    # Entra's "Create User" request body, plus the enterprise extension it sends with the
    # default attribute mappings (employeeId, department, manager).
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"{user_name}@testuser.com"}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
        ENTERPRISE: {"employeeNumber": "100009", "department": "Human Resources US"},
    }
    if manager_id:
        body[ENTERPRISE]["manager"] = {"value": manager_id}
    return body


async def test_entra_user_and_group_sync(entra: IdP) -> None:
    user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"

    # 1. "Get User by query - Zero results" before creating
    none = await entra.call("GET", "/Users", params={"filter": f'userName eq "{user_name}"'})
    assert assert_list(none, 0) == []

    # 2. The manager is provisioned first, then the user referencing it
    mgr_name = "Test_Manager_4f1d2c3b"
    manager = await entra.call("POST", "/Users", entra_user(mgr_name), status=201)
    created = await entra.call("POST", "/Users", entra_user(user_name, manager["id"]), status=201)
    assert_user(created)
    uid = created["id"]
    assert set(created["schemas"]) == {USER, ENTERPRISE} and created["active"] is True
    assert created["externalId"] == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    assert created["name"]["formatted"] == "givenName familyName"
    assert created["emails"][0] == {
        "primary": True,
        "type": "work",
        "value": f"{user_name}@testuser.com",
    }
    ext = created[ENTERPRISE]
    assert ext["employeeNumber"] == "100009" and ext["department"] == "Human Resources US"
    assert ext["manager"]["value"] == manager["id"]
    assert "roles" not in created  # empty values are unassigned (RFC 7643 §2.5)

    # 3. "Get User" and "Get User by query"
    assert (await entra.call("GET", f"/Users/{uid}"))["userName"] == user_name
    one = await entra.call("GET", "/Users", params={"filter": f'userName eq "{user_name}"'})
    assert assert_list(one, 1)[0]["id"] == uid

    # 4. "Update User": one operation per attribute, op "Replace" capitalised
    new_manager = await entra.call("POST", "/Users", entra_user("Test_Manager_2"), status=201)
    update = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Updated DisplayName"},
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updated@testuser.com",
            },
            {"op": "Replace", "path": "name.givenName", "value": "UpdatedGiven"},
            {
                "op": "Replace",
                "path": f"{ENTERPRISE}:manager",
                "value": {"value": new_manager["id"]},
            },
        ],
    }
    patched = await entra.call("PATCH", f"/Users/{uid}", update)
    assert_user(patched)
    assert patched["displayName"] == "Updated DisplayName"
    assert patched["emails"] == [{"primary": True, "type": "work", "value": "updated@testuser.com"}]
    assert patched["name"] == {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "UpdatedGiven",
    }
    assert patched[ENTERPRISE]["manager"]["value"] == new_manager["id"]
    assert patched[ENTERPRISE]["employeeNumber"] == "100009"
    assert (await entra.gate.directories.get_user(uid)).email == "updated@testuser.com"

    # 5. With aadOptscim062020: one "replace" without a path, keys are attribute paths
    flagged = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "replace",
                "value": {
                    "displayName": "Flagged DisplayName",
                    'emails[type eq "work"].value': "flagged@testuser.com",
                    "name.familyName": "FlaggedFamily",
                    f"{ENTERPRISE}:employeeNumber": "100010",
                },
            }
        ],
    }
    patched = await entra.call("PATCH", f"/Users/{uid}", flagged)
    assert patched["displayName"] == "Flagged DisplayName"
    assert patched["emails"][0]["value"] == "flagged@testuser.com"
    assert patched["name"]["familyName"] == "FlaggedFamily"
    assert patched[ENTERPRISE]["employeeNumber"] == "100010"

    # 6. The periodic sync re-sends unchanged values: no write, no event, same version
    updates_before = len(await entra.events("dsync.user.updated"))
    noop = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "userName", "value": user_name},
            {"op": "Replace", "path": "displayName", "value": "Flagged DisplayName"},
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "flagged@testuser.com",
            },
            {"op": "Replace", "path": "active", "value": "True"},
        ],
    }
    again = await entra.call("PATCH", f"/Users/{uid}", noop)
    assert again["meta"]["version"] == patched["meta"]["version"]
    assert len(await entra.events("dsync.user.updated")) == updates_before

    # 7. "Create Group" (Entra lists its own ADSCIM schema URI and sends meta)
    group_body = {
        "schemas": [
            GROUP,
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": {"resourceType": "Group"},
    }
    group = await entra.call("POST", "/Groups", group_body, status=201)
    assert_group(group)
    gid = group["id"]
    assert group["displayName"] == "displayName" and group.get("members", []) == []
    assert group["externalId"] == "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"

    # 8. "Get Group by displayName" and "Get Group", without members
    params = {"excludedAttributes": "members", "filter": 'displayName eq "displayName"'}
    listed = assert_list(await entra.call("GET", "/Groups", params=params), 1)
    assert listed[0]["id"] == gid and "members" not in listed[0]
    one_group = await entra.call("GET", f"/Groups/{gid}", params={"excludedAttributes": "members"})
    assert one_group["displayName"] == "displayName" and "members" not in one_group

    # 9. "Update Group [Add Members]" (Entra documents 204 No Content for its group PATCHes)
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}]}],
    }
    assert await entra.call("PATCH", f"/Groups/{gid}", add, status=204) is None
    added = await entra.call("GET", f"/Groups/{gid}")
    assert [m["value"] for m in added["members"]] == [uid]
    assert [g["value"] for g in (await entra.call("GET", f"/Users/{uid}"))["groups"]] == [gid]

    # 10. "Update Group [Non-member attributes]"
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "displayName", "value": "displayName updated"}],
    }
    assert await entra.call("PATCH", f"/Groups/{gid}", rename, status=204) is None
    renamed = await entra.call("GET", f"/Groups/{gid}")
    assert renamed["displayName"] == "displayName updated"
    assert [m["value"] for m in renamed["members"]] == [uid]

    # 11. "Update Group [Remove Members]": a value array, not a filter
    remove = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": uid}]}
        ],
    }
    assert await entra.call("PATCH", f"/Groups/{gid}", remove, status=204) is None
    removed = await entra.call("GET", f"/Groups/{gid}")
    assert removed.get("members", []) == []
    assert (await entra.call("GET", f"/Users/{uid}")).get("groups", []) == []

    # 12. "Disable User": the boolean as a string (Entra without aadOptscim062020)
    disable = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    off = await entra.call("PATCH", f"/Users/{uid}", disable)
    assert off["active"] is False
    assert [u.id for u in entra.deprovisioned] == [uid]
    assert (await entra.gate.directories.get_user(uid)).state == "inactive"

    # 13. "Delete User" and "Delete Group"
    assert await entra.call("DELETE", f"/Users/{uid}", status=204) is None
    await entra.call("GET", f"/Users/{uid}", status=404)
    gone = await entra.call("GET", "/Users", params={"filter": f'userName eq "{user_name}"'})
    assert assert_list(gone, 0) == []
    assert await entra.call("DELETE", f"/Groups/{gid}", status=204) is None
    assert len(entra.deprovisioned) == 1  # already inactive: the DELETE deprovisions no one new
    assert len(await entra.events("dsync.user.deleted")) == 1
