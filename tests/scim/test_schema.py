"""RFC 7643 schemas as data: definitions, discovery documents, validation and projection."""

from __future__ import annotations

from typing import Any

import pytest

from sso_gate.scim import schema
from sso_gate.scim.errors import ERROR_SCHEMA, SCIMError
from sso_gate.scim.filter import AttrPath
from sso_gate.scim.schema import (
    COMMON_ATTRIBUTES,
    ENTERPRISE_USER,
    ENTERPRISE_USER_SCHEMA,
    GROUP,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER,
    USER_SCHEMA,
    USER_TYPE,
    Attribute,
    find_attribute,
    project,
    validate_resource,
)
from tests.scim.conftest import load

ENT = ENTERPRISE_USER_SCHEMA


def user(**attrs: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "bjensen", **attrs}


def error(data: Any, scim_type: str, rtype: Any = USER_TYPE, **kw: Any) -> SCIMError:
    with pytest.raises(SCIMError) as info:
        validate_resource(rtype, data, **kw)
    assert info.value.scim_type == scim_type, info.value.message
    assert info.value.http_status == 400
    return info.value


# --- definitions -----------------------------------------------------------------------------


def test_constants() -> None:
    assert schema.LIST_SCHEMA == "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    assert schema.PATCH_SCHEMA == "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    assert schema.ERROR_SCHEMA == ERROR_SCHEMA == "urn:ietf:params:scim:api:messages:2.0:Error"
    assert schema.SPC_SCHEMA == "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
    assert schema.RESOURCE_TYPE_SCHEMA == "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
    assert schema.SCHEMA_SCHEMA == "urn:ietf:params:scim:schemas:core:2.0:Schema"


def test_user_schema_is_complete_per_rfc7643_4_1() -> None:
    assert [a.name for a in USER.attributes] == [
        "userName", "name", "displayName", "nickName", "profileUrl", "title", "userType",
        "preferredLanguage", "locale", "timezone", "active", "password", "emails",
        "phoneNumbers", "ims", "photos", "addresses", "groups", "entitlements", "roles",
        "x509Certificates",
    ]  # fmt: skip
    user_name = USER.attr("username")
    assert user_name is not None
    assert (user_name.required, user_name.uniqueness, user_name.case_exact) == (
        True,
        "server",
        False,
    )
    name = USER.attr("name")
    assert name is not None and name.type == "complex" and not name.multi_valued
    assert [s.name for s in name.sub_attributes] == [
        "formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"
    ]  # fmt: skip
    active = USER.attr("active")
    assert active is not None and active.type == "boolean"
    password = USER.attr("password")
    assert password is not None
    assert (password.mutability, password.returned) == ("writeOnly", "never")
    for plural in (
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "entitlements",
        "roles",
        "x509Certificates",
    ):
        attr = USER.attr(plural)
        assert attr is not None and attr.multi_valued and attr.type == "complex", plural
        assert [s.name for s in attr.sub_attributes] == ["value", "display", "type", "primary"]
    emails = USER.attr("emails")
    assert emails is not None and emails.sub("type") is not None
    assert emails.sub("TYPE").canonical_values == ("work", "home", "other")  # type: ignore[union-attr]
    addresses = USER.attr("addresses")
    assert addresses is not None and addresses.multi_valued
    assert [s.name for s in addresses.sub_attributes] == [
        "formatted", "streetAddress", "locality", "region", "postalCode", "country", "type", "primary"
    ]  # fmt: skip
    groups = USER.attr("groups")
    assert groups is not None and groups.mutability == "readOnly" and groups.multi_valued
    assert [s.name for s in groups.sub_attributes] == ["value", "$ref", "display", "type"]
    x509 = USER.attr("x509Certificates")
    assert x509 is not None and x509.sub("value").type == "binary"  # type: ignore[union-attr]


