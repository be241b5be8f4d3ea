"""RFC 7644 §3.5.2 PATCH, including the dialects Microsoft Entra ID and Okta really send.

``apply_patch`` never mutates its input: it works on a copy and reports whether anything
changed, so a caller can skip the write for the no-op PATCHes Entra sends on every sync cycle.
Group ``members`` are collected into a ``MemberChange`` instead of being applied to the
resource, so storage adds and removes membership rows without loading or rewriting the group.

Deviations from RFC 7644, all accepted because real clients depend on them:

* ``op`` is case-insensitive (Entra sends ``"Replace"``, ``"Add"``, ``"Remove"``).
* Booleans may be strings (``"active": "False"``: Entra without ``aadOptscim062020``).
* ``remove`` of a multi-valued attribute *with* a ``value`` array removes just those values
  (Entra: ``{"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}``); the RFC would
  remove every value.
* ``add``/``replace`` on a filtered path that matches no value creates the value from the
  filter's ``eq`` comparisons (Entra: ``emails[type eq "work"].value`` on a user without a work
  email) instead of failing with ``noTarget``.
* Without ``path``, keys of ``value`` may be attribute paths (``"name.givenName"``,
  ``"urn:...:enterprise:2.0:User:employeeNumber"``: Entra with ``aadOptscim062020``), and
  readOnly attributes in it are ignored rather than rejected (Okta puts ``id`` in group renames).
* The enterprise ``manager`` may be given as the manager's id string (Entra).
* Paths under an undeclared extension URN (Entra custom attributes,
  ``urn:ietf:params:scim:schemas:extension:<Name>:2.0:User:<attr>``) edit that extension's
  object verbatim, without type checks.
* ``password`` (writeOnly) is type-checked and dropped: sso_gate never stores one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sso_gate.scim._model import (
    Attribute,
    ResourceSchema,
    ResourceType,
    clone,
    common_attribute,
    find_attribute,
    is_uri,
    normalize_value,
)
from sso_gate.scim._patch_support import (
    MemberChange,
    MemberTracker,
    check_immutable,
    copy_items,
    demote_primary,
    designates,
    member_ids,
    member_values,
    merge_item,
    parse_operations,
    seed_from_filter,
    value_equalities,
)
from sso_gate.scim.errors import SCIMError
from sso_gate.scim.filter import (
    Filter,
    PatchPath,
    format_path,
    matches_value,
    parse_path,
)
from sso_gate.scim.schema import GROUP_SCHEMA, check_required

__all__ = ["MemberChange", "PatchResult", "apply_patch"]


@dataclass(frozen=True, slots=True)
class PatchResult:
    """``resource`` is a new dict; ``changed`` is whether it differs from the input resource.

    ``changed`` covers the resource dict only: membership changes collected in ``members`` are
    reported there (and may be non-empty while ``changed`` is False).
    """

    resource: dict[str, Any]
    changed: bool
    members: MemberChange


def apply_patch(
    rtype: ResourceType,
    resource: dict[str, Any],
    body: Any,
    *,
    members_in_resource: bool = False,
) -> PatchResult:
    """Apply a decoded PatchOp request to a stored ``resource``.

    Errors: ``invalidSyntax`` for a malformed body or unknown ``op``; ``invalidPath`` for an
    unparsable or unknown path; ``noTarget`` for ``remove`` without a path; ``mutability`` for
    writing a readOnly or immutable attribute or removing a required one; ``invalidValue`` for
    a value of the wrong type. With ``members_in_resource`` the Group's ``members`` list is
    edited in ``resource`` like any attribute, and ``members`` reports the difference.
    """
    operations = parse_operations(body)
    patch = _Patch(rtype, resource, members_in_resource)
    for index, (op, path, value) in enumerate(operations, 1):
        try:
            patch.apply(op, path, value)
        except SCIMError as exc:
            raise SCIMError(
                f"operation {index} ({op} {path or '<no path>'}): {exc.message}",
                status=exc.http_status,
                scim_type=exc.scim_type,
            ) from None
    check_required(rtype, patch.doc)
    return PatchResult(patch.doc, patch.doc != resource, patch.member_change())


class _Patch:
    def __init__(self, rtype: ResourceType, resource: dict[str, Any], in_resource: bool) -> None:
        self.rtype = rtype
        self.original = resource
        self.doc: dict[str, Any] = clone(resource)
        self.is_group = rtype.schema.id == GROUP_SCHEMA
        self.in_resource = in_resource
        self.tracker = MemberTracker()
        self.members_replaced = False

    # -- dispatch ------------------------------------------------------------------------------

    def apply(self, op: str, path: str | None, value: Any) -> None:
        if path is not None:
            self.apply_path(op, parse_path(path), value, lenient=False)
            return
        if op == "remove":
            raise SCIMError("remove needs a path (RFC 7644 §3.5.2.2)", scim_type="noTarget")
        if not isinstance(value, dict):
            raise SCIMError(
                "without a path, value must be a JSON object of attributes (RFC 7644 §3.5.2)",
                scim_type="invalidValue",
            )
        for key, item in value.items():
            self.apply_key(op, key, item)

    def apply_key(self, op: str, key: str, value: Any) -> None:
        if key.lower() == "schemas":
            return  # the resource's schemas follow its extension data
        try:
            path = parse_path(key)
        except SCIMError:
            if is_uri(key):  # e.g. an "http://..." custom extension key
                self.custom_object(op, key, value)
                return
            raise
        self.apply_path(op, path, value, lenient=True)

    def apply_path(self, op: str, path: PatchPath, value: Any, *, lenient: bool) -> None:
        a = path.attr
        where = format_path(path)
        if a.schema is not None and a.sub is None and path.value_filter is None:
            # A bare schema URN names a whole extension object (it parses as "urn…:2.0" + "User").
            urn = f"{a.schema}:{a.attr}"
            whole = self.rtype.schema_for(urn)
            if whole is not None:
                self.whole_schema(op, whole, value)
                return
            # An undeclared one is recognized when the resource has it, or by its last segment
            # being the resource type ("urn:...:extension:Acme:2.0:User").
            if self.rtype.schema_for(a.schema) is None and (
                self.custom_key(urn) is not None or a.attr.lower() == self.rtype.name.lower()
            ):
                self.custom_object(op, urn, value)
                return
        found = find_attribute(self.rtype, a)
        if found is None:
            if a.schema is not None and self.rtype.schema_for(a.schema) is None:
                self.custom_attr(op, path, value)
                return
            raise SCIMError(f"unknown attribute path '{where}'", scim_type="invalidPath")
        schema, attr, sub = found
        if path.value_filter is not None and path.sub is not None:
            sub = attr.sub(path.sub)
            if sub is None:
                raise SCIMError(f"unknown attribute path '{where}'", scim_type="invalidPath")
        self.apply_attr(op, schema, attr, sub, path.value_filter, value, lenient, where)

    def whole_schema(self, op: str, schema: ResourceSchema, value: Any) -> None:
        core = schema is self.rtype.schema
        if op == "remove" or value is None:
            if core:
                raise SCIMError("the core schema cannot be removed", scim_type="mutability")
            for attr in schema.attributes:
                self.remove(schema, attr, None, None, f"{schema.id}:{attr.name}")
            self.doc.pop(schema.id, None)
            return
        if not isinstance(value, dict):
            raise SCIMError(f"'{schema.id}' must be a JSON object", scim_type="invalidValue")
        for key, item in value.items():
            if not core and key.lower() == "schemas":
                continue  # an extension object serialized with its own "schemas" (scim2-models)
            named = schema.attr(key) or (common_attribute(key) if core else None)
            if named is None:
                raise SCIMError(f"unknown attribute '{schema.id}:{key}'", scim_type="invalidPath")
            where = f"{schema.id}:{named.name}"
            self.apply_attr(op, schema, named, None, None, item, True, where)

    def apply_attr(
        self,
        op: str,
        schema: ResourceSchema,
        attr: Attribute,
        sub: Attribute | None,
        flt: Filter | None,
        value: Any,
        lenient: bool,
        where: str,
    ) -> None:
        if self.is_group and attr.name == "members" and schema is self.rtype.schema:
            if not self.in_resource:
                self.members(op, sub, flt, value, where)
                return
            whole_list = flt is None and sub is None and op != "add"
            if whole_list and (op == "replace" or value in (None, [], {})):
                self.members_replaced = True
        # RFC 7644 §3.5.2: operations must respect the attribute's mutability (RFC 7643 §7).
        if attr.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
            if lenient:
                return
            raise SCIMError(f"'{where}' is readOnly", scim_type="mutability")
        target = sub or attr
        if attr.mutability == "writeOnly" or target.mutability == "writeOnly":
            if op != "remove":
                normalize_value(target, value, where)
            return
        if op == "remove" or value is None:
            # RFC 7643 §2.5: assigning null is the same as removing the value.
            self.remove(schema, attr, sub, flt, where, value if op == "remove" else None)
        elif flt is not None:
            self.set_filtered(op, schema, attr, sub, flt, value, where)
        elif sub is not None:
            self.set_sub(schema, attr, sub, value, where)
        else:
            self.set_attr(op, schema, attr, value, where)
        self.tidy(schema)

    # -- containers ----------------------------------------------------------------------------

    def container(self, schema: ResourceSchema) -> dict[str, Any]:
        if schema is self.rtype.schema:
            return self.doc
        found = self.doc.get(schema.id)
        if type(found) is dict:
            return found
        created: dict[str, Any] = {}
        self.doc[schema.id] = created
        self.add_schema(schema.id)
        return created

    def tidy(self, schema: ResourceSchema) -> None:
        if schema is not self.rtype.schema and self.doc.get(schema.id) == {}:
            del self.doc[schema.id]

    def add_schema(self, urn: str) -> None:
        schemas = self.doc.get("schemas")
        if not isinstance(schemas, list):
            schemas = self.doc["schemas"] = [self.rtype.schema.id]
        if all(not isinstance(s, str) or s.lower() != urn.lower() for s in schemas):
            schemas.append(urn)

    @staticmethod
    def put(container: dict[str, Any], name: str, value: Any) -> None:
        if value is None or value == [] or value == {}:
            container.pop(name, None)
        else:
            container[name] = value

    # -- add / replace -------------------------------------------------------------------------

    def set_attr(
        self, op: str, schema: ResourceSchema, attr: Attribute, value: Any, where: str
    ) -> None:
        container = self.container(schema)
        current = container.get(attr.name)
        if attr.multi_valued:
            new = normalize_value(attr, value if isinstance(value, list) else [value], where)
            if op == "replace":
                result = new or []
            else:
                result = list(current) if isinstance(current, list) else []
                if any(isinstance(i, dict) and i.get("primary") is True for i in new or []):
                    demote_primary(result)
                # RFC 7644 §3.5.2.1: adding a value that is already there changes nothing.
                for item in new or []:
                    merge_item(attr, result, item)
        elif attr.type == "complex":
            # RFC 7644 §3.5.2.1/§3.5.2.3: sub-attributes not in "value" are left unchanged.
            new = normalize_value(attr, value, where)
            result = {**(current if isinstance(current, dict) else {}), **(new or {})}
            for s in attr.sub_attributes:
                if isinstance(current, dict):
                    check_immutable(s, current.get(s.name), result.get(s.name), where)
        else:
            result = normalize_value(attr, value, where)
        check_immutable(attr, current, result, where)
        if attr.multi_valued:
            normalize_value(attr, result, where)  # at most one primary after merging
        self.put(container, attr.name, result)

    def set_sub(
        self, schema: ResourceSchema, attr: Attribute, sub: Attribute, value: Any, where: str
    ) -> None:
        container = self.container(schema)
        norm = normalize_value(sub, value, where)
        current = container.get(attr.name)
        if not attr.multi_valued:
            obj = dict(current) if isinstance(current, dict) else {}
            check_immutable(sub, obj.get(sub.name), norm, where)
            self.put(obj, sub.name, norm)
            self.put(container, attr.name, obj)
            return
        # "emails.value" without a filter addresses every value; with none, it creates one.
        items = (
            [dict(i) for i in current if isinstance(i, dict)] if isinstance(current, list) else []
        )
        if not items:
            items = [{}]
        for item in items:
            check_immutable(sub, item.get(sub.name), norm, where)
            self.put(item, sub.name, norm)
        result = [i for i in items if i]
        normalize_value(attr, result, where)
        self.put(container, attr.name, result)

    def set_filtered(
        self,
        op: str,
        schema: ResourceSchema,
        attr: Attribute,
        sub: Attribute | None,
        flt: Filter,
        value: Any,
        where: str,
    ) -> None:
        if attr.type != "complex":
            raise SCIMError(
                f"'{attr.name}' is not complex: no value filter", scim_type="invalidPath"
            )
        container = self.container(schema)
        items = copy_items(container.get(attr.name))
        hits = [i for i, item in enumerate(items) if matches_value(flt, item, attr)]
        seeded = False
        if not hits:
            # Entra sends replace emails[type eq "work"].value for users without a work email:
            # create {"type": "work", "value": ...} rather than fail with noTarget.
            seed = seed_from_filter(flt, attr)
            if seed is None:
                raise SCIMError(f"no value of '{attr.name}' matches", scim_type="noTarget")
            items.append(seed)
            hits = [len(items) - 1]
            seeded = True
        changes: dict[str, Any]
        if sub is not None:
            changes = {sub.name: normalize_value(sub, value, where)}
        elif attr.multi_valued:
            whole = normalize_value(attr, [value], where)
            changes = whole[0] if whole else {}
        else:
            changes = normalize_value(attr, value, where) or {}
        if changes.get("primary") is True:
            demote_primary(items)
        for i in hits:
            item = items[i]
            for name, new in changes.items():
                s = attr.sub(name)
                assert s is not None
                check_immutable(s, item.get(name), new, where)
                self.put(item, name, new)
        if seeded and not matches_value(flt, items[hits[0]], attr):
            # The value would not match the filter that created it (replace
            # emails[type eq "work"] with {"type": "home"}): there was nothing to replace
            # (RFC 7644 §3.5.2.3), and creating it would make the replace not idempotent.
            raise SCIMError(f"no value of '{attr.name}' matches", scim_type="noTarget")
        self.store_items(container, attr, items, where)

    # -- remove --------------------------------------------------------------------------------

    def remove(
        self,
        schema: ResourceSchema,
        attr: Attribute,
        sub: Attribute | None,
        flt: Filter | None,
        where: str,
        value: Any = None,
    ) -> None:
        container = self.doc if schema is self.rtype.schema else self.doc.get(schema.id)
        if not isinstance(container, dict) or container.get(attr.name) is None:
            if attr.required and sub is None and flt is None:
                raise SCIMError(f"'{where}' is required", scim_type="mutability")
            return  # removing what is not there changes nothing
        current = container[attr.name]
        if flt is None and sub is None:
            if attr.required:
                raise SCIMError(
                    f"'{where}' is required and cannot be removed", scim_type="mutability"
                )
            if attr.multi_valued and value not in (None, [], {}):
                # Entra: remove with a value list removes those values, not the attribute.
                listed = value if isinstance(value, list) else [value]
                wanted = normalize_value(attr, listed, where) or []
                kept = [
                    i
                    for i in copy_items(current)
                    if not any(designates(attr, i, w) for w in wanted)
                ]
                self.put(container, attr.name, kept)
                return
            check_immutable(attr, current, None, where)
            del container[attr.name]
            return
        if attr.type != "complex":
            raise SCIMError(
                f"'{attr.name}' is not complex: no value filter", scim_type="invalidPath"
            )
        items = copy_items(current)
        hits = [i for i, item in enumerate(items) if flt is None or matches_value(flt, item, attr)]
        for i in hits:
            if sub is None:
                items[i] = {}  # whole values may go even when their sub-attributes are immutable
            else:
                if sub.required:
                    raise SCIMError(f"'{where}' is required", scim_type="mutability")
                check_immutable(sub, items[i].get(sub.name), None, where)
                items[i].pop(sub.name, None)
        self.store_items(container, attr, items, where)

    def store_items(
        self, container: dict[str, Any], attr: Attribute, items: list[dict[str, Any]], where: str
    ) -> None:
        kept = [i for i in items if i]
        if attr.multi_valued:
            # Validation only: stored values keep what normalization would drop (e.g. a
            # members.display the storage layer filled in), so a no-op stays a no-op.
            normalize_value(attr, kept, where)
            self.put(container, attr.name, kept)
        else:
            self.put(container, attr.name, kept[0] if kept else None)

    # -- group members kept outside the resource -----------------------------------------------

    def members(
        self, op: str, sub: Attribute | None, flt: Filter | None, value: Any, where: str
    ) -> None:
        if sub is not None or (flt is not None and op != "remove"):
            raise SCIMError(
                f"'{where}': members are added, replaced or removed as whole values",
                scim_type="invalidPath",
            )
        attr = self.members_attr
        if op == "remove":
            if flt is not None:
                self.tracker.remove(self.filtered_member_ids(flt))
            elif value in (None, [], {}):
                self.tracker.replace([])
            else:
                self.tracker.remove(member_ids(attr, value, where))
        elif op == "add":
            self.tracker.add(member_ids(attr, value, where))
        else:
            self.tracker.replace(member_ids(attr, value, where))

    @property
    def members_attr(self) -> Attribute:
        attr = self.rtype.schema.attr("members")
        assert attr is not None
        return attr

    def filtered_member_ids(self, flt: Filter) -> list[str]:
        ids = value_equalities(flt)
        if ids is not None:
            return ids
        loaded = self.original.get("members")
        if not isinstance(loaded, list):
            raise SCIMError(
                "only 'value eq' filters can select members that are not loaded",
                scim_type="invalidFilter",
            )
        attr = self.members_attr
        return [
            str(m["value"])
            for m in loaded
            if isinstance(m, dict) and m.get("value") and matches_value(flt, m, attr)
        ]

    def member_change(self) -> MemberChange:
        if not self.is_group:
            return MemberChange()
        if not self.in_resource:
            return self.tracker.change()
        before = member_values(self.original.get("members"))
        after = member_values(self.doc.get("members"))
        return MemberChange(
            tuple(m for m in after if m not in before),
            tuple(m for m in before if m not in after),
            tuple(after) if self.members_replaced else None,
        )

    # -- undeclared (custom) extensions --------------------------------------------------------

    def custom_key(self, urn: str) -> str | None:
        lower = urn.lower()
        for key, value in self.doc.items():
            if key.lower() == lower and isinstance(value, dict):
                return key
        for listed in self.doc.get("schemas") or ():
            if isinstance(listed, str) and listed.lower() == lower:
                return listed
        return None

    def custom_object(self, op: str, urn: str, value: Any) -> None:
        key = self.custom_key(urn) or urn
        if op == "remove" or value is None:
            self.doc.pop(key, None)
            return
        if not isinstance(value, dict):
            raise SCIMError(f"extension '{urn}' must be a JSON object", scim_type="invalidValue")
        current = self.doc.get(key)
        if not isinstance(current, dict):
            current = {}
        # Merged like any complex attribute (RFC 7644 §3.5.2.3: unnamed sub-attributes stay).
        current.update(clone(value))
        self.put(self.doc, key, current)
        self.add_schema(key)

    def custom_attr(self, op: str, path: PatchPath, value: Any) -> None:
        if path.value_filter is not None:
            raise SCIMError(
                "value filters need a declared schema; this extension is stored verbatim",
                scim_type="invalidPath",
            )
        a = path.attr
        assert a.schema is not None
        key = self.custom_key(a.schema) or a.schema
        obj = self.doc.get(key)
        if not isinstance(obj, dict):
            if op == "remove" or value is None:
                return
            obj = self.doc[key] = {}
            self.add_schema(key)
        name = next((k for k in obj if k.lower() == a.attr.lower()), a.attr)
        if a.sub is not None:
            inner = obj.get(name)
            inner = inner if isinstance(inner, dict) else {}
            sub = next((k for k in inner if k.lower() == a.sub.lower()), a.sub)
            self.put(inner, sub, None if op == "remove" else clone(value))
            self.put(obj, name, inner)
        elif op == "remove" or value is None:
            obj.pop(name, None)
        elif op == "add" and isinstance(obj.get(name), list):
            for item in value if isinstance(value, list) else [value]:
                if item not in obj[name]:
                    obj[name].append(clone(item))
        else:
            obj[name] = clone(value)
        if not obj:
            del self.doc[key]
