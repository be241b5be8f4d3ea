"""RFC 7644 §3.4.2.2 filters: grammar, evaluation, indexed equalities, PATCH paths."""

from __future__ import annotations

from typing import Any

import pytest

from sso_gate.scim.errors import SCIMError
from sso_gate.scim.filter import (
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    check_filter,
    evaluate,
    format_filter,
    format_path,
    indexable_equalities,
    matches_value,
    parse_filter,
    parse_path,
)
from sso_gate.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_TYPE,
    USER,
    USER_TYPE,
    validate_resource,
)
from tests.scim.conftest import load

ENT = ENTERPRISE_USER_SCHEMA


def p(attr: str, sub: str | None = None, schema: str | None = None) -> AttrPath:
    return AttrPath(schema, attr, sub)


def eq(attr: str, value: Any, sub: str | None = None) -> Compare:
    return Compare(p(attr, sub), "eq", value)


@pytest.fixture
def bjensen() -> dict[str, Any]:
    """RFC 7643 §8.3, stored the way the service stores it (normalized, with id and meta)."""
    raw = load("rfc7643-8.3-enterprise-user.json")
    stored = validate_resource(USER_TYPE, raw)
    return {**stored, "id": raw["id"], "meta": raw["meta"], "groups": raw["groups"]}


def matches(text: str, resource: dict[str, Any]) -> bool:
    return evaluate(parse_filter(text), resource, USER_TYPE)


def filter_error(text: str) -> SCIMError:
    with pytest.raises(SCIMError) as info:
        check_filter(parse_filter(text), USER_TYPE)
    assert info.value.scim_type == "invalidFilter"
    assert info.value.http_status == 400
    return info.value


# --- RFC 7644 §3.4.2.2: every example filter parses and evaluates sensibly -------------------

RFC_EXAMPLES: list[tuple[str, bool]] = [
    ('userName eq "bjensen"', False),  # the sample's userName is bjensen@example.com
    ('userName eq "BJensen@Example.com"', True),
    ('name.familyName co "O\'Malley"', False),
    ('name.familyName co "ense"', True),
    ('userName sw "J"', False),
    ('userName sw "B"', True),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', False),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "b"', True),
    ("title pr", True),
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
    ('meta.lastModified lt "2011-05-13T04:42:34Z"', False),
    ('meta.lastModified le "2011-05-13T04:42:34Z"', True),
    ('title pr and userType eq "Employee"', True),
    ('title pr or userType eq "Intern"', True),
    ('schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', True),
    ('userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', True),
    (
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        False,
    ),
    ('userType eq "Employee" and (emails.type eq "work")', True),
    ('userType eq "Employee" and emails[type eq "work" and value co "@example.com"]', True),
    (
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        True,
    ),
]


@pytest.mark.parametrize(("text", "expected"), RFC_EXAMPLES)
def test_rfc_examples_parse_evaluate_and_roundtrip(
    text: str, expected: bool, bjensen: dict[str, Any]
) -> None:
    f = parse_filter(text)
    assert evaluate(f, bjensen, USER_TYPE) is expected
    assert parse_filter(format_filter(f)) == f


def test_rfc_example_asts() -> None:
    assert parse_filter('userName eq "bjensen"') == eq("userName", "bjensen")
    assert parse_filter("title pr") == Present(p("title"))
    assert parse_filter('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"') == Compare(
        p("userName", schema="urn:ietf:params:scim:schemas:core:2.0:User"), "sw", "J"
    )
    assert parse_filter(
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]'
    ) == And(
        eq("userType", "Employee"),
        ValuePath(p("emails"), And(eq("type", "work"), Compare(p("value"), "co", "@example.com"))),
    )


# --- grammar ---------------------------------------------------------------------------------


def test_precedence_not_over_and_over_or() -> None:
    a, b, c = Present(p("a")), Present(p("b")), Present(p("c"))
    assert parse_filter("a pr or b pr and c pr") == Or(a, And(b, c))
    assert parse_filter("a pr and b pr or c pr") == Or(And(a, b), c)
    assert parse_filter("not (a pr) and b pr") == And(Not(a), b)
    assert parse_filter("a pr and b pr and c pr") == And(And(a, b), c)  # left-associative
    assert parse_filter("a pr or b pr or c pr") == Or(Or(a, b), c)