def test_enterprise_and_group_schemas_per_rfc7643_4_2_and_4_3() -> None:
    assert [a.name for a in ENTERPRISE_USER.attributes] == [
        "employeeNumber", "costCenter", "organization", "division", "department", "manager"
    ]  # fmt: skip
    manager = ENTERPRISE_USER.attr("manager")
    assert manager is not None
    assert [s.name for s in manager.sub_attributes] == ["value", "$ref", "displayName"]
    assert manager.sub("displayname").mutability == "readOnly"  # type: ignore[union-attr]
    display_name = GROUP.attr("displayName")
    assert display_name is not None and display_name.required
    members = GROUP.attr("members")
    assert members is not None and members.multi_valued
    assert [s.name for s in members.sub_attributes] == ["value", "$ref", "display", "type"]
    assert members.sub("value").mutability == "immutable"  # type: ignore[union-attr]


def test_common_attributes_per_rfc7643_3_1() -> None:
    common = {a.name: a for a in COMMON_ATTRIBUTES}
    assert (common["id"].mutability, common["id"].case_exact, common["id"].returned) == (
        "readOnly", True, "always"
    )  # fmt: skip
    assert common["externalId"].case_exact and common["externalId"].mutability == "readWrite"
    meta = common["meta"]
    assert meta.mutability == "readOnly"
    assert [s.name for s in meta.sub_attributes] == [
        "resourceType", "created", "lastModified", "location", "version"
    ]  # fmt: skip
    assert meta.sub("created").type == "dateTime"  # type: ignore[union-attr]


def test_lookups_are_case_insensitive() -> None:
    assert USER.attr("USERNAME") is USER.attr("userName")
    assert USER.attr("nope") is None
    name = USER.attr("name")
    assert name is not None and name.sub("GIVENNAME") is name.sub("givenName") is not None
    assert USER_TYPE.schema_for(ENT.upper()) is ENTERPRISE_USER
    assert GROUP_TYPE.schema_for(ENT) is None


def test_resource_types() -> None:
    assert (USER_TYPE.name, USER_TYPE.endpoint, USER_TYPE.schema) == ("User", "/Users", USER)
    assert USER_TYPE.extensions == ((ENTERPRISE_USER, False),)
    assert (GROUP_TYPE.name, GROUP_TYPE.endpoint, GROUP_TYPE.schema) == ("Group", "/Groups", GROUP)
    assert GROUP_TYPE.extensions == ()


def test_resource_type_to_scim_per_rfc7643_6() -> None:
    doc = USER_TYPE.to_scim("https://sp.test/scim/v2/ResourceTypes/User")
    assert doc == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{"schema": ENT, "required": False}],
        "meta": {
            "resourceType": "ResourceType",
            "location": "https://sp.test/scim/v2/ResourceTypes/User",
        },
    }
    assert GROUP_TYPE.to_scim("/x")["schemaExtensions"] == []


def test_schema_to_scim_per_rfc7643_7() -> None:
    doc = USER.to_scim(f"https://sp.test/scim/v2/Schemas/{USER_SCHEMA}")
    assert doc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert (doc["id"], doc["name"], doc["description"]) == (USER_SCHEMA, "User", "User Account")
    assert doc["meta"] == {
        "resourceType": "Schema",
        "location": f"https://sp.test/scim/v2/Schemas/{USER_SCHEMA}",
    }
    by_name = {a["name"]: a for a in doc["attributes"]}
    assert by_name["userName"] == {
        "name": "userName",
        "type": "string",
        "multiValued": False,
        "description": by_name["userName"]["description"],
        "required": True,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "server",
    }
    emails = by_name["emails"]
    assert emails["multiValued"] is True and "uniqueness" not in emails
    assert [s["name"] for s in emails["subAttributes"]] == ["value", "display", "type", "primary"]
    assert emails["subAttributes"][2]["canonicalValues"] == ["work", "home", "other"]
    assert by_name["password"]["returned"] == "never"
    assert by_name["groups"]["subAttributes"][1]["referenceTypes"] == ["User", "Group"]
    assert "id" not in by_name  # common attributes belong to no schema (RFC 7643 §3.1)
    assert GROUP.to_scim("/g")["attributes"][1]["name"] == "members"
    assert ENTERPRISE_USER.to_scim("/e")["name"] == "EnterpriseUser"


def test_attribute_defaults() -> None:
    attr = Attribute("x")
    assert (attr.type, attr.multi_valued, attr.mutability, attr.returned) == (
        "string", False, "readWrite", "default"
    )  # fmt: skip
    assert attr.sub("anything") is None


