"""More property tests for the SCIM core, beside ``tests/scim/test_properties.py`` (whose
strategies they reuse; that file already checks: parsers raise only ``SCIMError``,
``parse(format(ast)) == ast``, indexed equalities never exclude a match, ``apply_patch`` raises
only ``SCIMError``, never mutates its input and keeps results valid). Here:

* filter text that parses is a fixpoint of format∘parse;
* ``check_filter`` predicts ``evaluate``: a filter it accepts evaluates on any stored user
  without raising, and one ``evaluate`` refuses is refused by ``check_filter`` too;
* evaluation is boolean algebra (double negation, commutativity, De Morgan);
* nesting and length limits answer ``invalidFilter``, never ``RecursionError``;
* PATCH: remove after add restores the resource, replace is idempotent, and a PatchOp with
  several operations equals applying them one by one (same result, or the same refusal).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sso_gate.scim.errors import SCIMError
from sso_gate.scim.filter import (
    And,
    Filter,
    Not,
    Or,
    check_filter,
    evaluate,
    format_filter,
    parse_filter,
    parse_path,
)
from sso_gate.scim.patch import apply_patch
from sso_gate.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    USER_TYPE,
    validate_resource,
)
from tests.fuzz._harness import fuzz_examples, record
from tests.scim.test_properties import filterish, filters, known_filters, operation

PROPERTY = settings(
    database=None,
    deadline=None,
    max_examples=fuzz_examples(150),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
# Users as the store keeps them: arbitrary input that validate_resource accepted.
user_input = st.fixed_dictionaries(
    {"schemas": st.just([USER_SCHEMA]), "userName": words},
    optional={
        "externalId": words,
        "displayName": words,
        "title": st.sampled_from(["Boss", "boss", "x"]),
        "active": st.booleans(),
        "name": st.fixed_dictionaries({}, optional={"givenName": words, "familyName": words}),
        "emails": st.lists(
            st.fixed_dictionaries(
                {"value": st.sampled_from(["a@x.org", "A@X.ORG", "b@y.org"])},
                optional={"type": st.sampled_from(["work", "home"]), "primary": st.booleans()},
            ),
            max_size=3,
        ),
        "roles": st.lists(st.fixed_dictionaries({"value": words}), max_size=2),
        ENTERPRISE_USER_SCHEMA: st.fixed_dictionaries(
            {}, optional={"department": words, "manager": st.fixed_dictionaries({"value": words})}
        ),
    },
)


@st.composite
def stored_users(draw: st.DrawFn) -> dict[str, Any]:
    raw = draw(user_input)
    if ENTERPRISE_USER_SCHEMA in raw:
        raw["schemas"] = [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]
    try:
        stored = validate_resource(USER_TYPE, raw)
    except SCIMError:
        assume(False)
        raise
    return {**stored, "id": "usr_1", "meta": {"resourceType": "User"}}


any_filters = st.one_of(known_filters, filters)


@PROPERTY
@given(filterish)
def test_parsed_text_is_a_fixpoint_of_format(text: str) -> None:
    try:
        parsed = parse_filter(text)
    except SCIMError:
        record("scim-properties", "parse (refused)", "ok")
        return
    again = parse_filter(format_filter(parsed), max_length=100_000)
    assert again == parsed
    assert format_filter(again) == format_filter(parsed)
    record("scim-properties", "parse (accepted)", "ok")


@PROPERTY
@given(any_filters, stored_users())
def test_check_filter_predicts_evaluate(f: Filter, user: dict[str, Any]) -> None:
    try:
        check_filter(f, USER_TYPE)
        accepted = True
    except SCIMError as exc:
        assert exc.scim_type == "invalidFilter"
        accepted = False
    try:
        evaluate(f, user, USER_TYPE)
    except SCIMError as exc:
        assert exc.scim_type == "invalidFilter"
        assert not accepted, f"check_filter accepted {format_filter(f)!r}, evaluate refused it"
    record("scim-properties", "check_filter/evaluate", "accepted" if accepted else "refused")


def _checked(f: Filter) -> Filter:
    try:
        check_filter(f, USER_TYPE)
    except SCIMError:
        assume(False)
    return f


@PROPERTY
@given(any_filters.map(_checked), any_filters.map(_checked), stored_users())
def test_evaluation_is_boolean_algebra(a: Filter, b: Filter, user: dict[str, Any]) -> None:
    def ev(f: Filter) -> bool:
        return evaluate(f, user, USER_TYPE)

    assert ev(Not(Not(a))) == ev(a)
    assert ev(And(a, b)) == ev(And(b, a)) == (ev(a) and ev(b))
    assert ev(Or(a, b)) == ev(Or(b, a)) == (ev(a) or ev(b))
    assert ev(Not(And(a, b))) == ev(Or(Not(a), Not(b)))
    assert ev(Not(Or(a, b))) == ev(And(Not(a), Not(b)))
    record("scim-properties", "boolean algebra", "ok")


@settings(database=None, deadline=None, max_examples=fuzz_examples(60))
@given(
    st.integers(0, 3000),
    st.sampled_from(["not (", "(", "emails[", "not(("]),
    st.sampled_from(['userName eq "x"', "title pr", 'value eq "a"']),
)
def test_nesting_and_length_limits_are_invalid_filter(depth: int, opener: str, leaf: str) -> None:
    closer = {"not (": ")", "(": ")", "emails[": "]", "not((": "))"}[opener]
    text = opener * depth + leaf + closer * depth
    for parse, kind in ((parse_filter, "invalidFilter"), (parse_path, "invalidPath")):
        try:
            parse(text)
        except SCIMError as exc:
            assert exc.scim_type == kind
        except RecursionError:  # pragma: no cover - the property's point
            pytest.fail(f"{parse.__name__}: RecursionError at depth {depth} ({opener!r})")
    if len(text) > 4096:
        with pytest.raises(SCIMError):
            parse_filter(text)


# -- PATCH ---------------------------------------------------------------------------------------

BASE_INPUT: dict[str, Any] = {
    "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
    "userName": "alice",
    "name": {"givenName": "Alice"},
    "emails": [{"value": "a@x.org", "type": "work", "primary": True}],
    ENTERPRISE_USER_SCHEMA: {"costCenter": "42"},
}


def base_user() -> dict[str, Any]:
    stored = validate_resource(USER_TYPE, copy.deepcopy(BASE_INPUT))
    return {**stored, "id": "usr_1", "meta": {"resourceType": "User"}}


def patch(resource: dict[str, Any], *ops: dict[str, Any]) -> dict[str, Any]:
    return apply_patch(
        USER_TYPE, resource, {"schemas": [PATCH_SCHEMA], "Operations": list(ops)}
    ).resource


# attributes BASE_INPUT lacks, in any spelling of their path
ABSENT_SINGLE = st.sampled_from(
    [
        "title",
        "Title",
        "nickName",
        "displayName",
        "userType",
        "locale",
        "name.familyName",
        "NAME.middleName",
        f"{ENTERPRISE_USER_SCHEMA}:department",
        f"{ENTERPRISE_USER_SCHEMA}:division",
    ]
)
nonblank = st.text(min_size=1, max_size=20).filter(str.strip)


@PROPERTY
@given(ABSENT_SINGLE, nonblank, st.sampled_from(["add", "Add", "replace"]))
def test_remove_after_add_restores(path: str, value: str, op: str) -> None:
    before = base_user()
    added = patch(before, {"op": op, "path": path, "value": value})
    assert added != before
    assert patch(added, {"op": "remove", "path": path}) == before
    record("scim-properties", "remove after add", "ok")


@PROPERTY
@given(st.emails(), st.sampled_from(["home", "other"]))
def test_remove_after_add_restores_a_multi_valued_item(email: str, kind: str) -> None:
    assume(email.lower() != "a@x.org")
    before = base_user()
    added = patch(
        before, {"op": "add", "path": "emails", "value": [{"value": email, "type": kind}]}
    )
    assert len(added["emails"]) == 2
    restored = patch(added, {"op": "remove", "path": f'emails[value eq "{email}"]'})
    assert restored == before
    record("scim-properties", "remove after add (multi-valued)", "ok")


@PROPERTY
@given(operation())
def test_replace_is_idempotent(op: dict[str, Any]) -> None:
    op = {**op, "op": "replace"}
    try:
        once = apply_patch(USER_TYPE, base_user(), {"schemas": [PATCH_SCHEMA], "Operations": [op]})
    except SCIMError:
        record("scim-properties", "replace idempotent", "refused")
        return
    try:
        twice = apply_patch(
            USER_TYPE, once.resource, {"schemas": [PATCH_SCHEMA], "Operations": [op]}
        )
    except SCIMError as exc:
        # the value changed what the path's filter selects (emails[type eq "work"] replaced by
        # {"type": "home"}): nothing matches any more (found by the long run: the second replace
        # used to create a new, value-less email)
        assert exc.scim_type == "noTarget" and "[" in str(op.get("path")), exc
        record("scim-properties", "replace idempotent", "applied, then noTarget")
        return
    assert twice.resource == once.resource
    assert not twice.changed
    record("scim-properties", "replace idempotent", "applied")


@PROPERTY
@given(st.lists(operation(), min_size=2, max_size=4))
def test_a_patch_is_its_operations_in_order(ops: list[dict[str, Any]]) -> None:
    """Operations one at a time, each succeeding, give what the PatchOp gives; a refused
    PatchOp has a refused step. (Not the converse: the resource must be valid after the last
    operation only, so ``add userName ""`` then ``add userName "x"`` is one valid PatchOp.)"""
    try:
        together: dict[str, Any] | None = patch(base_user(), *ops)
    except SCIMError:
        together = None
    current: dict[str, Any] | None = base_user()
    for op in ops:
        assert current is not None
        try:
            current = patch(current, op)
        except SCIMError:
            current = None
            break
    if current is not None:
        assert together == current
    if together is None:
        assert current is None
    record("scim-properties", "patch = ops in order", "refused" if together is None else "applied")