def test_grouping_overrides_precedence() -> None:
    a, b, c = Present(p("a")), Present(p("b")), Present(p("c"))
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(a, b), c)
    assert parse_filter("a pr and (b pr and c pr)") == And(a, And(b, c))
    assert parse_filter("((a pr))") == a
    assert parse_filter("not (a pr or b pr)") == Not(Or(a, b))
    assert parse_filter("not(not (a pr))") == Not(Not(a))


def test_operators_and_keywords_are_case_insensitive() -> None:
    assert parse_filter('userName EQ "x" AND title Pr OR NOT (active Eq TRUE)') == Or(
        And(eq("userName", "x"), Present(p("title"))), Not(eq("active", True))
    )
    for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"):
        assert parse_filter(f'title {op.upper()} "x"') == Compare(p("title"), op, "x")


def test_literals() -> None:
    assert parse_filter("active eq true").value is True  # type: ignore[union-attr]
    assert parse_filter("active eq false").value is False  # type: ignore[union-attr]
    assert parse_filter("title eq null").value is None  # type: ignore[union-attr]
    assert parse_filter("x eq 42").value == 42  # type: ignore[union-attr]
    assert type(parse_filter("x eq 42").value) is int  # type: ignore[union-attr]
    assert parse_filter("x eq -1.5e3").value == -1500.0  # type: ignore[union-attr]
    assert parse_filter("x eq 0.25").value == 0.25  # type: ignore[union-attr]
    assert parse_filter(r'x eq "a\"b\\c\u00e9\n"').value == 'a"b\\cé\n'  # type: ignore[union-attr]
    assert parse_filter('x eq "O\'Malley"').value == "O'Malley"  # type: ignore[union-attr]
    assert parse_filter('x eq "a and b or not (c)"').value == "a and b or not (c)"  # type: ignore[union-attr]
    assert parse_filter('x eq "2011-05-13T04:42:34Z"').value == "2011-05-13T04:42:34Z"  # type: ignore[union-attr]


def test_paths_keep_the_client_spelling_and_split_urns_at_the_last_colon() -> None:
    assert parse_filter(f'{ENT}:manager.value eq "x"') == Compare(
        p("manager", "value", ENT), "eq", "x"
    )
    assert parse_filter(f"{ENT}:department pr") == Present(p("department", schema=ENT))
    assert parse_filter('NAME.GivenName eq "x"') == eq("NAME", "x", "GivenName")
    assert parse_filter("members.$ref pr") == Present(p("members", "$ref"))
    assert parse_filter("x-y_z eq 1") == eq("x-y_z", 1)


def test_whitespace_is_flexible() -> None:
    assert parse_filter('  userName   eq\t"x"  ') == eq("userName", "x")
    assert parse_filter('(userName eq "x")and(title pr)') == And(
        eq("userName", "x"), Present(p("title"))
    )


def test_not_without_parentheses_is_an_attribute_named_not() -> None:
    # RFC 7644 ABNF: "not" always takes a parenthesized filter; "not" alone is an ATTRNAME.
    assert parse_filter('not eq "x"') == eq("not", "x")
    assert parse_filter("and pr and or pr") == And(Present(p("and")), Present(p("or")))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("userName", "character 9: expected an operator"),
        ("userName eq", "expected a value"),
        ('userName xx "x"', "expected an operator"),
        ("userName eq bjensen", "expected a value"),
        ('userName eq "x', "unterminated string"),
        ('userName eq "x" and', "expected an attribute path"),
        ('(userName eq "x"', "expected ')'"),
        ('userName eq "x")', "unexpected ')'"),
        ('userName eq "x" title pr', "unexpected 'title'"),
        ('emails[type eq "work"', "expected ']'"),
        ('emails[type eq "work"].value eq "x"', "unexpected '.value'"),
        ('emails[type[value eq "x"] pr]', "cannot be nested"),
        ('emails.value[type eq "work"]', "cannot follow the sub-attribute"),
        ('userName eq "\\q"', "invalid escape"),
        ("x eq 1e999", "out of range"),
        ("userName eq 'x'", "unexpected character"),
        ("name.givenName.x pr", "found '.x'"),
        ("not ()", "expected an attribute path"),
    ],
)
def test_syntax_errors_are_invalid_filter_with_a_position(text: str, fragment: str) -> None:
    with pytest.raises(SCIMError) as info:
        parse_filter(text)
    assert info.value.scim_type == "invalidFilter"
    assert info.value.http_status == 400
    assert fragment in info.value.message
    assert info.value.to_scim()["scimType"] == "invalidFilter"