# --- find_attribute --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (AttrPath(None, "userName"), (USER_SCHEMA, "userName", None)),
        (AttrPath(None, "USERNAME"), (USER_SCHEMA, "userName", None)),
        (AttrPath(USER_SCHEMA, "userName"), (USER_SCHEMA, "userName", None)),
        (AttrPath(USER_SCHEMA.upper(), "username"), (USER_SCHEMA, "userName", None)),
        (AttrPath(None, "name", "givenname"), (USER_SCHEMA, "name", "givenName")),
        (AttrPath(None, "emails", "value"), (USER_SCHEMA, "emails", "value")),
        (AttrPath(None, "id"), (USER_SCHEMA, "id", None)),
        (AttrPath(None, "meta", "lastModified"), (USER_SCHEMA, "meta", "lastModified")),
        (AttrPath(None, "schemas"), (USER_SCHEMA, "schemas", None)),
        (AttrPath(ENT, "department"), (ENT, "department", None)),
        (AttrPath(ENT, "manager", "value"), (ENT, "manager", "value")),
        (AttrPath(ENT, "manager", "$REF"), (ENT, "manager", "$ref")),
        (AttrPath(None, "groups", "$ref"), (USER_SCHEMA, "groups", "$ref")),
        (AttrPath(None, "department"), None),  # extension names need their URN
        (AttrPath(ENT, "id"), None),
        (AttrPath(ENT, "userName"), None),
        (AttrPath(None, "name", "nope"), None),
        (AttrPath(None, "userName", "value"), None),
        (AttrPath("urn:unknown", "userName"), None),
        (AttrPath(None, "members"), None),
    ],
)
def test_find_attribute(path: AttrPath, expected: tuple[str, str, str | None] | None) -> None:
    found = find_attribute(USER_TYPE, path)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        schema_, attr, sub = found
        assert (schema_.id, attr.name, sub.name if sub else None) == expected


def test_find_attribute_for_groups() -> None:
    found = find_attribute(GROUP_TYPE, AttrPath(None, "members", "value"))
    assert found is not None and found[0] is GROUP and found[2] is not None
    assert find_attribute(GROUP_TYPE, AttrPath(None, "userName")) is None


# --- validate_resource -----------------------------------------------------------------------


def test_rfc7643_full_enterprise_user() -> None:
    raw = load("rfc7643-8.3-enterprise-user.json")
    stored = validate_resource(USER_TYPE, raw)
    for dropped in ("id", "meta", "groups", "password"):
        assert dropped not in stored  # readOnly, server-set, and never-stored attributes
    assert stored["schemas"] == [USER_SCHEMA, ENT]
    assert stored["emails"] == raw["emails"]
    assert stored["addresses"] == raw["addresses"]
    assert stored[ENT]["manager"] == {  # manager.displayName is readOnly
        "value": "26118915-6090-4610-87e4-49d8ca9f808d",
        "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
    }
    assert validate_resource(USER_TYPE, stored) == stored  # idempotent


