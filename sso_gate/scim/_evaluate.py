"""Filter evaluation (RFC 7644 §3.4.2.2) against stored resources, the schema checks behind
``invalidFilter``, and the equalities a storage layer may turn into an indexed pre-filter."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator
from typing import Any

from sso_gate.scim._model import Attribute, ResourceType, find_attribute, memo, parse_datetime
from sso_gate.scim._paths import (
    And,
    AttrPath,
    Compare,
    Filter,
    Not,
    Or,
    Present,
    Value,
    ValuePath,
    spine,
)
from sso_gate.scim.errors import SCIMError
from sso_gate.scim.schema import GROUP_SCHEMA, USER_SCHEMA

__all__ = ["check_filter", "evaluate", "indexable_equalities", "matches_value"]

_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})


class _Target:
    """Where a path's values live in a resource, and the attribute whose type compares them."""

    __slots__ = ("ext", "attr", "key", "leaf", "implicit")

    def __init__(
        self,
        ext: str | None,
        attr: Attribute,
        key: str | None,
        leaf: Attribute | None,
        implicit: bool,
    ) -> None:
        self.ext = ext  # extension URN holding the attribute, None for the core schema
        self.attr = attr
        self.key = key  # sub-attribute read from each complex value
        self.leaf = leaf  # None: a complex attribute without a "value" to compare
        self.implicit = implicit  # complex attribute named without a sub-attribute

    def raw(self, doc: dict[str, Any]) -> Any:
        container = doc if self.ext is None else doc.get(self.ext)
        return container.get(self.attr.name) if type(container) is dict else None

    def values(self, doc: dict[str, Any]) -> list[Any]:
        value = self.raw(doc)
        if value is None:
            return []
        key = self.key
        items = value if type(value) is list else [value]
        if key is None:
            return items
        return [v for item in items if type(item) is dict and (v := item.get(key)) is not None]


def _resolve(path: AttrPath, rtype: ResourceType | None, outer: Attribute | None) -> _Target | None:
    if outer is not None:
        # Inside "emails[...]", names are sub-attributes of emails; "emails.type" also works.
        name = path.attr
        if path.sub is not None and path.schema is None and path.attr.lower() == outer.name.lower():
            name = path.sub
        elif path.sub is not None or path.schema is not None:
            return None
        sub = outer.sub(name)
        return None if sub is None else _Target(None, sub, None, sub, False)
    assert rtype is not None
    return memo(rtype, ("filter", path), lambda: _top_target(rtype, path))


def _top_target(rtype: ResourceType, path: AttrPath) -> _Target | None:
    found = find_attribute(rtype, path)
    if found is None:
        return None
    schema, attr, sub = found
    ext = None if schema is rtype.schema else schema.id
    if sub is not None:
        return _Target(ext, attr, sub.name, sub, False)
    if attr.type == "complex":
        # RFC 7644 §3.4.2.2: a complex attribute without a sub-attribute is compared through
        # its "value" sub-attribute ("emails co \"example.com\"").
        value = attr.sub("value")
        return _Target(ext, attr, "value" if value else None, value, True)
    return _Target(ext, attr, None, attr, False)


def _invalid(detail: str) -> SCIMError:
    return SCIMError(detail, scim_type="invalidFilter")


def _as_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _as_folded(v: Any) -> str | None:
    return v.lower() if isinstance(v, str) else None


def _as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def _as_number(v: Any) -> int | float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) else None


def _as_datetime(v: Any) -> Any:
    return parse_datetime(v) if isinstance(v, str) else None


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "co": lambda have, want: want in have,
    "sw": lambda have, want: have.startswith(want),
    "ew": lambda have, want: have.endswith(want),
}


