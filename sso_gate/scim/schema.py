"""RFC 7643 schemas as data: the User, EnterpriseUser and Group schemas, their resource types,
validation of POST/PUT bodies and the ``attributes``/``excludedAttributes`` projection.

Everything here is immutable and built once at import; lookups are dict hits on lower-cased
names because attribute names are case-insensitive (RFC 7643 §2.1).
"""

from __future__ import annotations

from typing import Any

from sso_gate.scim._model import (
    COMMON_ATTRIBUTES,
    RESOURCE_TYPE_SCHEMA,
    SCHEMA_SCHEMA,
    Attribute,
    AttrType,
    ResourceSchema,
    ResourceType,
    clone,
    common_attribute,
    find_attribute,
    is_uri,
    normalize_value,
    ro,
    rw,
)
from sso_gate.scim._project import project
from sso_gate.scim.errors import ERROR_SCHEMA, SCIMError

__all__ = [
    "USER_SCHEMA",
    "ENTERPRISE_USER_SCHEMA",
    "GROUP_SCHEMA",
    "LIST_SCHEMA",
    "PATCH_SCHEMA",
    "ERROR_SCHEMA",
    "SPC_SCHEMA",
    "RESOURCE_TYPE_SCHEMA",
    "SCHEMA_SCHEMA",
    "Attribute",
    "ResourceSchema",
    "ResourceType",
    "COMMON_ATTRIBUTES",
    "USER",
    "ENTERPRISE_USER",
    "GROUP",
    "USER_TYPE",
    "GROUP_TYPE",
    "find_attribute",
    "validate_resource",
    "project",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"

# --- RFC 7643 §4 definitions ------------------------------------------------------------------

_REF_USER_GROUP = ("User", "Group")


def _plural(
    name: str,
    description: str,
    types: tuple[str, ...] = (),
    value_type: AttrType = "string",
    value_description: str = "",
    **value_kw: Any,
) -> Attribute:
    """RFC 7643 §2.4: a multi-valued complex attribute with value, display, type, primary."""
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        description=description,
        sub_attributes=(
            rw("value", value_description or f"The {name} value.", value_type, **value_kw),
            rw("display", "A human-readable name, primarily used for display purposes."),
            rw("type", "A label indicating the attribute's function.", canonical_values=types),
            rw("primary", "Whether this is the preferred value.", "boolean"),
        ),
    )