def test_entra_create_user_and_group() -> None:
    stored = validate_resource(USER_TYPE, load("entra-create-user.json"))
    assert stored == {
        "schemas": [USER_SCHEMA, ENT],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
            }
        ],
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
    }  # "meta" (readOnly) and "roles": [] (unassigned) are gone
    group = validate_resource(GROUP_TYPE, load("entra-create-group.json"))
    assert group == {
        "schemas": [
            GROUP_SCHEMA,
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
    }


def test_okta_create_user_and_group() -> None:
    stored = validate_resource(USER_TYPE, load("okta-create-user.json"))
    assert "password" not in stored and "groups" not in stored
    assert stored["locale"] == "en-US" and stored["active"] is True
    group = validate_resource(GROUP_TYPE, load("okta-create-group.json"))
    # members.display is derived from the member, so what the client sends is ignored
    assert group["members"] == [{"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173"}]


def test_names_are_canonicalized() -> None:
    stored = validate_resource(
        USER_TYPE,
        {
            "SCHEMAS": [USER_SCHEMA.upper()],
            "username": "b",
            "NAME": {"GIVENNAME": "B"},
            "Emails": [{"VALUE": "b@x", "Primary": True}],
            ENT.upper(): {"DEPARTMENT": "Ops"},
        },
    )
    assert stored == {
        "schemas": [USER_SCHEMA, ENT],
        "userName": "b",
        "name": {"givenName": "B"},
        "emails": [{"value": "b@x", "primary": True}],
        ENT: {"department": "Ops"},
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("True", True),
        ("False", False),
        ("true", True),
        ("FALSE", False),
        (True, True),
        (False, False),
    ],
)
def test_booleans_accept_entra_strings(given: Any, expected: bool) -> None:
    stored = validate_resource(
        USER_TYPE, user(active=given, roles=[{"value": "a", "primary": given}])
    )
    assert stored["active"] is expected
    assert stored["roles"][0]["primary"] is expected


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        ({"active": "yes"}, "'active' must be a boolean"),
        ({"active": 1}, "'active' must be a boolean"),
        ({"title": 5}, "'title' must be a string"),
        ({"name": "Barbara"}, "'name' must be a JSON object"),
        ({"emails": {"value": "a@b"}}, "'emails' is multi-valued"),
        ({"emails": ["a@b"]}, "'emails[0]' must be a JSON object"),
        ({"emails": [{"value": 5}]}, "'emails[0].value' must be a string"),
        (
            {"emails": [{"value": "a", "primary": True}, {"value": "b", "primary": "True"}]},
            "more than one value with primary true",
        ),
        ({"userName": ""}, "'userName' is required"),
        ({"userName": None}, "'userName' is required"),
        ({ENT: {"manager": 5}}, "manager' must be a JSON object"),
        ({"password": 1234}, "'password' must be a string"),
    ],
)
def test_type_errors_are_invalid_value(attrs: dict[str, Any], fragment: str) -> None:
    assert fragment in error(user(**attrs), "invalidValue").message


def test_required_attributes() -> None:
    assert "'userName' is required" in error({"schemas": [USER_SCHEMA]}, "invalidValue").message
    assert "'displayName'" in error({"schemas": [GROUP_SCHEMA]}, "invalidValue", GROUP_TYPE).message


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be a JSON object"),
        ("user", "must be a JSON object"),
        ({"userName": "b"}, "'schemas'"),
        ({"schemas": USER_SCHEMA, "userName": "b"}, "'schemas'"),
        ({"schemas": [], "userName": "b"}, "'schemas'"),
        ({"schemas": [5], "userName": "b"}, "'schemas'"),
        (user(favouriteColour="blue"), "unknown attribute 'favouriteColour'"),
        (user(name={"givenName": "B", "nick": "x"}), "unknown attribute 'name.nick'"),
        (user(**{ENT: {"shoeSize": 44}}), f"unknown attribute '{ENT}:shoeSize'"),
        (user(**{ENT: "Ops"}), "must be a JSON object"),
        (user(**{"urn:example:custom:2.0:User": ["x"]}), "must be a JSON object"),
        ({**user(), "USERNAME": "again"}, "given twice"),
    ],
)
def test_structural_errors_are_invalid_syntax(data: Any, fragment: str) -> None:
    assert fragment in error(data, "invalidSyntax").message


def test_core_schema_must_be_listed() -> None:
    assert (
        GROUP_SCHEMA
        in error({"schemas": [ENT], "displayName": "x"}, "invalidValue", GROUP_TYPE).message
    )
    error({"schemas": [GROUP_SCHEMA], "userName": "x"}, "invalidValue")


def test_extensions() -> None:
    # a known extension whose URN is missing from "schemas" is accepted and listed
    stored = validate_resource(USER_TYPE, user(**{ENT: {"department": "Ops"}}))
    assert stored["schemas"] == [USER_SCHEMA, ENT] and stored[ENT] == {"department": "Ops"}
    # an empty extension object is unassigned
    assert ENT not in validate_resource(USER_TYPE, user(**{ENT: {"department": None}}))
    # custom extension objects are preserved verbatim (Okta/Entra custom attributes)
    custom = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User"
    stored = validate_resource(USER_TYPE, user(**{custom: {"badge": 7, "Nested": {"a": [1]}}}))
    assert stored[custom] == {"badge": 7, "Nested": {"a": [1]}}
    assert stored["schemas"] == [USER_SCHEMA, custom]
    # unknown schema URIs in "schemas" are kept as sent
    listed = validate_resource(USER_TYPE, {"schemas": [USER_SCHEMA, "urn:x:y"], "userName": "b"})
    assert listed["schemas"] == [USER_SCHEMA, "urn:x:y"]