def _prepare(node: Compare, t: _Target) -> tuple[Callable[[Any], Any], Any]:
    """(converter for stored values, converted operand); raises ``invalidFilter`` when the
    operator cannot apply to the attribute's type (RFC 7644 §3.4.2.2)."""
    op = node.op
    leaf = t.leaf
    if leaf is None:
        raise _invalid(f"'{node.path}' is a complex attribute; compare one of its sub-attributes")
    if t.implicit and op in _ORDERING:
        raise _invalid(f"'{op}' cannot compare the complex attribute '{node.path}'")
    kind = leaf.type
    if node.value is None and op not in ("eq", "ne"):
        raise _invalid(f"null can only be compared with eq or ne ('{node.path} {op} null')")
    if op in _ORDERING and kind in ("boolean", "binary"):
        raise _invalid(f"'{op}' cannot compare the {kind} attribute '{node.path}'")
    if op in _SUBSTRING and kind in ("boolean", "integer", "decimal"):
        raise _invalid(f"'{op}' cannot compare the {kind} attribute '{node.path}'")
    conv: Callable[[Any], Any]
    if kind == "boolean":
        conv = _as_bool
    elif kind in ("integer", "decimal"):
        conv = _as_number
    elif kind == "dateTime" and op not in _SUBSTRING:
        conv = _as_datetime
        if node.value is not None and _as_datetime(node.value) is None:
            raise _invalid(f"{json.dumps(node.value)} is not a dateTime ('{node.path}')")
    else:
        conv = _as_str if leaf.case_exact else _as_folded
    return conv, (None if node.value is None else conv(node.value))


