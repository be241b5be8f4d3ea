"""RFC 7644 §3.5.2 PATCH, with the requests Microsoft Entra ID and Okta document sending."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sso_gate.scim.errors import SCIMError
from sso_gate.scim.patch import MemberChange, PatchResult, apply_patch
from sso_gate.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    PATCH_SCHEMA,
    USER_SCHEMA,
    USER_TYPE,
    ResourceType,
    validate_resource,
)
from tests.scim.conftest import load

ENT = ENTERPRISE_USER_SCHEMA
BJENSEN_ID = "2819c223-7f76-453a-919d-413861904646"


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def patch(
    resource: dict[str, Any],
    *operations: dict[str, Any],
    rtype: ResourceType = USER_TYPE,
    **kw: Any,
) -> PatchResult:
    before = copy.deepcopy(resource)
    result = apply_patch(rtype, resource, body(*operations), **kw)
    assert resource == before, "apply_patch mutated its input"
    assert result.resource is not resource
    assert result.changed == (result.resource != before)
    # the result still passes POST/PUT validation (for users, unchanged by it)
    stored = {k: v for k, v in result.resource.items() if k not in ("id", "meta")}
    revalidated = validate_resource(rtype, stored)
    if rtype is USER_TYPE:
        assert revalidated == stored
    return result


def fails(
    resource: dict[str, Any],
    *operations: dict[str, Any],
    scim_type: str,
    rtype: ResourceType = USER_TYPE,
    raw: Any = None,
    **kw: Any,
) -> SCIMError:
    before = copy.deepcopy(resource)
    with pytest.raises(SCIMError) as info:
        apply_patch(rtype, resource, raw if raw is not None else body(*operations), **kw)
    assert resource == before
    assert info.value.scim_type == scim_type, info.value.message
    assert info.value.http_status == 400
    return info.value


@pytest.fixture
def bjensen() -> dict[str, Any]:
    """RFC 7643 §8.3 as stored (normalized, id and meta set by the server)."""
    raw = load("rfc7643-8.3-enterprise-user.json")
    return {**validate_resource(USER_TYPE, raw), "id": raw["id"], "meta": raw["meta"]}


@pytest.fixture
def entra_user() -> dict[str, Any]:
    raw = load("entra-create-user.json")
    return {**validate_resource(USER_TYPE, raw), "id": "usr_1", "meta": {"resourceType": "User"}}


@pytest.fixture
def group() -> dict[str, Any]:
    raw = load("entra-create-group.json")
    return {**validate_resource(GROUP_TYPE, raw), "id": "grp_1", "meta": {"resourceType": "Group"}}


# --- request structure -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"Operations": []}, "'schemas' must contain"),
        ({"schemas": ["urn:wrong"], "Operations": []}, "'schemas' must contain"),
        ({"schemas": [PATCH_SCHEMA]}, "'Operations' must be a JSON array"),
        ({"schemas": [PATCH_SCHEMA], "Operations": {"op": "add"}}, "'Operations' must be"),
        ({"schemas": [PATCH_SCHEMA], "Operations": ["add"]}, "operation 1 must be a JSON object"),
        ({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "move", "path": "x"}]}, "op must be"),
        ({"schemas": [PATCH_SCHEMA], "Operations": [{"path": "title"}]}, "op must be"),
        (
            {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "title"}]},
            "needs a value",
        ),
    ],
)
def test_malformed_requests_are_invalid_syntax(
    raw: Any, fragment: str, bjensen: dict[str, Any]
) -> None:
    assert fragment in fails(bjensen, scim_type="invalidSyntax", raw=raw).message


def test_empty_operations_change_nothing(bjensen: dict[str, Any]) -> None:
    result = patch(bjensen)
    assert result.resource == bjensen and not result.changed and result.members.empty


def test_request_keys_and_ops_are_case_insensitive(bjensen: dict[str, Any]) -> None:
    raw = {
        "Schemas": [PATCH_SCHEMA.upper()],
        "operations": [{"OP": "RePlAcE", "Path": "title", "Value": "X"}],
    }
    assert apply_patch(USER_TYPE, bjensen, raw).resource["title"] == "X"


def test_errors_name_the_operation(bjensen: dict[str, Any]) -> None:
    err = fails(
        bjensen,
        {"op": "replace", "path": "title", "value": "ok"},
        {"op": "replace", "path": "nosuch", "value": 1},
        scim_type="invalidPath",
    )
    assert err.message.startswith("operation 2 (replace nosuch): unknown attribute path 'nosuch'")


# --- Microsoft Entra ID ----------------------------------------------------------------------


def test_entra_disable_user_with_string_boolean(entra_user: dict[str, Any]) -> None:
    # Without the aadOptscim062020 flag: {"op": "Replace", "path": "active", "value": "False"}
    result = patch(entra_user, {"op": "Replace", "path": "active", "value": "False"})
    assert result.resource["active"] is False and result.changed
    again = patch(result.resource, {"op": "replace", "path": "active", "value": False})
    assert not again.changed


def test_entra_add_single_valued_string(entra_user: dict[str, Any]) -> None:
    for op in ("Add", "add"):
        assert (
            patch(entra_user, {"op": op, "path": "nickName", "value": "Babs"}).resource["nickName"]
            == "Babs"
        )


def test_entra_replace_multiple_attributes_without_flag(entra_user: dict[str, Any]) -> None:
    result = patch(
        entra_user,
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": "TestBcwqnm@test.microsoft.com",
        },
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": f"{ENT}:employeeNumber", "value": "Eqpj"},
    )
    r = result.resource
    assert r["displayName"] == "Pvlo" and r["externalId"] == "Eqpj"
    assert r["emails"] == [
        {"primary": True, "type": "work", "value": "TestBcwqnm@test.microsoft.com"}
    ]
    assert r["name"] == {
        "formatted": "givenName familyName",
        "familyName": "Pkqf",
        "givenName": "Gtfd",
    }
    assert r[ENT] == {"employeeNumber": "Eqpj"}
    assert r["schemas"] == [USER_SCHEMA, ENT]


def test_entra_replace_multiple_attributes_with_flag(entra_user: dict[str, Any]) -> None:
    # aadOptscim062020: one path-less replace whose keys are attribute paths
    result = patch(
        entra_user,
        {
            "op": "replace",
            "path": 'emails[type eq "work"].value',
            "value": "TestMhvaes@test.microsoft.com",
        },
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                f"{ENT}:employeeNumber": "Aklq",
            },
        },
    )
    r = result.resource
    assert r["displayName"] == "Bjfe"
    assert r["name"]["givenName"] == "Kkom" and r["name"]["familyName"] == "Unua"
    assert r["name"]["formatted"] == "givenName familyName"  # other sub-attributes stay
    assert r["emails"][0]["value"] == "TestMhvaes@test.microsoft.com"
    assert r[ENT] == {"employeeNumber": "Aklq"}


def test_entra_filtered_path_on_absent_array_creates_the_value() -> None:
    bare = {"schemas": [USER_SCHEMA], "id": "u", "userName": "x"}
    result = patch(
        bare, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "w@x.test"}
    )
    assert result.resource["emails"] == [{"type": "work", "value": "w@x.test"}]
    added = patch(
        bare, {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1"}
    )
    assert added.resource["phoneNumbers"] == [{"type": "mobile", "value": "+1"}]
    address = patch(
        bare,
        {"op": "Add", "path": 'addresses[type eq "work"].streetAddress', "value": "1 Main St"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Springfield"},
    )
    assert address.resource["addresses"] == [
        {"type": "work", "streetAddress": "1 Main St", "locality": "Springfield"}
    ]


def test_entra_filtered_path_with_other_values_present_adds_one(bjensen: dict[str, Any]) -> None:
    result = patch(
        bjensen, {"op": "Replace", "path": 'emails[type eq "other"].value', "value": "o@x"}
    )
    assert result.resource["emails"] == bjensen["emails"] + [{"type": "other", "value": "o@x"}]


def test_entra_manager(entra_user: dict[str, Any]) -> None:
    added = patch(entra_user, {"op": "Add", "path": f"{ENT}:manager", "value": "mgr-1"})
    assert added.resource[ENT] == {"manager": {"value": "mgr-1"}}
    assert added.resource["schemas"] == [USER_SCHEMA, ENT]
    replaced = patch(added.resource, {"op": "Replace", "path": f"{ENT}:manager", "value": "mgr-2"})
    assert replaced.resource[ENT] == {"manager": {"value": "mgr-2"}}
    by_value = patch(
        replaced.resource, {"op": "replace", "path": f"{ENT}:manager.value", "value": "mgr-3"}
    )
    assert by_value.resource[ENT]["manager"] == {"value": "mgr-3"}
    removed = patch(by_value.resource, {"op": "Remove", "path": f"{ENT}:manager", "value": "mgr-3"})
    assert ENT not in removed.resource  # the now-empty extension object is unassigned
    same = patch(
        added.resource, {"op": "Replace", "path": f"{ENT}:manager", "value": {"value": "mgr-1"}}
    )
    assert not same.changed


def test_entra_group_rename_and_member_changes(group: dict[str, Any]) -> None:
    renamed = patch(
        group, {"op": "Replace", "path": "displayName", "value": "renamed"}, rtype=GROUP_TYPE
    )
    assert renamed.resource["displayName"] == "renamed" and renamed.members.empty
    added = patch(
        group,
        {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}],
        },
        rtype=GROUP_TYPE,
    )
    assert added.members == MemberChange(added=("f648f8d5ea4e4cd38e9c",))
    assert "members" not in added.resource and not added.changed
    removed = patch(
        group,
        {
            "op": "Remove",
            "path": "members",
            "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}],
        },
        rtype=GROUP_TYPE,
    )
    assert removed.members == MemberChange(removed=("f648f8d5ea4e4cd38e9c",))
    flagged = patch(
        group,
        {"op": "remove", "path": 'members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]'},
        rtype=GROUP_TYPE,
    )
    assert flagged.members == MemberChange(removed=("7f4bc1a3-285e-48ae-8202-5accb43efb0e",))


def test_entra_periodic_noop(entra_user: dict[str, Any], group: dict[str, Any]) -> None:
    result = patch(
        entra_user,
        {"op": "Replace", "path": "userName", "value": entra_user["userName"]},
        {"op": "Replace", "path": "active", "value": "True"},
        {
            "op": "Replace",
            "path": 'emails[type eq "work"].value',
            "value": entra_user["emails"][0]["value"],
        },
        {"op": "Replace", "path": "name.givenName", "value": "givenName"},
        {"op": "Add", "path": "roles", "value": []},
    )
    assert not result.changed and result.resource == entra_user
    group_result = patch(
        group, {"op": "Replace", "path": "displayName", "value": "displayName"}, rtype=GROUP_TYPE
    )
    assert not group_result.changed and group_result.members.empty


def test_entra_custom_extension_attributes(entra_user: dict[str, Any]) -> None:
    custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
    added = patch(entra_user, {"op": "Add", "path": f"{custom}:CustomAttribute", "value": "v1"})
    assert added.resource[custom] == {"CustomAttribute": "v1"}
    assert added.resource["schemas"] == [USER_SCHEMA, ENT, custom]
    renamed = patch(added.resource, {"op": "replace", "value": {f"{custom}:customattribute": "v2"}})
    assert renamed.resource[custom] == {"CustomAttribute": "v2"}  # stored spelling kept
    removed = patch(renamed.resource, {"op": "Remove", "path": f"{custom}:CustomAttribute"})
    assert custom not in removed.resource
    listed = patch(
        entra_user,
        {"op": "Add", "path": f"{custom}:ids", "value": [{"value": "1"}]},
        {"op": "Add", "path": f"{custom}:ids", "value": [{"value": "2"}]},
    )
    assert listed.resource[custom] == {"ids": [{"value": "1"}, {"value": "2"}]}
    fails(
        entra_user,
        {"op": "add", "path": f'{custom}:ids[value eq "1"]', "value": "x"},
        scim_type="invalidPath",
    )


# --- Okta ------------------------------------------------------------------------------------


def test_okta_deactivate_user() -> None:
    user = {**validate_resource(USER_TYPE, load("okta-create-user.json")), "id": "u"}
    result = patch(user, {"op": "replace", "value": {"active": False}})
    assert result.resource["active"] is False and result.changed


def test_okta_password_sync_is_accepted_and_not_stored() -> None:
    user = {**validate_resource(USER_TYPE, load("okta-create-user.json")), "id": "u"}
    result = patch(user, {"op": "replace", "value": {"password": "n3w-pa55"}})
    assert not result.changed and "password" not in result.resource
    assert not patch(user, {"op": "replace", "path": "password", "value": "x"}).changed
    fails(user, {"op": "replace", "path": "password", "value": 5}, scim_type="invalidValue")


def test_okta_group_rename_includes_the_readonly_id(group: dict[str, Any]) -> None:
    result = patch(
        group,
        {
            "op": "replace",
            "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"},
        },
        rtype=GROUP_TYPE,
    )
    assert result.resource["displayName"] == "Test SCIMv2"
    assert result.resource["id"] == "grp_1"  # readOnly values in a path-less value are ignored


def test_okta_group_members(group: dict[str, Any]) -> None:
    result = patch(
        group,
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
            ],
        },
        {"op": "remove", "path": 'members[value eq "89bb1940-b905-4575-9e7f-6f887cfb368e"]'},
        rtype=GROUP_TYPE,
    )
    assert result.members == MemberChange(
        added=("23a35c27-23d3-4c03-b4c5-6443c09e7173",),
        removed=("89bb1940-b905-4575-9e7f-6f887cfb368e",),
    )


# --- RFC 7644 §3.5.2 examples ----------------------------------------------------------------


def test_rfc_add_member(group: dict[str, Any]) -> None:
    result = patch(
        group,
        {
            "op": "add",
            "path": "members",
            "value": [
                {
                    "display": "Babs Jensen",
                    "$ref": f"https://example.com/v2/Users/{BJENSEN_ID}",
                    "value": BJENSEN_ID,
                }
            ],
        },
        rtype=GROUP_TYPE,
    )
    assert result.members == MemberChange(added=(BJENSEN_ID,))


def test_rfc_add_without_path(bjensen: dict[str, Any]) -> None:
    result = patch(
        bjensen,
        {
            "op": "add",
            "value": {
                "emails": [
                    {"value": "babs@jensen.org", "type": "home"},
                    {"value": "new@jensen.org", "type": "other"},
                ],
                "nickname": "Babsy",
            },
        },
    )
    assert result.resource["nickName"] == "Babsy"
    assert result.resource["emails"] == bjensen["emails"] + [
        {"value": "new@jensen.org", "type": "other"}
    ]


def test_rfc_remove_members(group: dict[str, Any]) -> None:
    everyone = patch(group, {"op": "remove", "path": "members"}, rtype=GROUP_TYPE)
    assert everyone.members == MemberChange(replaced=())
    two = patch(
        group,
        {"op": "remove", "path": f'members[value eq "{BJENSEN_ID}"]'},
        {"op": "remove", "path": 'members[value eq "902c246b-6245-4190-8e05-00816be7344a"]'},
        rtype=GROUP_TYPE,
    )
    assert two.members.removed == (BJENSEN_ID, "902c246b-6245-4190-8e05-00816be7344a")
    either = patch(
        group, {"op": "remove", "path": 'members[value eq "a" or value eq "b"]'}, rtype=GROUP_TYPE
    )
    assert either.members.removed == ("a", "b")


def test_rfc_replace_all_members(group: dict[str, Any]) -> None:
    result = patch(
        group,
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [{"value": BJENSEN_ID}, {"value": "456"}]},
        rtype=GROUP_TYPE,
    )
    assert result.members == MemberChange(replaced=(BJENSEN_ID, "456"))
    direct = patch(
        group, {"op": "replace", "path": "members", "value": [{"value": "1"}]}, rtype=GROUP_TYPE
    )
    assert direct.members == MemberChange(replaced=("1",))
    pathless = patch(
        group, {"op": "replace", "value": {"members": [{"value": "2"}]}}, rtype=GROUP_TYPE
    )
    assert pathless.members == MemberChange(replaced=("2",))


def test_rfc_remove_filtered_values(bjensen: dict[str, Any]) -> None:
    result = patch(
        bjensen, {"op": "remove", "path": 'emails[type eq "work" and value ew "example.com"]'}
    )
    assert result.resource["emails"] == [{"value": "babs@jensen.org", "type": "home"}]
    sub = patch(bjensen, {"op": "remove", "path": 'emails[type eq "home"].type'})
    assert sub.resource["emails"][1] == {"value": "babs@jensen.org"}
    nothing = patch(bjensen, {"op": "remove", "path": 'emails[type eq "fax"]'})
    assert not nothing.changed  # removing what is not there is not an error
    every = patch(bjensen, {"op": "remove", "path": "emails[value pr]"})
    assert "emails" not in every.resource  # no value left: unassigned


def test_rfc_replace_filtered_values(bjensen: dict[str, Any]) -> None:
    address = {
        "type": "work",
        "streetAddress": "911 Universal City Plaza",
        "locality": "Hollywood",
        "region": "CA",
        "postalCode": "91608",
        "country": "US",
        "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
        "primary": True,
    }
    result = patch(
        bjensen, {"op": "replace", "path": 'addresses[type eq "work"]', "value": address}
    )
    assert result.resource["addresses"][0] == address
    assert result.resource["addresses"][1] == bjensen["addresses"][1]
    street = patch(
        bjensen,
        {
            "op": "replace",
            "path": 'addresses[type eq "work"].streetAddress',
            "value": "1010 Broadway Ave",
        },
    )
    assert street.resource["addresses"][0]["streetAddress"] == "1010 Broadway Ave"
    assert street.resource["addresses"][0]["locality"] == "Hollywood"


def test_rfc_replace_without_path(bjensen: dict[str, Any]) -> None:
    result = patch(
        bjensen,
        {
            "op": "replace",
            "value": {
                "emails": [
                    {"value": "bjensen@example.com", "type": "work", "primary": True},
                    {"value": "babs@jensen.org", "type": "home"},
                ],
                "nickname": "Babs",
            },
        },
    )
    assert not result.changed  # same values as stored
    replaced = patch(bjensen, {"op": "replace", "value": {"emails": [{"value": "only@x"}]}})
    assert replaced.resource["emails"] == [{"value": "only@x"}]


def test_rfc_remove_single_valued(bjensen: dict[str, Any]) -> None:
    result = patch(
        bjensen, {"op": "remove", "path": "title"}, {"op": "remove", "path": "name.middleName"}
    )
    assert "title" not in result.resource and "middleName" not in result.resource["name"]
    assert not patch(bjensen, {"op": "remove", "path": "entitlements"}).changed


# --- semantics -------------------------------------------------------------------------------


def test_remove_without_path_is_no_target(bjensen: dict[str, Any]) -> None:
    assert "needs a path" in fails(bjensen, {"op": "remove"}, scim_type="noTarget").message
    fails(bjensen, {"op": "Remove", "value": {"title": "x"}}, scim_type="noTarget")


def test_replace_unmatched_filter_that_implies_no_value_is_no_target(
    bjensen: dict[str, Any],
) -> None:
    fails(
        bjensen,
        {"op": "replace", "path": 'emails[value ew ".invalid"].type', "value": "work"},
        scim_type="noTarget",
    )
    fails(
        bjensen,
        {"op": "replace", "path": 'emails[type eq "a" or type eq "b"].value', "value": "x"},
        scim_type="noTarget",
    )


@pytest.mark.parametrize(
    ("op", "fragment"),
    [
        ({"op": "replace", "path": "id", "value": "x"}, "'id' is readOnly"),
        ({"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}, "readOnly"),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "'groups' is readOnly"),
        ({"op": "remove", "path": "groups"}, "readOnly"),
        ({"op": "replace", "path": f"{ENT}:manager.displayName", "value": "x"}, "readOnly"),
        ({"op": "remove", "path": "userName"}, "'userName' is required"),
        ({"op": "replace", "path": "userName", "value": None}, "required"),
    ],
)
def test_mutability_errors(op: dict[str, Any], fragment: str, bjensen: dict[str, Any]) -> None:
    assert fragment in fails(bjensen, op, scim_type="mutability").message


def test_required_attribute_of_a_group(group: dict[str, Any]) -> None:
    fails(group, {"op": "remove", "path": "displayName"}, scim_type="mutability", rtype=GROUP_TYPE)
    fails(
        group,
        {"op": "replace", "path": "displayName", "value": ""},
        scim_type="invalidValue",
        rtype=GROUP_TYPE,
    )


def test_immutable_member_values(group: dict[str, Any]) -> None:
    loaded = {**group, "members": [{"value": "u1", "display": "Alice"}, {"value": "u2"}]}
    fails(
        loaded,
        {"op": "replace", "path": 'members[value eq "u1"].value', "value": "u9"},
        scim_type="mutability",
        rtype=GROUP_TYPE,
        members_in_resource=True,
    )


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "active", "value": "maybe"},
        {"op": "replace", "path": "title", "value": 5},
        {"op": "replace", "path": "name", "value": "Barbara"},
        {"op": "replace", "path": "name.givenName", "value": ["B"]},
        {"op": "add", "path": "emails", "value": [{"value": 1}]},
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "a", "primary": True}, {"value": "b", "primary": True}],
        },
        {"op": "replace", "path": 'emails[type eq "work"].primary', "value": "sure"},
        {"op": "replace", "value": ["title"]},
        {"op": "replace", "path": ENT, "value": "Ops"},
        {"op": "replace", "path": "userName", "value": ""},
    ],
)
def test_invalid_values(op: dict[str, Any], bjensen: dict[str, Any]) -> None:
    fails(bjensen, op, scim_type="invalidValue")


@pytest.mark.parametrize(
    "path",
    [
        "nosuch",
        "name.nosuch",
        "department",
        'emails[type eq "work"].nosuch',
        "emails[",
        "a b",
        f"{ENT}:nosuch",
        'title[value eq "x"]',
        "members",
    ],
)
def test_invalid_paths(path: str, bjensen: dict[str, Any]) -> None:
    fails(bjensen, {"op": "replace", "path": path, "value": "x"}, scim_type="invalidPath")


def test_unknown_keys_in_a_pathless_value(bjensen: dict[str, Any]) -> None:
    fails(bjensen, {"op": "replace", "value": {"favouriteColour": "blue"}}, scim_type="invalidPath")
    fails(bjensen, {"op": "add", "value": {ENT: {"shoeSize": 44}}}, scim_type="invalidPath")


def test_invalid_filters_in_paths(bjensen: dict[str, Any]) -> None:
    fails(bjensen, {"op": "remove", "path": "emails[primary gt true]"}, scim_type="invalidFilter")


def test_add_to_multi_valued_merges_and_dedupes(bjensen: dict[str, Any]) -> None:
    same = patch(
        bjensen,
        {"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "home"}]},
    )
    assert not same.changed
    relabel = patch(
        bjensen,
        {"op": "add", "path": "emails", "value": {"value": "BABS@jensen.org", "display": "B"}},
    )
    assert relabel.resource["emails"][1] == {
        "value": "BABS@jensen.org",
        "type": "home",
        "display": "B",
    }
    roles = patch(
        bjensen,
        {
            "op": "Add",
            "path": "roles",
            "value": [
                {"primary": "False", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}
            ],
        },
    )
    assert roles.resource["roles"] == [
        {"primary": False, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}
    ]


def test_new_primary_value_demotes_the_old_one(bjensen: dict[str, Any]) -> None:
    # RFC 7644 §3.5.2: the server sets "primary" to false on the other values
    result = patch(
        bjensen, {"op": "add", "path": "emails", "value": [{"value": "n@x", "primary": True}]}
    )
    assert [e.get("primary") for e in result.resource["emails"]] == [False, None, True]
    flagged = patch(
        bjensen, {"op": "replace", "path": 'emails[type eq "home"].primary', "value": "True"}
    )
    assert [e.get("primary") for e in flagged.resource["emails"]] == [False, True]


def test_sub_attribute_without_filter(bjensen: dict[str, Any]) -> None:
    bare = {"schemas": [USER_SCHEMA], "userName": "x"}
    assert patch(bare, {"op": "add", "path": "emails.value", "value": "a@x"}).resource[
        "emails"
    ] == [{"value": "a@x"}]
    every = patch(bjensen, {"op": "replace", "path": "phoneNumbers.type", "value": "other"})
    assert [p["type"] for p in every.resource["phoneNumbers"]] == ["other", "other"]
    gone = patch(
        bjensen, {"op": "remove", "path": "ims.value"}, {"op": "remove", "path": "ims.type"}
    )
    assert "ims" not in gone.resource
    name = patch(bare, {"op": "add", "path": "name.givenName", "value": "X"})
    assert name.resource["name"] == {"givenName": "X"}


def test_complex_single_valued_merges(bjensen: dict[str, Any]) -> None:
    result = patch(bjensen, {"op": "replace", "path": "name", "value": {"givenName": "Babs"}})
    assert result.resource["name"] == {**bjensen["name"], "givenName": "Babs"}
    cleared = patch(bjensen, {"op": "remove", "path": "name"})
    assert "name" not in cleared.resource


def test_null_value_unassigns(bjensen: dict[str, Any]) -> None:
    result = patch(
        bjensen,
        {"op": "replace", "path": "title", "value": None},
        {"op": "replace", "value": {"nickName": None}},
    )
    assert "title" not in result.resource and "nickName" not in result.resource


def test_whole_extension_paths(entra_user: dict[str, Any], bjensen: dict[str, Any]) -> None:
    added = patch(
        entra_user, {"op": "add", "path": ENT, "value": {"department": "Ops", "costCenter": "1"}}
    )
    assert added.resource[ENT] == {"department": "Ops", "costCenter": "1"}
    merged = patch(added.resource, {"op": "replace", "value": {ENT: {"department": "Eng"}}})
    assert merged.resource[ENT] == {"department": "Eng", "costCenter": "1"}
    removed = patch(bjensen, {"op": "remove", "path": ENT})
    assert ENT not in removed.resource
    fails(bjensen, {"op": "remove", "path": USER_SCHEMA}, scim_type="mutability")
    core = patch(bjensen, {"op": "replace", "path": USER_SCHEMA, "value": {"title": "Boss"}})
    assert core.resource["title"] == "Boss"


def test_pathless_custom_extension_objects(entra_user: dict[str, Any]) -> None:
    custom = "http://schemas.example.com/custom/2.0/User"
    result = patch(
        entra_user,
        {"op": "add", "value": {custom: {"badge": 1}}},
        {"op": "add", "value": {custom: {"floor": 2}}},
    )
    assert result.resource[custom] == {"badge": 1, "floor": 2}
    assert custom in result.resource["schemas"]
    fails(entra_user, {"op": "add", "value": {custom: "x"}}, scim_type="invalidValue")


def test_schemas_follow_the_extension_data(bjensen: dict[str, Any]) -> None:
    result = patch(bjensen, {"op": "replace", "value": {"schemas": ["urn:x"], "title": "T"}})
    assert result.resource["schemas"] == bjensen["schemas"] and result.resource["title"] == "T"
    fails(bjensen, {"op": "replace", "path": "schemas", "value": ["urn:x"]}, scim_type="mutability")
    fails(bjensen, {"op": "remove", "path": "schemas"}, scim_type="mutability")


def test_whole_custom_extension_by_urn(entra_user: dict[str, Any]) -> None:
    custom = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User"
    added = patch(entra_user, {"op": "add", "path": custom, "value": {"badge": 1}})
    assert added.resource[custom] == {"badge": 1} and custom in added.resource["schemas"]
    merged = patch(added.resource, {"op": "replace", "path": custom.upper(), "value": {"floor": 2}})
    assert merged.resource[custom] == {"badge": 1, "floor": 2}
    removed = patch(merged.resource, {"op": "remove", "path": custom})
    assert custom not in removed.resource


def test_null_extension_unassigns_it(bjensen: dict[str, Any]) -> None:
    assert ENT not in patch(bjensen, {"op": "replace", "path": ENT, "value": None}).resource
    assert ENT not in patch(bjensen, {"op": "replace", "value": {ENT: None}}).resource


# --- group members ---------------------------------------------------------------------------


def test_member_changes_fold_in_request_order(group: dict[str, Any]) -> None:
    def members(*ops: dict[str, Any]) -> MemberChange:
        return patch(group, *ops, rtype=GROUP_TYPE).members

    add = {"op": "add", "path": "members"}
    remove = {"op": "remove", "path": "members"}
    assert members({**add, "value": [{"value": "a"}]}, {**remove, "value": [{"value": "a"}]}) == (
        MemberChange(removed=("a",))
    )
    assert members({**remove, "value": [{"value": "a"}]}, {**add, "value": [{"value": "a"}]}) == (
        MemberChange(added=("a",))
    )
    assert members({**add, "value": [{"value": "a"}, {"value": "a"}, {"value": "b"}]}) == (
        MemberChange(added=("a", "b"))
    )
    assert members(
        {"op": "replace", "path": "members", "value": [{"value": "a"}]},
        {**add, "value": [{"value": "b"}]},
        {**remove, "value": [{"value": "a"}]},
    ) == MemberChange(replaced=("b",))
    assert members({"op": "replace", "path": "members", "value": []}) == MemberChange(replaced=())
    assert members({"op": "add", "value": {"members": [{"value": "c"}], "displayName": "x"}}) == (
        MemberChange(added=("c",))
    )


def test_member_errors(group: dict[str, Any]) -> None:
    fails(
        group,
        {"op": "add", "path": "members", "value": [{"display": "no id"}]},
        scim_type="invalidValue",
        rtype=GROUP_TYPE,
    )
    fails(
        group,
        {"op": "add", "path": "members", "value": [{"value": "a", "operation": "delete"}]},
        scim_type="invalidSyntax",
        rtype=GROUP_TYPE,
    )
    fails(
        group,
        {"op": "replace", "path": 'members[value eq "a"].display', "value": "x"},
        scim_type="invalidPath",
        rtype=GROUP_TYPE,
    )
    fails(
        group,
        {"op": "remove", "path": 'members[type eq "User"]'},
        scim_type="invalidFilter",
        rtype=GROUP_TYPE,
    )


def test_member_filters_on_loaded_members(group: dict[str, Any]) -> None:
    loaded = {
        **group,
        "members": [{"value": "u1", "type": "User"}, {"value": "g1", "type": "Group"}],
    }
    result = patch(loaded, {"op": "remove", "path": 'members[type eq "Group"]'}, rtype=GROUP_TYPE)
    assert result.members == MemberChange(removed=("g1",))
    assert result.resource["members"] == loaded["members"]  # applied by storage, not here


def test_members_in_resource(group: dict[str, Any]) -> None:
    loaded = {**group, "members": [{"value": "u1", "display": "Alice"}, {"value": "u2"}]}
    result = apply_patch(
        GROUP_TYPE,
        loaded,
        body(
            {"op": "add", "path": "members", "value": [{"value": "u3"}, {"value": "u1"}]},
            {"op": "remove", "path": 'members[value eq "u2"]'},
        ),
        members_in_resource=True,
    )
    assert result.resource["members"] == [{"value": "u1", "display": "Alice"}, {"value": "u3"}]
    assert result.members == MemberChange(added=("u3",), removed=("u2",))
    assert result.changed
    replaced = apply_patch(
        GROUP_TYPE,
        loaded,
        body({"op": "replace", "path": "members", "value": [{"value": "u2"}]}),
        members_in_resource=True,
    )
    assert replaced.resource["members"] == [{"value": "u2"}]
    assert replaced.members == MemberChange(removed=("u1",), replaced=("u2",))
    noop = apply_patch(
        GROUP_TYPE,
        loaded,
        body({"op": "add", "path": "members", "value": [{"value": "u2"}]}),
        members_in_resource=True,
    )
    assert not noop.changed and noop.members == MemberChange()


def test_users_have_no_member_changes(bjensen: dict[str, Any]) -> None:
    assert (
        patch(bjensen, {"op": "replace", "path": "title", "value": "x"}).members == MemberChange()
    )


def test_group_created_by_okta_keeps_its_members_on_patch() -> None:
    stored = {**validate_resource(GROUP_TYPE, load("okta-create-group.json")), "id": "g"}
    result = patch(stored, {"op": "replace", "path": "displayName", "value": "x"}, rtype=GROUP_TYPE)
    assert result.resource["members"] == stored["members"] and result.members.empty
    assert GROUP_SCHEMA in result.resource["schemas"]