def test_entra_manager_as_a_bare_id() -> None:
    stored = validate_resource(USER_TYPE, user(**{ENT: {"manager": "mgr-1"}}))
    assert stored[ENT] == {"manager": {"value": "mgr-1"}}


def test_nulls_and_empties_are_unassigned() -> None:
    stored = validate_resource(
        USER_TYPE,
        user(title=None, emails=[], name={"givenName": None}, roles=[None], phoneNumbers=[{}]),
    )
    assert stored == user()


def test_numbers_and_dates() -> None:
    from sso_gate.scim._model import normalize_value

    integer = Attribute("n", "integer")
    assert normalize_value(integer, 3, "n") == 3
    assert normalize_value(integer, 3.0, "n") == 3
    with pytest.raises(SCIMError, match="integer"):
        normalize_value(integer, True, "n")
    decimal = Attribute("d", "decimal")
    assert normalize_value(decimal, 1.5, "d") == 1.5
    with pytest.raises(SCIMError, match="number"):
        normalize_value(decimal, "1.5", "d")
    when = Attribute("t", "dateTime")
    assert normalize_value(when, "2011-05-13T04:42:34Z", "t") == "2011-05-13T04:42:34Z"
    with pytest.raises(SCIMError, match="dateTime"):
        normalize_value(when, "last tuesday", "t")


def test_immutable_attributes_on_put() -> None:
    immutable = Attribute("badge", mutability="immutable")
    custom = schema.ResourceSchema("urn:example:Thing", "Thing", "", (Attribute("name"), immutable))
    rtype = schema.ResourceType("Thing", "/Things", custom)
    base = {"schemas": ["urn:example:Thing"], "name": "a"}
    created = validate_resource(rtype, {**base, "badge": "1"})
    assert validate_resource(rtype, {**base, "badge": "1"}, existing=created)["badge"] == "1"
    # omitted: the stored value stays (it can never be removed)
    assert validate_resource(rtype, base, existing=created)["badge"] == "1"
    # not set before: may be set now
    assert validate_resource(rtype, {**base, "badge": "2"}, existing=base)["badge"] == "2"
    err = error({**base, "badge": "2"}, "mutability", rtype, existing=created)
    assert "'badge' is immutable" in err.message


