"""Building blocks of ``patch.py`` (RFC 7644 §3.5.2): reading the PatchOp request, value
helpers, and the group membership changes collected so storage can add and remove membership
rows without loading or rewriting the group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sso_gate.scim._model import Attribute, normalize_item, same_value
from sso_gate.scim._paths import And, Compare, Filter, Or
from sso_gate.scim.errors import SCIMError
from sso_gate.scim.schema import PATCH_SCHEMA

__all__ = [
    "MemberChange",
    "MemberTracker",
    "check_immutable",
    "copy_items",
    "demote_primary",
    "designates",
    "get_key",
    "invalid_syntax",
    "member_ids",
    "member_values",
    "merge_item",
    "parse_operations",
    "seed_from_filter",
    "value_equalities",
]

_OPS = ("add", "remove", "replace")


# --- the request ------------------------------------------------------------------------------


def invalid_syntax(detail: str) -> SCIMError:
    return SCIMError(detail, scim_type="invalidSyntax")


def get_key(obj: dict[str, Any], name: str) -> Any:
    if name in obj:
        return obj[name]
    lower = name.lower()
    return next((v for k, v in obj.items() if k.lower() == lower), None)


def parse_operations(body: Any) -> list[tuple[str, str | None, Any]]:
    if not isinstance(body, dict):
        raise invalid_syntax("a PATCH request must be a JSON object")
    schemas = get_key(body, "schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.lower() == PATCH_SCHEMA.lower() for s in schemas
    ):
        raise invalid_syntax(f"'schemas' must contain {PATCH_SCHEMA} (RFC 7644 §3.5.2)")
    operations = get_key(body, "Operations")
    if not isinstance(operations, list):
        raise invalid_syntax("'Operations' must be a JSON array")
    out: list[tuple[str, str | None, Any]] = []
    for index, item in enumerate(operations, 1):
        if not isinstance(item, dict):
            raise invalid_syntax(f"operation {index} must be a JSON object")
        op = get_key(item, "op")
        if not isinstance(op, str) or op.lower() not in _OPS:
            raise invalid_syntax(
                f"operation {index}: op must be add, remove or replace, not {op!r:.40}"
            )
        op = op.lower()
        path = get_key(item, "path")
        if path is not None and not isinstance(path, str):
            raise SCIMError(f"operation {index}: path must be a string", scim_type="invalidPath")
        has_value = any(k.lower() == "value" for k in item)
        if op != "remove" and not has_value:
            raise invalid_syntax(f"operation {index}: {op} needs a value (RFC 7644 §3.5.2.1)")
        path = (path.strip() or None) if path is not None else None
        out.append((op, path, get_key(item, "value")))
    return out


# --- values -----------------------------------------------------------------------------------


def copy_items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [dict(i) for i in value if isinstance(i, dict)]
    return [dict(value)] if isinstance(value, dict) else []


def designates(attr: Attribute, have: Any, want: Any) -> bool:
    """Whether stored value ``have`` is the one ``want`` designates (all of ``want``'s
    sub-attributes match)."""
    if attr.type != "complex":
        return same_value(attr, have, want)
    if not isinstance(have, dict) or not isinstance(want, dict) or not want:
        return False
    for name, value in want.items():
        sub = attr.sub(name)
        if sub is None or name not in have or not same_value(sub, have[name], value):
            return False
    return True


def merge_item(attr: Attribute, items: list[Any], item: Any) -> None:
    if item in items:
        return
    value_attr = attr.sub("value") if attr.type == "complex" else None
    if value_attr is not None and "value" in item:
        for i, have in enumerate(items):
            if isinstance(have, dict) and same_value(value_attr, have.get("value"), item["value"]):
                items[i] = {**have, **item}
                return
    items.append(item)


def demote_primary(items: list[Any]) -> None:
    # RFC 7644 §3.5.2: setting "primary" to true on one value makes the server set it to false
    # on the attribute's other values. Called before the new primary value is written.
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("primary") is True:
            items[i] = {**item, "primary": False}


def check_immutable(attr: Attribute, before: Any, after: Any, where: str) -> None:
    # RFC 7644 §3.5.2: an immutable attribute may be set once, never changed or removed.
    if attr.mutability == "immutable" and before is not None and before != after:
        raise SCIMError(f"'{where}' is immutable", scim_type="mutability")


def seed_from_filter(flt: Filter, attr: Attribute) -> dict[str, Any] | None:
    """The value implied by ``type eq "work" [and ...]``, or None if the filter says less."""
    seed: dict[str, Any] = {}
    stack = [flt]
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack += [node.right, node.left]
            continue
        if not isinstance(node, Compare) or node.op != "eq" or node.value is None:
            return None
        if node.path.schema is not None or node.path.sub is not None:
            return None
        sub = attr.sub(node.path.attr)
        if sub is None or sub.mutability == "readOnly":
            return None
        seed[sub.name] = node.value
    return seed


# --- members ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberChange:
    """Group membership changes, as member ``value`` ids.

    When ``replaced`` is not None the final membership is exactly ``replaced`` (a ``replace`` of
    the whole list, or a ``remove`` of ``members`` without a value: ``()``). Otherwise
    ``added``/``removed`` are the deltas to apply, in request order; adding an existing member
    or removing a missing one is the storage layer's no-op.
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    replaced: tuple[str, ...] | None = None

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed and self.replaced is None


class MemberTracker:
    """Folds add/remove/replace operations, in order, into one ``MemberChange``."""

    def __init__(self) -> None:
        self.added: dict[str, None] = {}
        self.removed: dict[str, None] = {}
        self.replaced: dict[str, None] | None = None

    def add(self, ids: list[str]) -> None:
        for mid in ids:
            if self.replaced is not None:
                self.replaced[mid] = None
            else:
                self.removed.pop(mid, None)
                self.added[mid] = None

    def remove(self, ids: list[str]) -> None:
        for mid in ids:
            if self.replaced is not None:
                self.replaced.pop(mid, None)
            else:
                self.added.pop(mid, None)
                self.removed[mid] = None

    def replace(self, ids: list[str]) -> None:
        self.replaced = dict.fromkeys(ids)
        self.added.clear()
        self.removed.clear()

    def change(self) -> MemberChange:
        replaced = None if self.replaced is None else tuple(self.replaced)
        return MemberChange(tuple(self.added), tuple(self.removed), replaced)


def value_equalities(flt: Filter) -> list[str] | None:
    """``value eq "a" [or value eq "b" ...]`` → ["a", "b"]; None for any other filter."""
    ids: list[str] = []
    stack = [flt]
    while stack:
        node = stack.pop()
        if isinstance(node, Or):
            stack += [node.right, node.left]
            continue
        if not (
            isinstance(node, Compare)
            and node.op == "eq"
            and isinstance(node.value, str)
            and node.path.schema is None
            and node.path.sub is None
            and node.path.attr.lower() == "value"
        ):
            return None
        ids.append(node.value)
    return ids


def member_ids(attr: Attribute, value: Any, where: str) -> list[str]:
    """The ``value`` ids of the members in a PATCH value (a list, or one member object)."""
    ids = []
    for i, item in enumerate(value if isinstance(value, list) else [value]):
        if item is None:
            continue
        member = normalize_item(attr, item, f"{where}[{i}]")
        if not member or not member.get("value"):
            raise SCIMError(f"'{where}[{i}]' has no member value", scim_type="invalidValue")
        ids.append(member["value"])
    return ids


def member_values(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(m["value"]) for m in value if isinstance(m, dict) and m.get("value")]