def test_nesting_is_limited_without_recursion_errors() -> None:
    deep = "(" * 1000 + "title pr" + ")" * 1000
    with pytest.raises(SCIMError) as info:
        parse_filter(deep)
    assert info.value.scim_type == "invalidFilter"
    assert "nests deeper than 32" in info.value.message
    nots = "not (" * 1000 + "title pr" + ")" * 1000
    with pytest.raises(SCIMError, match="deeper than 32"):
        parse_filter(nots, max_length=10_000)
    assert parse_filter("(" * 32 + "title pr" + ")" * 32) == Present(p("title"))
    with pytest.raises(SCIMError, match="deeper than 5"):
        parse_filter("(" * 6 + "title pr" + ")" * 6, max_depth=5)


def test_length_is_limited() -> None:
    with pytest.raises(SCIMError, match="longer than 4096") as info:
        parse_filter('userName eq "' + "x" * 5000 + '"')
    assert info.value.scim_type == "invalidFilter"
    assert parse_filter('userName eq "xx"', max_length=16) == eq("userName", "xx")
    with pytest.raises(SCIMError, match="longer than 10"):
        parse_filter('userName eq "xx"', max_length=10)


def test_long_and_or_chains_never_recurse(bjensen: dict[str, Any]) -> None:
    """Chains are as long as the text allows; evaluation, formatting, ==, hash and repr walk
    them iteratively, so even 3,000 operands stay far from the recursion limit."""
    text = " and ".join(["title pr"] * 3000)
    f = parse_filter(text, max_length=len(text))
    assert evaluate(f, bjensen, USER_TYPE) is True
    again = parse_filter(format_filter(f), max_length=len(text))
    assert again == f and hash(again) == hash(f) and repr(again) == repr(f)
    assert indexable_equalities(f, USER_TYPE) == {}
    long_or = " or ".join(['title eq "no"'] * 3000)
    assert evaluate(parse_filter(long_or, max_length=len(long_or)), bjensen, USER_TYPE) is False
    assert repr(parse_filter("a pr and b pr")) == (
        "And(left=Present(path=AttrPath(schema=None, attr='a', sub=None)), "
        "right=Present(path=AttrPath(schema=None, attr='b', sub=None)))"
    )


# --- evaluation ------------------------------------------------------------------------------


def test_username_is_case_insensitive_but_id_and_external_id_are_exact(
    bjensen: dict[str, Any],
) -> None:
    assert matches('userName eq "BJENSEN@EXAMPLE.COM"', bjensen)
    assert matches('USERNAME Eq "bjensen@example.com"', bjensen)
    assert matches('id eq "2819c223-7f76-453a-919d-413861904646"', bjensen)
    assert not matches('id eq "2819C223-7F76-453A-919D-413861904646"', bjensen)
    assert matches('externalId eq "701984"', bjensen)
    assert not matches('externalid eq "701984 "', bjensen)
    assert matches('meta.resourceType eq "User"', bjensen)
    assert not matches('meta.resourceType eq "user"', bjensen)  # caseExact (RFC 7643 §3.1)


def test_string_operators(bjensen: dict[str, Any]) -> None:
    assert matches('displayName co "BS JEN"', bjensen)
    assert matches('displayName sw "babs"', bjensen)
    assert matches('displayName ew "JENSEN"', bjensen)
    assert not matches('displayName ew "babs"', bjensen)
    assert matches('displayName gt "Babs"', bjensen)  # lexicographic, case-folded
    assert matches('displayName lt "c"', bjensen)
    assert matches('displayName ge "babs jensen"', bjensen)
    assert matches('displayName le "BABS JENSEN"', bjensen)
    assert matches('displayName ne "someone"', bjensen)
    assert not matches('displayName ne "babs jensen"', bjensen)


def test_multi_valued_matches_any_value(bjensen: dict[str, Any]) -> None:
    assert matches('emails.value eq "babs@jensen.org"', bjensen)
    assert matches('emails eq "BJENSEN@example.com"', bjensen)  # complex → its "value"
    assert matches('emails.type eq "home"', bjensen)
    assert matches('emails.type ne "home"', bjensen)  # the work email differs (RFC: any value)
    assert matches('phoneNumbers.value ew "4444"', bjensen)
    assert matches('groups.display eq "US Employees"', bjensen)
    assert matches('groups eq "fc348aa8-3835-40eb-a20b-c726e15c55b5"', bjensen)
    assert not matches('emails.value eq "nobody@example.com"', bjensen)