def test_group_members_may_change_on_put() -> None:
    existing = validate_resource(GROUP_TYPE, load("okta-create-group.json"))
    replaced = validate_resource(
        GROUP_TYPE,
        {"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"value": "other"}]},
        existing=existing,
    )
    assert replaced["members"] == [{"value": "other"}]


def test_readonly_input_is_ignored() -> None:
    stored = validate_resource(
        USER_TYPE,
        user(id="client-chosen", meta={"created": "x"}, groups=[{"value": "g"}], password="pw"),
    )
    assert stored == user()


def test_input_is_not_mutated() -> None:
    raw = load("rfc7643-8.3-enterprise-user.json")
    before = load("rfc7643-8.3-enterprise-user.json")
    stored = validate_resource(USER_TYPE, raw)
    assert raw == before
    stored["name"]["givenName"] = "changed"
    stored[ENT]["manager"]["value"] = "changed"
    assert raw == before


# --- project ---------------------------------------------------------------------------------


@pytest.fixture
def stored_user() -> dict[str, Any]:
    raw = load("rfc7643-8.3-enterprise-user.json")
    stored = validate_resource(USER_TYPE, raw)
    return {**stored, "id": raw["id"], "meta": raw["meta"], "password": "leaked?"}


def test_project_default_drops_never_returned(stored_user: dict[str, Any]) -> None:
    shown = project(USER_TYPE, stored_user, attributes=None, excluded=None)
    assert "password" not in shown
    assert {k: v for k, v in stored_user.items() if k != "password"} == shown


def test_project_attributes(stored_user: dict[str, Any]) -> None:
    shown = project(
        USER_TYPE, stored_user, attributes=["userName", "name.givenName"], excluded=None
    )
    assert shown == {
        "schemas": stored_user["schemas"],
        "id": stored_user["id"],
        "userName": stored_user["userName"],
        "name": {"givenName": "Barbara"},
    }
    emails = project(USER_TYPE, stored_user, attributes=["EMAILS.VALUE"], excluded=None)
    assert emails["emails"] == [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
    ext = project(USER_TYPE, stored_user, attributes=[f"{ENT}:manager.value"], excluded=None)
    assert ext[ENT] == {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    whole = project(USER_TYPE, stored_user, attributes=[ENT], excluded=None)
    assert whole[ENT] == stored_user[ENT] and "userName" not in whole
    meta = project(
        USER_TYPE, stored_user, attributes=["meta.created", "nosuch", "a b"], excluded=None
    )
    assert meta == {
        "schemas": stored_user["schemas"],
        "id": stored_user["id"],
        "meta": {"created": "2010-01-23T04:56:22Z"},
    }
    # sub-attributes nobody has leave no empty shell behind
    assert "emails" not in project(USER_TYPE, stored_user, attributes=["emails.display"])
    assert ENT not in project(USER_TYPE, stored_user, attributes=[f"{ENT}:manager.displayName"])
    # asking for password or id explicitly changes nothing: never is never, always is always
    assert "password" not in project(USER_TYPE, stored_user, attributes=["password"], excluded=None)


def test_project_excluded(stored_user: dict[str, Any]) -> None:
    shown = project(
        USER_TYPE,
        stored_user,
        attributes=None,
        excluded=["emails", "name.givenName", "id", "schemas", f"{ENT}:manager"],
    )
    assert "emails" not in shown
    assert "givenName" not in shown["name"] and shown["name"]["familyName"] == "Jensen"
    assert shown["id"] == stored_user["id"]  # returned "always" cannot be excluded
    assert shown["schemas"] == stored_user["schemas"]
    assert "manager" not in shown[ENT] and shown[ENT]["department"] == "Tour Operations"
    assert ENT not in project(USER_TYPE, stored_user, attributes=None, excluded=[ENT])


def test_project_groups_without_members() -> None:
    group = {
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Sales",
        "members": [{"value": "u1", "display": "Alice"}],
        "meta": {"resourceType": "Group"},
    }
    # Entra: GET /Groups?excludedAttributes=members
    assert project(GROUP_TYPE, group, attributes=None, excluded=["members"]) == {
        "schemas": [GROUP_SCHEMA],
        "id": "g1",
        "displayName": "Sales",
        "meta": {"resourceType": "Group"},
    }
    assert project(GROUP_TYPE, group, attributes=["members.display"], excluded=None)["members"] == [
        {"display": "Alice"}
    ]


def test_project_custom_extensions(stored_user: dict[str, Any]) -> None:
    custom = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User"
    with_custom = {**stored_user, custom: {"badge": 7}}
    assert project(USER_TYPE, with_custom)[custom] == {"badge": 7}
    assert custom not in project(USER_TYPE, with_custom, excluded=[custom])
    assert custom not in project(USER_TYPE, with_custom, attributes=["userName"])
    assert project(USER_TYPE, with_custom, attributes=[f"{custom}:badge"])[custom] == {"badge": 7}


def test_project_request_returned_attributes() -> None:
    secret = Attribute("secretNote", returned="request")
    custom = schema.ResourceSchema("urn:example:Thing", "Thing", "", (Attribute("name"), secret))
    rtype = schema.ResourceType("Thing", "/Things", custom)
    thing = {"schemas": ["urn:example:Thing"], "id": "t", "name": "n", "secretNote": "s"}
    assert "secretNote" not in project(rtype, thing)
    assert project(rtype, thing, attributes=["secretNote"])["secretNote"] == "s"
    assert "name" not in project(rtype, thing, attributes=["secretNote"])
