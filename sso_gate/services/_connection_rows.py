"""Stored connection rows to :class:`Connection` objects."""

from __future__ import annotations

from sso_gate._crypto import SecretBox
from sso_gate.models import Connection, OIDCConfig, SAMLConfig
from sso_gate.settings import Secret
from sso_gate.store import repositories as repo

__all__ = ["connection_from_row", "has_idp"]


def connection_from_row(row: repo.Row, box: SecretBox) -> Connection:
    """A stored connection row as a :class:`Connection` (secrets decrypted, kept in Secret)."""
    cfg = dict(row["config"] or {})
    oidc = None
    if "oidc" in cfg:
        o = cfg["oidc"]
        secret = ""
        if row["secret_ciphertext"]:
            secret = box.decrypt(row["secret_ciphertext"], associated=row["id"])
        oidc = OIDCConfig(
            issuer=o["issuer"],
            client_id=o["client_id"],
            client_secret=Secret(secret),
            scopes=tuple(o.get("scopes") or ("openid", "email", "profile")),
            token_endpoint_auth_method=o.get("token_endpoint_auth_method", "client_secret_basic"),
            allowed_algorithms=tuple(o.get("allowed_algorithms") or ("RS256",)),
            use_userinfo=bool(o.get("use_userinfo", False)),
            additional_trusted_audiences=tuple(o.get("additional_trusted_audiences") or ()),
            require_email_domain_match=bool(o.get("require_email_domain_match", True)),
        )
    saml = None
    if "saml" in cfg:
        c = cfg["saml"]
        key = box.decrypt(row["secret_ciphertext"], associated=row["id"])
        saml = SAMLConfig(
            idp_entity_id=c["idp_entity_id"],
            sso_url=c["sso_url"],
            sso_binding=c.get("sso_binding", "redirect"),
            idp_certificates=tuple(c["idp_certificates"]),
            sp_entity_id=c["sp_entity_id"],
            sp_certificate=c["sp_certificate"],
            sp_private_key=Secret(key),
            slo_url=c.get("slo_url"),
            metadata_url=c.get("metadata_url"),
            metadata_refreshed_at=c.get("metadata_refreshed_at"),
            sign_requests=bool(c.get("sign_requests")),
            encrypt_assertions=bool(c.get("encrypt_assertions")),
            allow_idp_initiated=bool(c.get("allow_idp_initiated")),
            idp_initiated_landing=c.get("idp_initiated_landing", "/"),
            attribute_preset=c.get("attribute_preset", "generic"),
            attribute_overrides=tuple(sorted((c.get("attribute_overrides") or {}).items())),
            custom_attributes=tuple(sorted((c.get("custom_attributes") or {}).items())),
            allow_sha1=bool(c.get("allow_sha1")),
            require_email_domain_match=bool(c.get("require_email_domain_match", True)),
            notified_certificates=tuple(c.get("notified_certificates") or ()),
        )
    return Connection(
        id=row["id"],
        organization_id=row["organization_id"],
        connection_type=row["connection_type"],
        name=row["name"],
        state=row["state"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        oidc=oidc,
        saml=saml,
    )


def has_idp(c: Connection) -> bool:
    """False for a draft whose identity provider was not given yet."""
    if c.saml is not None:
        return bool(c.saml.idp_certificates)
    return c.oidc is not None and bool(c.oidc.issuer)