USER = ResourceSchema(
    USER_SCHEMA,
    "User",
    "User Account",
    (
        rw(
            "userName",
            "Unique identifier for the User, typically used by the user to directly "
            "authenticate to the service provider. REQUIRED.",
            required=True,
            uniqueness="server",
        ),
        rw(
            "name",
            "The components of the user's real name.",
            "complex",
            sub_attributes=(
                rw("formatted", "The full name, formatted for display."),
                rw("familyName", "The family name of the User."),
                rw("givenName", "The given name of the User."),
                rw("middleName", "The middle name(s) of the User."),
                rw("honorificPrefix", "The honorific prefix(es) of the User."),
                rw("honorificSuffix", "The honorific suffix(es) of the User."),
            ),
        ),
        rw("displayName", "The name of the User, suitable for display to end-users."),
        rw("nickName", "The casual way to address the user in real life."),
        rw(
            "profileUrl",
            "A fully qualified URL pointing to the User's profile.",
            "reference",
            reference_types=("external",),
        ),
        rw("title", 'The user\'s title, such as "Vice President".'),
        rw("userType", "The relationship between the organization and the user."),
        rw("preferredLanguage", "The User's preferred written or spoken language."),
        rw("locale", "The User's default location for localization."),
        rw("timezone", 'The User\'s time zone in the "Olson" time zone database format.'),
        rw("active", "A Boolean value indicating the User's administrative status.", "boolean"),
        # RFC 7643 §4.1.1: writeOnly and never returned. sso_gate never stores it (see
        # validate_resource); the type is still declared so clients can discover it.
        rw("password", "The User's cleartext password.", mutability="writeOnly", returned="never"),
        _plural("emails", "Email addresses for the user.", ("work", "home", "other")),
        _plural(
            "phoneNumbers",
            "Phone numbers for the User.",
            ("work", "home", "mobile", "fax", "pager", "other"),
        ),
        _plural(
            "ims",
            "Instant messaging addresses for the User.",
            ("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
        ),
        _plural(
            "photos",
            "URLs of photos of the User.",
            ("photo", "thumbnail"),
            "reference",
            reference_types=("external",),
        ),
        Attribute(
            "addresses",
            "complex",
            multi_valued=True,
            description="A physical mailing address for this User.",
            sub_attributes=(
                rw("formatted", "The full mailing address, formatted for display."),
                rw("streetAddress", "The full street address component."),
                rw("locality", "The city or locality component."),
                rw("region", "The state or region component."),
                rw("postalCode", "The zip code or postal code component."),
                rw("country", "The country name component."),
                rw(
                    "type",
                    "A label indicating the attribute's function.",
                    canonical_values=("work", "home", "other"),
                ),
                rw("primary", "Whether this is the preferred mailing address.", "boolean"),
            ),
        ),
        ro(
            "groups",
            "A list of groups to which the user belongs; managed through the Group resource.",
            "complex",
            multi_valued=True,
            sub_attributes=(
                ro("value", "The identifier of the User's group."),
                ro(
                    "$ref",
                    "The URI of the corresponding Group resource.",
                    "reference",
                    reference_types=_REF_USER_GROUP,
                ),
                ro("display", "A human-readable name, primarily used for display purposes."),
                ro(
                    "type",
                    "Whether the membership is direct or indirect.",
                    canonical_values=("direct", "indirect"),
                ),
            ),
        ),
        _plural("entitlements", "A list of entitlements for the User."),
        _plural("roles", "A list of roles for the User."),
        _plural(
            "x509Certificates",
            "A list of certificates issued to the User.",
            (),
            "binary",
            "The value of an X.509 certificate (base64 DER).",
        ),
    ),
)

ENTERPRISE_USER = ResourceSchema(
    ENTERPRISE_USER_SCHEMA,
    "EnterpriseUser",
    "Enterprise User",
    (
        rw("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
        rw("costCenter", "Identifies the name of a cost center."),
        rw("organization", "Identifies the name of an organization."),
        rw("division", "Identifies the name of a division."),
        rw("department", "Identifies the name of a department."),
        rw(
            "manager",
            "The User's manager.",
            "complex",
            sub_attributes=(
                rw("value", "The id of the SCIM resource representing the User's manager."),
                rw(
                    "$ref",
                    "The URI of the SCIM resource representing the User's manager.",
                    "reference",
                    reference_types=("User",),
                ),
                ro("displayName", "The displayName of the User's manager."),
            ),
        ),
    ),
)

GROUP = ResourceSchema(
    GROUP_SCHEMA,
    "Group",
    "Group",
    (
        rw("displayName", "A human-readable name for the Group. REQUIRED.", required=True),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            description="A list of members of the Group.",
            sub_attributes=(
                rw("value", "Identifier of the member of this Group.", mutability="immutable"),
                rw(
                    "$ref",
                    "The URI corresponding to a SCIM resource that is a member.",
                    "reference",
                    reference_types=_REF_USER_GROUP,
                    mutability="immutable",
                ),
                # Derived from the member resource; what a client sends is ignored. Not in RFC
                # 7643 §8.7.1's Group schema, so returned only on request (RFC 7643 §7): a PATCH
                # or PUT then returns the members exactly as the client wrote them.
                ro("display", "A human-readable name for the member.", returned="request"),
                rw(
                    "type",
                    "The type of the member resource.",
                    mutability="immutable",
                    canonical_values=_REF_USER_GROUP,
                ),
            ),
        ),
    ),
)

USER_TYPE = ResourceType("User", "/Users", USER, ((ENTERPRISE_USER, False),))
GROUP_TYPE = ResourceType("Group", "/Groups", GROUP)


# --- POST / PUT -------------------------------------------------------------------------------


def _syntax(detail: str) -> SCIMError:
    return SCIMError(detail, scim_type="invalidSyntax")


def validate_resource(
    rtype: ResourceType, data: Any, *, existing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Check a POST (``existing`` None) or PUT body and return the resource to store.

    The result has canonical attribute names, booleans normalized, nulls and empty values
    dropped (RFC 7643 §2.5), and no ``id``/``meta``: the server sets those. Decisions where
    RFC 7644 §3.3 leaves room:

    * readOnly attributes (id, meta, groups, manager.displayName, members.display) are ignored
      (RFC 7644 §3.5.1), so Okta's ``"groups": []`` and Entra's ``"meta": {...}`` pass.
    * ``password`` (writeOnly) is type-checked, then dropped: sso_gate authenticates through
      the IdP, so storing a password would only create a secret to leak.
    * An unknown top-level name that is not a URI is ``invalidSyntax`` (a typo would otherwise
      lose data silently). A URI-keyed object that is not one of the resource type's schemas is
      a custom extension (Okta and Entra custom attributes): it is preserved verbatim and its
      URN added to ``schemas``. Unknown URIs in ``schemas`` (Entra lists
      ``http://schemas.microsoft.com/.../ADSCIM/2.0/Group``) are kept as given.
    * Extension data for a known extension whose URN is missing from ``schemas`` is accepted
      and the URN added, rather than rejected.
    * immutable attributes must equal the stored value when one exists (RFC 7644 §3.5.1); one
      omitted from a PUT keeps its stored value.
    """
    if not isinstance(data, dict):
        raise _syntax(f"a {rtype.name} must be a JSON object")
    schemas = _schemas_of(rtype, data)
    out: dict[str, Any] = {"schemas": schemas}
    seen: set[str] = set()
    for key, value in data.items():
        lower = key.lower()
        if lower == "schemas":
            continue
        if lower in seen:
            raise _syntax(f"attribute '{key}' is given twice")
        seen.add(lower)
        attr = rtype.schema.attr(key) or common_attribute(lower)
        if attr is not None:
            if attr.mutability == "readOnly":
                continue
            norm = normalize_value(attr, value, attr.name)
            if norm is not None and attr.mutability != "writeOnly":
                out[attr.name] = norm
            continue
        ext = rtype.schema_for(key) if is_uri(key) else None
        if ext is not None:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _syntax(f"'{ext.id}' must be a JSON object")
            ext_out = _extension(ext, value)
            if ext_out:
                out[ext.id] = ext_out
                _add_schema(schemas, ext.id)
        elif is_uri(key):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _syntax(f"extension '{key}' must be a JSON object")
            out[key] = clone(value)
            _add_schema(schemas, key)
        else:
            raise _syntax(f"unknown attribute '{key}' for {rtype.name}")
    if existing is not None:
        _check_immutable(rtype, out, existing)
    check_required(rtype, out)
    return out


def _schemas_of(rtype: ResourceType, data: dict[str, Any]) -> list[str]:
    raw = next((v for k, v in data.items() if k.lower() == "schemas"), None)
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise _syntax("'schemas' must be a non-empty array of schema URIs (RFC 7643 §3)")
    schemas: list[str] = []
    for urn in raw:
        known = rtype.schema_for(urn)
        _add_schema(schemas, known.id if known else urn)
    if schemas[0] != rtype.schema.id and rtype.schema.id not in schemas:
        raise SCIMError(
            f"'schemas' must include {rtype.schema.id} for a {rtype.name}",
            scim_type="invalidValue",
        )
    return schemas


def _add_schema(schemas: list[str], urn: str) -> None:
    lower = urn.lower()
    if all(s.lower() != lower for s in schemas):
        schemas.append(urn)


def _extension(ext: ResourceSchema, value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key.lower() == "schemas":
            continue  # an extension object serialized with its own "schemas" (scim2-models)
        attr = ext.attr(key)
        if attr is None:
            raise _syntax(f"unknown attribute '{ext.id}:{key}'")
        if attr.mutability in ("readOnly", "writeOnly"):
            continue
        if attr.name in out:
            raise _syntax(f"attribute '{ext.id}:{attr.name}' is given twice")
        norm = normalize_value(attr, item, f"{ext.id}:{attr.name}")
        if norm is not None:
            out[attr.name] = norm
    return out


def _check_immutable(rtype: ResourceType, new: dict[str, Any], old: dict[str, Any]) -> None:
    containers: list[tuple[ResourceSchema, dict[str, Any], dict[str, Any]]] = [
        (rtype.schema, new, old)
    ]
    for ext, _ in rtype.extensions:
        old_ext = old.get(ext.id)
        if isinstance(old_ext, dict):
            containers.append((ext, new.setdefault(ext.id, {}), old_ext))
    for schema, new_c, old_c in containers:
        for attr in schema.attributes:
            _immutable(attr, new_c, old_c, attr.name)
    for ext, _ in rtype.extensions:
        if new.get(ext.id) == {}:
            del new[ext.id]


def _immutable(attr: Attribute, new: dict[str, Any], old: dict[str, Any], where: str) -> None:
    before = old.get(attr.name)
    if before is None:
        return
    if attr.mutability == "immutable":
        after = new.get(attr.name)
        if after is None:
            new[attr.name] = clone(before)
        elif after != before:
            raise SCIMError(f"'{where}' is immutable", scim_type="mutability")
    elif attr.type == "complex" and not attr.multi_valued and isinstance(before, dict):
        # Sub-attributes of multi-valued attributes are not compared element by element: a PUT
        # may legitimately add and remove whole values (e.g. group members).
        after = new.get(attr.name)
        if isinstance(after, dict) or any(s.mutability == "immutable" for s in attr.sub_attributes):
            target = after if isinstance(after, dict) else {}
            for sub in attr.sub_attributes:
                _immutable(sub, target, before, f"{where}.{sub.name}")
            if target and after is None:
                new[attr.name] = target


def check_required(rtype: ResourceType, resource: dict[str, Any]) -> None:
    """``invalidValue`` when a required attribute (userName, displayName) is unassigned."""
    for attr in rtype.schema.attributes:
        if attr.required and resource.get(attr.name) in (None, "", [], {}):
            raise SCIMError(f"'{attr.name}' is required", scim_type="invalidValue")
    for ext, required in rtype.extensions:
        if required and not resource.get(ext.id):
            raise SCIMError(f"extension '{ext.id}' is required", scim_type="invalidValue")
