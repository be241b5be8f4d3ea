"""IdP metadata in, SP metadata out (SAML Metadata §2.4)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sso_gate.exceptions import ValidationError
from sso_gate.saml._xml import NS, XMLError, parse_xml, qname, text_of

__all__ = [
    "BINDING_REDIRECT",
    "BINDING_POST",
    "IdPMetadata",
    "parse_idp_metadata",
    "load_certificate",
    "certificate_pem",
    "sp_metadata",
]

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MAX_METADATA = 2 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class IdPMetadata:
    entity_id: str
    sso_redirect_url: str | None
    sso_post_url: str | None
    slo_redirect_url: str | None
    signing_certificates: tuple[str, ...]  # PEM, expired ones dropped
    want_authn_requests_signed: bool
    name_id_formats: tuple[str, ...]
    dropped_expired: tuple[str, ...] = ()  # human-readable notes


def load_certificate(value: str, *, field: str = "certificates") -> x509.Certificate:
    """A certificate from PEM or bare base64 DER (as in metadata)."""
    raw = value.strip()
    try:
        if raw.startswith("-----BEGIN"):
            return x509.load_pem_x509_certificate(raw.encode())
        return x509.load_der_x509_certificate(base64.b64decode("".join(raw.split()), validate=True))
    except (ValueError, binascii.Error):
        raise ValidationError(
            "a signing certificate is not a valid X.509 certificate", field=field
        ) from None


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def parse_idp_metadata(
    xml: bytes | str, *, now: datetime, entity_id: str | None = None
) -> IdPMetadata:
    """Read an IdP's metadata; clear :class:`ValidationError` for anything unusable."""
    data = xml.encode() if isinstance(xml, str) else xml
    try:
        root = parse_xml(data, what="IdP metadata", max_bytes=MAX_METADATA)
    except XMLError as exc:
        raise ValidationError(exc.message, field="metadata_xml", code=exc.code) from None
    if root.tag == qname("md", "EntitiesDescriptor"):
        candidates = [
            e
            for e in root.iter(qname("md", "EntityDescriptor"))
            if e.find("md:IDPSSODescriptor", NS) is not None
            and (entity_id is None or e.get("entityID") == entity_id)
        ]
        if len(candidates) != 1:
            raise ValidationError(
                f"the metadata holds {len(candidates)} matching IdP entities; give entity_id "
                "to pick one",
                field="metadata_xml",
            )
        entity = candidates[0]
    elif root.tag == qname("md", "EntityDescriptor"):
        entity = root
    else:
        raise ValidationError(
            "this is not SAML metadata (expected md:EntityDescriptor)", field="metadata_xml"
        )
    eid = entity.get("entityID")
    if not eid:
        raise ValidationError("the metadata has no entityID", field="metadata_xml")
    idp = entity.find("md:IDPSSODescriptor", NS)
    if idp is None:
        raise ValidationError(
            "the metadata describes no identity provider (IDPSSODescriptor)", field="metadata_xml"
        )

    def location(tag: str, binding: str) -> str | None:
        for el in idp.findall(f"md:{tag}", NS):
            if el.get("Binding") == binding and el.get("Location"):
                return el.get("Location")
        return None

    certs: list[str] = []
    expired: list[str] = []
    for kd in idp.findall("md:KeyDescriptor", NS):
        if kd.get("use") not in (None, "signing"):
            continue
        for node in kd.iterfind(".//ds:X509Certificate", NS):
            cert = load_certificate(text_of(node) or "", field="metadata_xml")
            if cert.not_valid_after_utc <= now:
                expired.append(
                    f"certificate {cert.subject.rfc4514_string()} expired on "
                    f"{cert.not_valid_after_utc:%Y-%m-%d}"
                )
                continue
            pem = certificate_pem(cert)
            if pem not in certs:
                certs.append(pem)
    if not certs:
        raise ValidationError(
            "the metadata has no usable signing certificate"
            + (f" ({'; '.join(expired)})" if expired else ""),
            field="metadata_xml",
            code="no_signing_certificate" if not expired else "certificate_expired",
        )
    redirect = location("SingleSignOnService", BINDING_REDIRECT)
    post = location("SingleSignOnService", BINDING_POST)
    if not redirect and not post:
        raise ValidationError(
            "the metadata has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding",
            field="metadata_xml",
        )
    return IdPMetadata(
        entity_id=eid,
        sso_redirect_url=redirect,
        sso_post_url=post,
        slo_redirect_url=location("SingleLogoutService", BINDING_REDIRECT),
        signing_certificates=tuple(certs),
        want_authn_requests_signed=idp.get("WantAuthnRequestsSigned") in ("true", "1"),
        name_id_formats=tuple(text_of(n) or "" for n in idp.findall("md:NameIDFormat", NS)),
        dropped_expired=tuple(expired),
    )


def _bare(pem: str) -> str:
    return "".join(pem.strip().splitlines()[1:-1])


def sp_metadata(
    *,
    entity_id: str,
    acs_url: str,
    slo_url: str | None,
    certificate_pem_value: str | None,
    authn_requests_signed: bool,
) -> str:
    """The SP's metadata document for the IdP administrator (unsigned)."""
    keys = ""
    if certificate_pem_value:
        body = _bare(certificate_pem_value)
        for use in ("signing", "encryption"):
            keys += (
                f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
                f"{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            )
    slo = (
        f'<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location={quoteattr(slo_url)}/>'
        if slo_url
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(entity_id)}>'
        f'<md:SPSSODescriptor AuthnRequestsSigned="{str(authn_requests_signed).lower()}" '
        'WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys}{slo}"
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"
        f'<md:AssertionConsumerService Binding="{BINDING_POST}" Location={quoteattr(acs_url)} '
        'index="0" isDefault="true"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )
