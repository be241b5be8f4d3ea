"""Build genuinely signed SAML responses (signxml) for tests, and bend them for attacks."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod
from signxml.signer import XMLSigner

IDP_ENTITY = "https://idp.example.test/metadata"
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0


def make_cert(
    cn: str = "Test IdP", days: int = 365, not_before_days: int = -1
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=not_before_days))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _LegacySigner(XMLSigner):
    """Lets tests produce SHA-1 signatures (as legacy ADFS does) to prove they are refused."""

    def check_deprecated_methods(self) -> None:
        pass


@dataclass
class FakeSamlIdP:
    entity_id: str = IDP_ENTITY
    key: rsa.RSAPrivateKey = field(default=None)  # type: ignore[assignment]
    cert: x509.Certificate = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.key is None:
            self.key, self.cert = make_cert()

    @property
    def cert_pem(self) -> str:
        return pem(self.cert)

    def metadata(
        self, sso_url: str = "https://idp.example.test/sso", certs: list[str] | None = None
    ) -> str:
        keys = "".join(
            f'<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{''.join(c.strip().splitlines()[1:-1])}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
            f"</md:KeyDescriptor>"
            for c in (certs or [self.cert_pem])
        )
        return (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{self.entity_id}">'
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f"{keys}"
            '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{sso_url.rsplit("/", 1)[0]}/slo"/>'
            "<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{sso_url}"/>'
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="{sso_url}"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )

    def assertion_xml(
        self,
        *,
        acs_url: str,
        audience: str,
        name_id: str = "alice@acme.test",
        in_response_to: str | None = None,
        issuer: str | None = None,
        recipient: str | None = None,
        now: dt.datetime | None = None,
        not_before: dt.datetime | None = None,
        not_on_or_after: dt.datetime | None = None,
        confirmation_not_on_or_after: dt.datetime | None = None,
        attributes: dict[str, list[str]] | None = None,
        assertion_id: str | None = None,
        name_id_raw: str | None = None,
        omit: set[str] | None = None,
    ) -> str:
        now = now or dt.datetime.now(dt.UTC)
        omit = omit or set()
        aid = assertion_id or "_a" + secrets.token_hex(16)
        irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
        attrs = (
            attributes
            if attributes is not None
            else {
                "email": [name_id],
                "firstName": ["Alice"],
                "lastName": ["Anderson"],
                "groups": ["Engineering", "Admins"],
            }
        )
        attr_xml = "".join(
            f'<saml:Attribute Name="{k}">'
            + "".join(f"<saml:AttributeValue>{v}</saml:AttributeValue>" for v in vals)
            + "</saml:Attribute>"
            for k, vals in attrs.items()
        )
        audience_xml = (
            ""
            if "audience" in omit
            else (
                f"<saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction>"
            )
        )
        conditions = (
            ""
            if "conditions" in omit
            else (
                f'<saml:Conditions NotBefore="{iso(not_before or now - dt.timedelta(seconds=30))}" '
                f'NotOnOrAfter="{iso(not_on_or_after or now + dt.timedelta(minutes=5))}">{audience_xml}</saml:Conditions>'
            )
        )
        recipient_attr = "" if "recipient" in omit else f' Recipient="{recipient or acs_url}"'
        return (
            '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
            f'ID="{aid}" Version="2.0" IssueInstant="{iso(now)}">'
            f"<saml:Issuer>{issuer or self.entity_id}</saml:Issuer>"
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"></ds:Signature>'
            "<saml:Subject>"
            '<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
            f"{name_id_raw if name_id_raw is not None else name_id}</saml:NameID>"
            '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f"<saml:SubjectConfirmationData{irt}{recipient_attr} "
            f'NotOnOrAfter="{iso(confirmation_not_on_or_after or now + dt.timedelta(minutes=5))}"/>'
            "</saml:SubjectConfirmation></saml:Subject>"
            f"{conditions}"
            f'<saml:AuthnStatement AuthnInstant="{iso(now)}" SessionIndex="_s{secrets.token_hex(8)}">'
            "<saml:AuthnContext><saml:AuthnContextClassRef>"
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
            f"<saml:AttributeStatement>{attr_xml}</saml:AttributeStatement>"
            "</saml:Assertion>"
        )

    def sign(
        self,
        xml: str | bytes | etree._Element,
        *,
        key: Any = None,
        cert: Any = None,
        algorithm: str = "rsa-sha256",
        digest: str = "sha256",
    ) -> etree._Element:
        element = (
            xml
            if isinstance(xml, etree._Element)
            else etree.fromstring(xml if isinstance(xml, bytes) else xml.encode())
        )
        signer = _LegacySigner(
            signature_algorithm=algorithm, digest_algorithm=digest, c14n_algorithm=EXC_C14N
        )
        return signer.sign(
            element, key=key or self.key, cert=[cert or self.cert], id_attribute="ID"
        )

    def response(
        self,
        assertion: str | etree._Element | None,
        *,
        acs_url: str,
        in_response_to: str | None = None,
        destination: str | None = None,
        issuer: str | None = None,
        status: str = "urn:oasis:names:tc:SAML:2.0:status:Success",
        sign_response: bool = False,
        omit_destination: bool = False,
    ) -> etree._Element:
        rid = "_r" + secrets.token_hex(16)
        irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
        dest = "" if omit_destination else f' Destination="{destination or acs_url}"'
        placeholder = (
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"></ds:Signature>'
            if sign_response
            else ""
        )
        xml = (
            '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
            f'ID="{rid}" Version="2.0" IssueInstant="{iso(dt.datetime.now(dt.UTC))}"{dest}{irt}>'
            f"<saml:Issuer>{issuer or self.entity_id}</saml:Issuer>{placeholder}"
            f'<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>'
            "</samlp:Response>"
        )
        root = etree.fromstring(xml.encode())
        if assertion is not None:
            a = (
                assertion
                if isinstance(assertion, etree._Element)
                else etree.fromstring(assertion.encode())
            )
            root.append(a)
        if sign_response:
            root = self.sign(root)
        return root

    def signed_assertion(self, **kw: Any) -> etree._Element:
        return self.sign(self.assertion_xml(**kw))


def encode(root: etree._Element | bytes | str) -> str:
    data = (
        root
        if isinstance(root, bytes)
        else root.encode()
        if isinstance(root, str)
        else etree.tostring(root)
    )
    return base64.b64encode(data).decode()


def strip_placeholder(xml: str) -> str:
    return xml.replace(
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"></ds:Signature>',
        "",
    )


def encrypt_assertion(
    assertion: etree._Element,
    sp_cert_pem: str,
    *,
    data_alg: str = "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    key_alg: str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
) -> etree._Element:
    """Wrap a (signed) assertion in an EncryptedAssertion for the SP's certificate."""
    import os as _os

    from cryptography.hazmat.primitives import padding as sym_padding
    from cryptography.hazmat.primitives.asymmetric import padding as asym
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cert = x509.load_pem_x509_certificate(sp_cert_pem.encode())
    plain = etree.tostring(assertion)
    if data_alg.endswith("gcm"):
        key = AESGCM.generate_key(256)
        nonce = _os.urandom(12)
        blob = nonce + AESGCM(key).encrypt(nonce, plain, None)
    else:
        key = _os.urandom(16 if "128" in data_alg else 32)
        iv = _os.urandom(16)
        padder = sym_padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        blob = iv + enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    public = cert.public_key()
    if key_alg.endswith("rsa-1_5"):
        wrapped = public.encrypt(key, asym.PKCS1v15())  # type: ignore[union-attr]
    else:
        wrapped = public.encrypt(  # type: ignore[union-attr]
            key, asym.OAEP(mgf=asym.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        )
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    xml = (
        '<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">'
        '<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
        'Type="http://www.w3.org/2001/04/xmlenc#Element">'
        f'<xenc:EncryptionMethod Algorithm="{data_alg}"/>'
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        f'<xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{key_alg}"/>'
        f"<xenc:CipherData><xenc:CipherValue>{b64(wrapped)}</xenc:CipherValue></xenc:CipherData>"
        "</xenc:EncryptedKey></ds:KeyInfo>"
        f"<xenc:CipherData><xenc:CipherValue>{b64(blob)}</xenc:CipherValue></xenc:CipherData>"
        "</xenc:EncryptedData></saml:EncryptedAssertion>"
    )
    return etree.fromstring(xml.encode())
