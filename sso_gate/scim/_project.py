"""``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5, §3.9): which attributes a
response carries. Plans are computed once per (resource type, parameters) and memoized."""

from __future__ import annotations

from typing import Any, Literal

from sso_gate.scim._model import (
    COMMON_ATTRIBUTES,
    Attribute,
    ResourceSchema,
    ResourceType,
    find_attribute,
    is_uri,
    memo,
)
from sso_gate.scim._paths import parse_attr_path

__all__ = ["project"]


# A plan maps container (None = top level, else extension URN) → attribute name → the set of
# sub-attribute names to keep (None = all that are returned by default).
_Plan = dict[str | None, dict[str, frozenset[str] | None]]


def project(
    rtype: ResourceType,
    resource: dict[str, Any],
    *,
    attributes: list[str] | None = None,
    excluded: list[str] | None = None,
) -> dict[str, Any]:
    """The representation returned for ``resource`` (RFC 7644 §3.4.2.5, §3.9).

    ``returned: always`` attributes (id, schemas) are always present, ``never`` ones never,
    ``request`` ones only when named in ``attributes``. Entries may be sub-attribute paths
    (``name.givenName``), URN-qualified paths or a bare extension URN (the whole extension);
    names that resolve to nothing are ignored. Custom (undeclared) extension objects are
    returned by default, or when their URN is named. The result shares nested values with
    ``resource``; treat it as read-only.
    """
    key = ("project", tuple(attributes) if attributes else None, tuple(excluded or ()))
    plan: _Plan = memo(rtype, key, lambda: _plan(rtype, key[1], key[2]))
    only = key[1] is not None
    out: dict[str, Any] = {}
    top = plan[None]
    for name, value in resource.items():
        if name in top:
            shown = _keep_subs(value, top[name])
            if shown != [] and shown != {}:
                out[name] = shown
        elif name in plan:
            ext_plan = plan[name]
            if isinstance(value, dict):
                kept = {k: _keep_subs(v, ext_plan[k]) for k, v in value.items() if k in ext_plan}
                kept = {k: v for k, v in kept.items() if v != [] and v != {}}
                if kept:
                    out[name] = kept
        elif is_uri(name) and rtype.schema_for(name) is None:
            wanted = _custom_wanted(name, attributes) if only else not _custom_named(name, excluded)
            if wanted:
                out[name] = value
    return out


def _keep_subs(value: Any, subs: frozenset[str] | None) -> Any:
    if subs is None:
        return value
    if isinstance(value, list):
        kept = (
            {k: v for k, v in item.items() if k in subs} for item in value if isinstance(item, dict)
        )
        return [item for item in kept if item]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in subs}
    return value


def _custom_named(urn: str, names: list[str] | None) -> bool:
    return any(n.lower() == urn.lower() for n in names or ())


def _custom_wanted(urn: str, names: list[str] | None) -> bool:
    prefix = urn.lower() + ":"
    return any(n.lower() == urn.lower() or n.lower().startswith(prefix) for n in names or ())


def _plan(
    rtype: ResourceType, attributes: tuple[str, ...] | None, excluded: tuple[str, ...]
) -> _Plan:
    requested = _selection(rtype, attributes or ())
    dropped = _selection(rtype, excluded)
    plan: _Plan = {}
    only = attributes is not None
    schemas: list[tuple[ResourceSchema, str | None]] = [(rtype.schema, None)] + [
        (ext, ext.id) for ext, _ in rtype.extensions
    ]
    for schema, container in schemas:
        attrs = schema.attributes + (COMMON_ATTRIBUTES if container is None else ())
        entry: dict[str, frozenset[str] | None] = {}
        for attr in attrs:
            subs = _decide(attr, requested.get(attr, _MISSING), dropped.get(attr, _MISSING), only)
            if subs is not False:
                entry[attr.name] = subs
        plan[container] = entry
    return plan


_MISSING: Any = object()


def _selection(rtype: ResourceType, names: tuple[str, ...]) -> dict[Attribute, set[str] | None]:
    """attribute → None (the whole attribute was named) or the named sub-attribute names."""
    chosen: dict[Attribute, set[str] | None] = {}
    for raw in names:
        name = raw.strip()
        whole = rtype.schema_for(name)
        if whole is not None:
            chosen.update((a, None) for a in whole.attributes)
            continue
        path = parse_attr_path(name)
        found = find_attribute(rtype, path) if path else None
        if found is None:
            continue
        _, attr, sub = found
        if sub is None:
            chosen[attr] = None
        else:
            subs = chosen.setdefault(attr, set())
            if subs is not None:
                subs.add(sub.name)
    return chosen


def _decide(
    attr: Attribute, asked: Any, dropped: Any, only: bool
) -> frozenset[str] | None | Literal[False]:
    """False = leave out; None = the whole value; else the sub-attribute names to keep."""
    if attr.returned == "never":
        return False
    every = frozenset(s.name for s in attr.sub_attributes if s.returned != "never")
    always = frozenset(s.name for s in attr.sub_attributes if s.returned == "always")
    if attr.returned == "always":
        return None
    keep: frozenset[str]
    if only:
        if asked is _MISSING:
            return False
        keep = every if asked is None else frozenset(asked) | always
    else:
        if attr.returned == "request":
            return False
        keep = frozenset(s.name for s in attr.sub_attributes if s.returned in ("always", "default"))
    if dropped is not _MISSING:
        if dropped is None:
            return False
        keep = (keep - dropped) | always
        if not keep:
            return False
    if not attr.sub_attributes or keep == frozenset(s.name for s in attr.sub_attributes):
        return None
    return keep