def _nonempty(value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return False
    if type(value) is list:
        return any(_nonempty(v) for v in value)
    if type(value) is dict:
        return any(_nonempty(v) for v in value.values())
    return True


def _compare(node: Compare, t: _Target | None, doc: dict[str, Any]) -> bool:
    if t is None:
        return False  # unknown attribute: no match, not an error
    conv, want = _prepare(node, t)
    op = node.op
    if node.value is None:
        present = any(_nonempty(v) for v in t.values(doc))
        return present if op == "ne" else not present
    if want is None:
        # The operand has another type than the attribute (e.g. active eq "true"): no stored
        # value can equal it, so only "ne" matches.
        return op == "ne"
    values = t.values(doc)
    if op == "ne" and not values:
        return True  # an unassigned attribute is "not equal" to any value
    compare = _COMPARATORS[op]
    # RFC 7644 §3.4.2.2: a multi-valued attribute matches if any of its values matches.
    for value in values:
        have = conv(value)
        if have is not None and compare(have, want):
            return True
    return False


def _eval(
    f: Filter, doc: dict[str, Any], rtype: ResourceType | None, outer: Attribute | None
) -> bool:
    kind = type(f)
    if kind is Compare:
        assert isinstance(f, Compare)
        return _compare(f, _resolve(f.path, rtype, outer), doc)
    if kind is And:
        return all(_eval(part, doc, rtype, outer) for part in spine(f))
    if kind is Or:
        return any(_eval(part, doc, rtype, outer) for part in spine(f))
    if kind is Present:
        assert isinstance(f, Present)
        t = _resolve(f.path, rtype, outer)
        if t is None:
            return False
        return _nonempty(t.raw(doc) if t.implicit or t.key is None else t.values(doc))
    if kind is Not:
        assert isinstance(f, Not)
        return not _eval(f.inner, doc, rtype, outer)
    assert isinstance(f, ValuePath)
    if outer is not None:
        raise _invalid("value filters cannot be nested")
    t = _resolve(f.path, rtype, None)
    if t is None:
        return False
    _check_value_path(f, t)
    raw = t.raw(doc)
    items = raw if type(raw) is list else [raw]
    return any(type(item) is dict and _eval(f.filter, item, None, t.attr) for item in items)


def _check_value_path(f: ValuePath, t: _Target) -> None:
    if t.attr.type != "complex" or not t.implicit:
        raise _invalid(f"'{f.path}' is not a complex attribute and cannot take a value filter")


def evaluate(f: Filter, resource: dict[str, Any], rtype: ResourceType) -> bool:
    """Whether ``resource`` (as stored: canonical attribute names, see ``validate_resource``)
    matches ``f``.

    Strings compare case-insensitively unless the attribute is caseExact (id, externalId,
    meta.version, ...); dateTimes compare chronologically; booleans only equal JSON booleans.
    Unknown attributes match nothing; an operator that cannot apply to the attribute's type
    raises ``invalidFilter`` (see ``check_filter`` to raise it before any resource is read).
    """
    return _eval(f, resource, rtype, None)


def matches_value(f: Filter, value: dict[str, Any], attribute: Attribute) -> bool:
    """Whether one value of the complex ``attribute`` matches a value filter (the part
    between brackets in ``emails[type eq "work"]``)."""
    return _eval(f, value, None, attribute)


def check_filter(f: Filter, rtype: ResourceType) -> None:
    """Raise ``invalidFilter`` for every comparison ``evaluate`` would reject, without a
    resource: an operator the attribute's type does not support (``active gt true``), a value
    filter on a simple attribute, a malformed dateTime operand."""
    for node, outer in _walk(f, rtype):
        if isinstance(node, Compare):
            t = _resolve(node.path, rtype, outer)
            if t is not None:
                _prepare(node, t)


def _walk(f: Filter, rtype: ResourceType) -> Iterator[tuple[Filter, Attribute | None]]:
    stack: list[tuple[Filter, Attribute | None]] = [(f, None)]
    while stack:
        node, outer = stack.pop()
        yield node, outer
        if isinstance(node, And | Or):
            stack.append((node.right, outer))
            stack.append((node.left, outer))
        elif isinstance(node, Not):
            stack.append((node.inner, outer))
        elif isinstance(node, ValuePath):
            if outer is not None:
                raise _invalid("value filters cannot be nested")
            t = _resolve(node.path, rtype, None)
            if t is not None:
                _check_value_path(node, t)
                stack.append((node.filter, t.attr))


# --- indexed pre-filter -----------------------------------------------------------------------


def indexable_equalities(f: Filter, rtype: ResourceType) -> dict[str, str | bool]:
    """Equalities every match must satisfy, for an SQL pre-filter on indexed columns.

    Looks only at a top-level ``eq`` or the ``eq`` operands of a top-level ``and`` chain:
    ``userName`` (User) and ``displayName`` (Group) lower-cased, ``externalId`` and ``id`` as
    given, ``emails.value`` (or ``emails``) as ``"email"`` lower-cased, ``active`` as a bool.
    Anything else (``or`` at the top, ``not``, value filters) contributes nothing, so the result
    may be ``{}``. Callers must still ``evaluate`` every candidate.

    Also runs ``check_filter``, so a filter with an impossible comparison fails with
    ``invalidFilter`` even when no candidate would reach ``evaluate``.
    """
    check_filter(f, rtype)
    out: dict[str, str | bool] = {}
    stack = [f]
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.append(node.right)
            stack.append(node.left)
            continue
        if not isinstance(node, Compare) or node.op != "eq":
            continue
        found = find_attribute(rtype, node.path)
        if found is None or found[0] is not rtype.schema:
            continue
        entry = _index_entry(rtype.schema.id, found[1], found[2], node.value)
        if entry is not None and entry[0] not in out:
            out[entry[0]] = entry[1]
    return out


def _index_entry(
    schema: str, attr: Attribute, sub: Attribute | None, value: Value
) -> tuple[str, str | bool] | None:
    name = attr.name
    if isinstance(value, bool):
        return ("active", value) if schema == USER_SCHEMA and name == "active" else None
    if not isinstance(value, str):
        return None
    if sub is None and name in ("id", "externalId"):
        return name, value
    if schema == USER_SCHEMA:
        if name == "userName":
            return "userName", value.lower()
        if name == "emails" and (sub is None or sub.name == "value"):
            return "email", value.lower()
    if schema == GROUP_SCHEMA and name == "displayName":
        return "displayName", value.lower()
    return None