def test_value_path_requires_one_value_to_satisfy_the_whole_filter(
    bjensen: dict[str, Any],
) -> None:
    assert matches('emails[type eq "home" and value ew "jensen.org"]', bjensen)
    # both conditions hold, but on different values: no match
    assert not matches('emails[type eq "home" and value ew "example.com"]', bjensen)
    assert matches("emails[not (primary eq true)]", bjensen)
    assert matches('addresses[locality eq "hollywood" and primary eq true]', bjensen)
    assert matches('emails[emails.type eq "home"]', bjensen)  # qualified sub-attribute
    assert not matches('emails[unknown eq "x"]', bjensen)
    assert matches(f"{ENT}:manager[value pr]", bjensen)  # single-valued complex


def test_presence(bjensen: dict[str, Any]) -> None:
    assert matches("emails pr", bjensen)
    assert matches("name pr", bjensen)
    assert matches("name.middleName pr", bjensen)
    assert not matches("nickName pr", {**bjensen, "nickName": ""})
    assert not matches("emails pr", {**bjensen, "emails": []})
    assert not matches("emails pr", {**bjensen, "emails": [{"value": ""}]})
    assert not matches("name pr", {**bjensen, "name": {}})
    assert not matches("entitlements pr", bjensen)
    assert matches("x509Certificates.value pr", bjensen)
    assert matches(f"{ENT}:department pr", bjensen)
    assert not matches(f"{ENT}:department pr", {**bjensen, ENT: {}})


def test_null_compares_with_presence(bjensen: dict[str, Any]) -> None:
    assert matches("nickName ne null", bjensen)
    assert matches("entitlements eq null", bjensen)
    assert not matches("title eq null", bjensen)


def test_absent_attributes(bjensen: dict[str, Any]) -> None:
    assert not matches('entitlements eq "x"', bjensen)
    assert matches('entitlements ne "x"', bjensen)  # unassigned differs from any value
    assert not matches('entitlements co "x"', bjensen)


def test_unknown_attributes_match_nothing(bjensen: dict[str, Any]) -> None:
    assert not matches('favouriteColour eq "blue"', bjensen)
    assert not matches('favouriteColour ne "blue"', bjensen)
    assert not matches("favouriteColour pr", bjensen)
    assert not matches('name.nope eq "x"', bjensen)
    assert not matches('urn:example:unknown:2.0:User:department eq "x"', bjensen)
    assert matches('favouriteColour eq "blue" or title pr', bjensen)
    assert matches('not (favouriteColour eq "blue")', bjensen)
    check_filter(parse_filter('favouriteColour gt "blue"'), USER_TYPE)  # unknown: no error


def test_booleans_compare_with_json_booleans_only(bjensen: dict[str, Any]) -> None:
    assert matches("active eq true", bjensen)
    assert not matches("active eq false", bjensen)
    assert matches("active ne false", bjensen)
    assert not matches('active eq "true"', bjensen)
    assert matches('active ne "true"', bjensen)
    inactive = {**bjensen, "active": False}
    assert matches("active eq false", inactive)
    assert matches("emails[primary eq true]", bjensen)


def test_datetimes_compare_chronologically(bjensen: dict[str, Any]) -> None:
    assert matches('meta.created lt "2010-01-23T05:56:22+00:00"', bjensen)
    assert matches('meta.created eq "2010-01-23T04:56:22.000Z"', bjensen)  # same instant
    assert matches('meta.created eq "2010-01-22T20:56:22-08:00"', bjensen)
    assert matches('meta.created gt "2010-01-23T04:56:21.999Z"', bjensen)
    assert matches('meta.created ge "2010-01-23"', bjensen)
    assert matches('meta.created sw "2010-01"', bjensen)  # substring operators stay textual
    assert matches(
        'meta.lastModified gt "2011-05-13T04:42:33Z" and meta.created lt "2011-01-01T00:00:00Z"',
        bjensen,
    )
    error = filter_error('meta.created gt "yesterday"')
    assert "not a dateTime" in error.message
    filter_error("meta.created gt 5")


@pytest.mark.parametrize(
    "text",
    [
        "active gt true",
        "active le false",
        'active co "t"',
        'x509Certificates.value gt "A"',  # binary
        'emails gt "a"',  # complex attribute
        'name eq "x"',  # complex without a "value" sub-attribute
        'name co "x"',
        "title gt null",
        'userName[value eq "x"]',  # value filter on a simple attribute
        "emails[primary gt true]",
        'emails[primary sw "t"]',
    ],
)
def test_operators_invalid_for_the_type_are_invalid_filter(
    text: str, bjensen: dict[str, Any]
) -> None:
    filter_error(text)
    with pytest.raises(SCIMError) as info:
        evaluate(parse_filter(text), bjensen, USER_TYPE)
    assert info.value.scim_type == "invalidFilter"


def test_enterprise_extension(bjensen: dict[str, Any]) -> None:
    assert matches(f'{ENT}:department eq "tour operations"', bjensen)
    assert matches(f'{ENT.upper()}:DEPARTMENT eq "Tour Operations"', bjensen)
    assert matches(f'{ENT}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"', bjensen)
    assert matches(f'{ENT}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d"', bjensen)
    # without the URN, names refer to the core schema (RFC 7644 §3.10)
    assert not matches('department eq "Tour Operations"', bjensen)


def test_groups(sample: Any) -> None:
    group = validate_resource(GROUP_TYPE, sample("okta-create-group.json"))
    group["id"] = "grp_1"
    assert evaluate(parse_filter('displayName eq "test scimv2"'), group, GROUP_TYPE)
    assert evaluate(
        parse_filter('members[value eq "23a35c27-23d3-4c03-b4c5-6443c09e7173"]'), group, GROUP_TYPE
    )
    assert evaluate(parse_filter("members pr"), group, GROUP_TYPE)
    assert not evaluate(parse_filter('userName eq "x"'), group, GROUP_TYPE)


def test_matches_value_evaluates_one_complex_value() -> None:
    emails = USER.attr("emails")
    assert emails is not None
    f = parse_filter('type eq "WORK" and primary eq true')
    assert matches_value(f, {"type": "work", "primary": True}, emails)
    assert not matches_value(f, {"type": "work"}, emails)


# --- indexed equalities ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "Alice@Example.COM"', {"userName": "alice@example.com"}),
        ('externalId eq "AbC"', {"externalId": "AbC"}),
        ('id eq "usr_1"', {"id": "usr_1"}),
        ('emails.value eq "A@B.C"', {"email": "a@b.c"}),
        ('emails eq "A@B.C"', {"email": "a@b.c"}),
        ("active eq false", {"active": False}),
        (
            'userName eq "A" and active eq true and externalId eq "e"',
            {"userName": "a", "active": True, "externalId": "e"},
        ),
        ('title pr and (userName eq "A" and id eq "i")', {"userName": "a", "id": "i"}),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "A"', {"userName": "a"}),
        ('userName eq "A" or userName eq "B"', {}),
        ('not (userName eq "A")', {}),
        ('userName ne "A"', {}),
        ('userName co "A"', {}),
        ('emails[value eq "a@b.c"]', {}),
        ('emails.type eq "work"', {}),
        ('displayName eq "Babs"', {}),  # only indexed for groups
        ('active eq "true"', {}),
        ("userName eq 5", {}),
        ('userName eq "first" and userName eq "second"', {"userName": "first"}),
        (f'{ENT}:employeeNumber eq "1"', {}),
    ],
)
def test_indexable_equalities_for_users(text: str, expected: dict[str, Any]) -> None:
    assert indexable_equalities(parse_filter(text), USER_TYPE) == expected


def test_indexable_equalities_for_groups() -> None:
    f = parse_filter('displayName eq "Sales" and externalId eq "X"')
    assert indexable_equalities(f, GROUP_TYPE) == {"displayName": "sales", "externalId": "X"}
    assert indexable_equalities(parse_filter('userName eq "x"'), GROUP_TYPE) == {}


def test_indexable_equalities_check_the_filter_first() -> None:
    with pytest.raises(SCIMError) as info:
        indexable_equalities(parse_filter('userName eq "a" and active gt true'), USER_TYPE)
    assert info.value.scim_type == "invalidFilter"


