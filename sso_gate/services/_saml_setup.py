"""Building a SAML connection: the SP key pair, the IdP side from metadata (XML or URL) or from
fields, and certificate-expiry notices."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sso_gate._nul import refuse_nul
from sso_gate.exceptions import IdPUnavailableError, ValidationError
from sso_gate.saml.metadata import (
    IdPMetadata,
    certificate_pem,
    load_certificate,
    parse_idp_metadata,
)
from sso_gate.services._fetch import check_public_url, fetch
from sso_gate.services._runtime import Runtime

__all__ = [
    "generate_sp_keypair",
    "resolve_idp",
    "fetch_metadata",
    "expiring",
    "fingerprint",
    "RENEWAL_WINDOW_DAYS",
]

RENEWAL_WINDOW_DAYS = 30
MAX_METADATA_BYTES = 2 * 1024 * 1024


def generate_sp_keypair(common_name: str, now: dt.datetime) -> tuple[str, str]:
    """RSA-2048 key and a 10-year self-signed certificate (SP certificates are trust anchors by
    pinning, as in every SAML deployment; their validity period is informational)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, certificate_pem(cert)


def fingerprint(pem: str) -> str:
    der = load_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def expiring(pems: Sequence[str], now: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """(fingerprint, not_after) of certificates expiring within the renewal window."""
    out = []
    for pem in pems:
        cert = load_certificate(pem)
        if cert.not_valid_after_utc - now <= dt.timedelta(days=RENEWAL_WINDOW_DAYS):
            out.append((fingerprint(pem), cert.not_valid_after_utc))
    return out


async def fetch_metadata(rt: Runtime, url: str) -> bytes:
    if not rt.settings.allow_private_urls:
        await check_public_url(url, field="metadata_url")
    try:
        status, body = await fetch(
            rt.http,
            "GET",
            url,
            what="metadata",
            timeout=rt.settings.http_timeout,
            max_bytes=MAX_METADATA_BYTES,
            headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"},
        )
    except IdPUnavailableError as exc:
        raise ValidationError(
            f"the metadata URL could not be fetched: {exc.message}",
            field="metadata_url",
            code="metadata_unreachable",
        ) from None
    if status != 200:
        raise ValidationError(
            f"the metadata URL answered HTTP {status}",
            field="metadata_url",
            code="metadata_unreachable",
        )
    return body


async def resolve_idp(
    rt: Runtime,
    *,
    metadata_xml: str | None,
    metadata_url: str | None,
    idp_entity_id: str | None,
    sso_url: str | None,
    certificates: Sequence[str],
) -> IdPMetadata:
    """The IdP from exactly one source: metadata XML, a metadata URL, or fields."""
    refuse_nul(
        metadata_xml=metadata_xml,
        metadata_url=metadata_url,
        idp_entity_id=idp_entity_id,
        sso_url=sso_url,
        certificates=certificates,
    )
    now = rt.clock()
    sources = sum(1 for x in (metadata_xml, metadata_url, sso_url) if x)
    if sources != 1:
        raise ValidationError(
            "give exactly one of metadata_xml, metadata_url, or the fields "
            "(idp_entity_id, sso_url, certificates)",
            field="metadata_xml",
        )
    if metadata_url:
        if not metadata_url.startswith("https://") and not rt.settings.http_idp_allowed:
            raise ValidationError("metadata_url must use https", field="metadata_url")
        body = await fetch_metadata(rt, metadata_url)
        return parse_idp_metadata(body, now=now, entity_id=idp_entity_id)
    if metadata_xml:
        return parse_idp_metadata(metadata_xml, now=now, entity_id=idp_entity_id)
    if not idp_entity_id:
        raise ValidationError("idp_entity_id is required with sso_url", field="idp_entity_id")
    assert sso_url is not None
    if not sso_url.startswith("https://") and not rt.settings.http_idp_allowed:
        raise ValidationError("sso_url must use https", field="sso_url")
    if not certificates:
        raise ValidationError(
            "at least one IdP signing certificate is required", field="certificates"
        )
    pems = []
    for value in certificates:
        cert = load_certificate(value)
        if cert.not_valid_after_utc <= now:
            raise ValidationError(
                f"the certificate {cert.subject.rfc4514_string()} expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d}",
                field="certificates",
                code="certificate_expired",
            )
        pems.append(certificate_pem(cert))
    return IdPMetadata(
        entity_id=idp_entity_id,
        sso_redirect_url=sso_url,
        sso_post_url=sso_url,
        slo_redirect_url=None,
        signing_certificates=tuple(pems),
        want_authn_requests_signed=False,
        name_id_formats=(),
    )
