"""Property tests for the SCIM core (skipped when hypothesis is not installed).

* the filter and path parsers raise nothing but ``SCIMError`` on any text;
* ``parse_filter(format_filter(ast)) == ast`` for generated ASTs;
* every equality ``indexable_equalities`` returns holds on every resource the filter matches;
* ``apply_patch`` raises nothing but ``SCIMError`` on generated operations, never mutates its
  input, and its result still passes ``validate_resource``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sso_gate.scim.errors import SCIMError  # noqa: E402
from sso_gate.scim.filter import (  # noqa: E402
    OPERATORS,
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    ValuePath,
    evaluate,
    format_filter,
    indexable_equalities,
    parse_filter,
    parse_path,
)
from sso_gate.scim.patch import apply_patch  # noqa: E402
from sso_gate.scim.schema import (  # noqa: E402
    ENTERPRISE_USER_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    USER_TYPE,
    validate_resource,
)

# No example database: the tests must not write a .hypothesis directory into the checkout.
PROPERTY = settings(
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)

# Text that looks like filters: grammar fragments mixed with arbitrary characters.
FRAGMENTS = [
    "userName",
    "emails",
    "[",
    "]",
    "(",
    ")",
    ".",
    ":",
    '"',
    "\\",
    " ",
    "eq",
    "pr",
    "and",
    "or",
    "not",
    "true",
    "null",
    "1",
    "-",
    "e",
    "urn:a:b",
    "$ref",
    "gt",
    '"x"',
    "\\u12",
]
filterish = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(FRAGMENTS), max_size=20).map(" ".join),
    st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join),
)


@PROPERTY
@given(filterish)
def test_parsers_only_raise_scim_errors(text: str) -> None:
    for parse, kind in ((parse_filter, "invalidFilter"), (parse_path, "invalidPath")):
        try:
            parse(text)
        except SCIMError as exc:
            assert exc.scim_type == kind


names = st.from_regex(r"[A-Za-z$][A-Za-z0-9_$-]{0,6}", fullmatch=True)
schemas = st.one_of(
    st.none(),
    st.sampled_from([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]),
    st.from_regex(r"urn:[a-z0-9.]{1,5}(:[A-Za-z0-9.%-]{1,5}){0,3}", fullmatch=True),
)
paths = st.builds(AttrPath, schemas, names, st.none() | names)
simple_paths = st.builds(AttrPath, st.none(), names, st.none())
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)


def leaves(path: st.SearchStrategy[AttrPath]) -> st.SearchStrategy[Filter]:
    return st.one_of(
        st.builds(Compare, path, st.sampled_from(sorted(OPERATORS)), values),
        st.builds(Present, path),
    )


def trees(leaf: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)
        ),
        max_leaves=12,
    )


filters = trees(st.one_of(leaves(paths), st.builds(ValuePath, simple_paths, trees(leaves(paths)))))


@PROPERTY
@given(filters)
def test_format_then_parse_is_identity(f: Filter) -> None:
    text = format_filter(f)
    assert parse_filter(text, max_length=100_000) == f


KNOWN = [
    AttrPath(None, "userName", None),
    AttrPath(None, "id", None),
    AttrPath(None, "externalId", None),
    AttrPath(None, "active", None),
    AttrPath(None, "emails", "value"),
    AttrPath(None, "emails", None),
    AttrPath(None, "title", None),
    AttrPath(USER_SCHEMA, "USERNAME", None),
]
known_values = st.one_of(
    st.sampled_from(["alice@example.com", "ALICE@EXAMPLE.COM", "usr_1", "ext-1", "Boss", "x"]),
    st.booleans(),
)
known_filters = trees(
    st.one_of(
        st.builds(
            Compare, st.sampled_from(KNOWN), st.sampled_from(["eq", "ne", "co"]), known_values
        ),
        st.builds(Present, st.sampled_from(KNOWN)),
    )
)
ALICE: dict[str, Any] = {
    "schemas": [USER_SCHEMA],
    "id": "usr_1",
    "externalId": "ext-1",
    "userName": "Alice@Example.com",
    "title": "Boss",
    "active": True,
    "emails": [{"value": "ALICE@example.com", "type": "work"}, {"value": "a@x.org"}],
}


@PROPERTY
@given(known_filters)
def test_indexed_equalities_never_exclude_a_match(f: Filter) -> None:
    try:
        matched = evaluate(f, ALICE, USER_TYPE)
        equalities = indexable_equalities(f, USER_TYPE)
    except SCIMError as exc:
        assert exc.scim_type == "invalidFilter"
        return
    if not matched:
        return
    columns = {
        "userName": ALICE["userName"].lower(),
        "id": ALICE["id"],
        "externalId": ALICE["externalId"],
        "active": ALICE["active"],
    }
    for key, value in equalities.items():
        if key == "email":
            assert value in [e["value"].lower() for e in ALICE["emails"]]
        else:
            assert columns[key] == value


PATCH_PATHS = [
    None,
    "userName",
    "displayName",
    "active",
    "title",
    "name.givenName",
    "name",
    "emails",
    "emails.value",
    'emails[type eq "work"].value',
    'emails[type eq "work"]',
    'emails[value co "@"].primary',
    "phoneNumbers",
    "roles",
    "externalId",
    "password",
    "groups",
    "id",
    f"{ENTERPRISE_USER_SCHEMA}:manager",
    f"{ENTERPRISE_USER_SCHEMA}:manager.value",
    f"{ENTERPRISE_USER_SCHEMA}:department",
    ENTERPRISE_USER_SCHEMA,
    "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:costCode",
    "nosuch",
]
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["True", "false", "x", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["value", "type", "primary", "givenName", "display", "bogus"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=6,
)
ENT = ENTERPRISE_USER_SCHEMA
strings = st.sampled_from(["x", "Alice", "a@x.org", "b@y.org", "work", ""])
bools = st.sampled_from([True, False, "True", "false"])
emails = st.lists(
    st.fixed_dictionaries(
        {"value": strings}, optional={"type": st.sampled_from(["work", "home"]), "primary": bools}
    ),
    max_size=3,
)
# Values that fit their path (so most operations succeed), mixed with arbitrary JSON.
PLAUSIBLE: dict[str | None, st.SearchStrategy[Any]] = {
    None: st.fixed_dictionaries(
        {},
        optional={
            "active": bools,
            "displayName": strings,
            "name.familyName": strings,
            f"{ENT}:department": strings,
            "emails": emails,
            "id": st.just("usr_1"),
        },
    ),
    "userName": strings,
    "displayName": strings,
    "active": bools,
    "name.givenName": strings,
    "name": st.fixed_dictionaries({}, optional={"givenName": strings, "familyName": strings}),
    "emails": emails,
    "emails.value": strings,
    'emails[type eq "work"].value': strings,
    'emails[type eq "work"]': st.fixed_dictionaries(
        {}, optional={"value": strings, "primary": bools}
    ),
    'emails[value co "@"].primary': bools,
    "roles": st.lists(st.fixed_dictionaries({"value": strings, "primary": bools}), max_size=2),
    "externalId": strings,
    "password": strings,
    f"{ENT}:manager": st.one_of(strings, st.fixed_dictionaries({"value": strings})),
    f"{ENT}:manager.value": strings,
    f"{ENT}:department": strings,
    ENT: st.fixed_dictionaries({}, optional={"department": strings, "costCenter": strings}),
    "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:costCode": strings,
}


@st.composite
def operation(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(PATCH_PATHS))
    op = draw(st.sampled_from(["add", "Replace", "remove", "REMOVE", "replace"]))
    plausible = PLAUSIBLE.get(path)
    value = draw(plausible if plausible is not None and draw(st.integers(0, 4)) else json_values)
    item: dict[str, Any] = {"op": op, "value": value}
    if path is not None:
        item["path"] = path
    return item


operations = st.lists(operation(), min_size=1, max_size=4)


@PROPERTY
@given(operations)
def test_apply_patch_only_raises_scim_errors_and_keeps_results_valid(
    ops: list[dict[str, Any]],
) -> None:
    stored = validate_resource(
        USER_TYPE,
        {
            "schemas": [USER_SCHEMA],
            "userName": "alice",
            "name": {"givenName": "Alice"},
            "emails": [{"value": "a@x.org", "type": "work", "primary": True}],
        },
    )
    resource = {**stored, "id": "usr_1", "meta": {"resourceType": "User"}}
    before = copy.deepcopy(resource)
    body = {"schemas": [PATCH_SCHEMA], "Operations": ops}
    try:
        result = apply_patch(USER_TYPE, resource, body)
    except SCIMError as exc:
        assert exc.scim_type in {
            "invalidSyntax",
            "invalidPath",
            "invalidValue",
            "mutability",
            "noTarget",
            "invalidFilter",
        }
        assert resource == before
        return
    assert resource == before
    assert result.changed == (result.resource != before)
    stripped = {k: v for k, v in result.resource.items() if k not in ("id", "meta")}
    assert validate_resource(USER_TYPE, stripped) == stripped