def test_indexable_equalities_are_implied_by_the_filter(bjensen: dict[str, Any]) -> None:
    """The pre-filter never excludes a match: every returned equality holds on every match."""
    for text, _ in RFC_EXAMPLES:
        f = parse_filter(text)
        if evaluate(f, bjensen, USER_TYPE):
            for key, value in indexable_equalities(f, USER_TYPE).items():
                stored = {
                    "userName": bjensen["userName"].lower(),
                    "id": bjensen["id"],
                    "externalId": bjensen["externalId"],
                    "active": bjensen["active"],
                }.get(key)
                if key == "email":
                    assert value in [e["value"].lower() for e in bjensen["emails"]]
                else:
                    assert stored == value


# --- PATCH paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("userName", PatchPath(p("userName"))),
        ("name.givenName", PatchPath(p("name", "givenName"))),
        ("members", PatchPath(p("members"))),
        (
            'members[value eq "2819c223-7f76-453a-919d-413861904646"]',
            PatchPath(p("members"), eq("value", "2819c223-7f76-453a-919d-413861904646")),
        ),
        ('emails[type eq "work"].value', PatchPath(p("emails"), eq("type", "work"), "value")),
        (
            'addresses[type eq "work"].streetAddress',
            PatchPath(p("addresses"), eq("type", "work"), "streetAddress"),
        ),
        (f"{ENT}:manager", PatchPath(p("manager", schema=ENT))),
        (f"{ENT}:manager.value", PatchPath(p("manager", "value", ENT))),
        (f"{ENT}:employeeNumber", PatchPath(p("employeeNumber", schema=ENT))),
        # a bare schema URN splits at its last colon; apply_patch recognizes the whole URN
        (ENT, PatchPath(AttrPath("urn:ietf:params:scim:schemas:extension:enterprise:2.0", "User"))),
        (
            'emails[type eq "work" and primary eq true]',
            PatchPath(p("emails"), And(eq("type", "work"), eq("primary", True))),
        ),
    ],
)
def test_parse_path(text: str, expected: PatchPath) -> None:
    assert parse_path(text) == expected
    assert parse_path(format_path(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "emails[",
        'emails[type eq "work"',
        'emails[type eq "work"].value.x',
        'emails[type eq "work"]value',
        "name.givenName.x",
        'emails.value[type eq "work"]',
        "emails[type eq]",
        'userName eq "x"',
        "(userName)",
        "user name",
        "x" * 5000,
    ],
)
def test_parse_path_errors_are_invalid_path(text: str) -> None:
    with pytest.raises(SCIMError) as info:
        parse_path(text)
    assert info.value.scim_type == "invalidPath"
    assert info.value.http_status == 400


# --- formatting ------------------------------------------------------------------------------


def test_format_uses_minimal_parentheses() -> None:
    a, b, c = Present(p("a")), Present(p("b")), Present(p("c"))
    assert format_filter(And(Or(a, b), c)) == "(a pr or b pr) and c pr"
    assert format_filter(And(a, And(b, c))) == "a pr and (b pr and c pr)"
    assert format_filter(Or(And(a, b), c)) == "a pr and b pr or c pr"
    assert format_filter(Or(a, Or(b, c))) == "a pr or (b pr or c pr)"
    assert format_filter(Not(a)) == "not (a pr)"
    assert format_filter(Compare(p("x"), "eq", None)) == "x eq null"
    assert format_filter(Compare(p("x"), "eq", 'q"uote')) == 'x eq "q\\"uote"'
    assert format_filter(Compare(p("x", schema=ENT), "gt", 1.5)) == f"{ENT}:x gt 1.5"
    for f in (And(Or(a, b), c), And(a, And(b, c)), Or(a, Or(b, c)), Not(And(a, Or(b, c)))):
        assert parse_filter(format_filter(f)) == f


def test_parse_is_memoized_but_errors_are_not() -> None:
    assert parse_filter('userName eq "memo"') is parse_filter('userName eq "memo"')
    for _ in range(2):
        with pytest.raises(SCIMError):
            parse_filter('userName eq "memo')


def test_group_and_user_filters_resolve_independently() -> None:
    assert evaluate(parse_filter('displayName eq "x"'), {"displayName": "X"}, GROUP_TYPE)
    assert evaluate(parse_filter('displayName eq "x"'), {"displayName": "X"}, USER_TYPE)
    assert not evaluate(parse_filter("members pr"), {"members": [{"value": "1"}]}, USER_TYPE)
