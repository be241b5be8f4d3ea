"""The only caller of the XML-signature library (signxml: pure Python over lxml + cryptography,
so ``pip install`` alone gives working SAML — no ``xmlsec1`` binary, no libxmlsec ABI pairing).

:func:`verify_enveloped` checks that ``element`` carries its own enveloped signature as a
direct child, that the one reference points at ``element`` itself, that the algorithms are
allowed and that one of the pinned certificates verifies it. It returns the *signed* element
as re-parsed from the canonical bytes the signature covers: callers read identity data only from
that return value, which defeats signature wrapping.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from sso_gate.exceptions import TokenValidationError
from sso_gate.saml._xml import NS

__all__ = ["SignatureCheck", "verify_enveloped", "has_signature", "ALGORITHMS"]

STRONG_SIGNATURES = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
        SignatureMethod.SHA256_RSA_MGF1,
        SignatureMethod.SHA384_RSA_MGF1,
        SignatureMethod.SHA512_RSA_MGF1,
    }
)
STRONG_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_SHA1_SIG = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"
ALGORITHMS = {"signatures": STRONG_SIGNATURES, "digests": STRONG_DIGESTS}


@dataclasses.dataclass(frozen=True, slots=True)
class SignatureCheck:
    signed: etree._Element
    certificate_index: int


def has_signature(element: etree._Element) -> bool:
    return element.find(f"{{{NS['ds']}}}Signature") is not None


def _config(allow_sha1: bool) -> SignatureConfiguration:
    sigs = set(STRONG_SIGNATURES)
    digests = set(STRONG_DIGESTS)
    if allow_sha1:
        sigs.add(SignatureMethod.RSA_SHA1)
        digests.add(DigestAlgorithm.SHA1)
    return SignatureConfiguration(
        require_x509=True,
        location="./",  # the signature must be a direct child of the signed element
        expect_references=1,
        signature_methods=frozenset(sigs),
        digest_algorithms=frozenset(digests),
        ignore_ambiguous_key_info=True,  # KeyInfo is never trusted: only pinned certificates
    )


def _algorithm_error(element: etree._Element, allow_sha1: bool) -> TokenValidationError | None:
    sig = element.find(f"{{{NS['ds']}}}Signature")
    if sig is None:
        return None
    if allow_sha1:
        return None
    for tag, weak in (("SignatureMethod", _SHA1_SIG), ("DigestMethod", _SHA1_DIGEST)):
        for node in sig.iter(f"{{{NS['ds']}}}{tag}"):
            alg = node.get("Algorithm", "")
            if alg == weak or "md5" in alg.lower():
                return TokenValidationError(
                    f"the signature uses the weak algorithm {alg} (SHA-1/MD5 are refused)",
                    code="weak_algorithm",
                )
    return None


def verify_enveloped(
    element: etree._Element,
    certificates: tuple[x509.Certificate, ...],
    *,
    what: str,
    allow_sha1: bool = False,
) -> SignatureCheck:
    """Verify ``element``'s own enveloped signature against the pinned certificates."""
    weak = _algorithm_error(element, allow_sha1)
    if weak is not None:
        raise weak
    element_id = element.get("ID")
    if not element_id:
        raise TokenValidationError(f"the signed {what} has no ID attribute", code="missing_id")
    if not certificates:
        raise TokenValidationError(
            "the connection has no IdP signing certificate", code="no_certificate"
        )
    config = _config(allow_sha1)
    last: Exception | None = None
    for index, cert in enumerate(certificates):
        try:
            result = XMLVerifier().verify(
                element,
                x509_cert=cert,
                expect_config=config,
                id_attribute="ID",
            )
        except (InvalidSignature, InvalidDigest, InvalidCertificate) as exc:
            last = exc
            continue
        except (
            InvalidInput,
            etree.LxmlError,  # e.g. DocumentInvalid: a ds:Signature without SignedInfo
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
        ):
            # signxml raises assorted errors on structurally broken signatures (empty values,
            # missing elements, a signature its XML schema refuses): all of them mean "not a
            # valid signature", never a crash.
            raise TokenValidationError(
                f"the {what} signature is malformed", code="invalid_signature"
            ) from None
        assert not isinstance(result, list)
        signed = result.signed_xml
        if signed is None or signed.tag != element.tag or signed.get("ID") != element_id:
            # The reference must point at the element that carries the signature.
            raise TokenValidationError(
                f"the {what} signature does not cover the {what} itself", code="signature_wrapping"
            )
        return SignatureCheck(signed=signed, certificate_index=index)
    message = str(last) if last else "no certificate verified it"
    if "digest" in message.lower():
        code = "digest_mismatch"
    else:
        code = "invalid_signature"
    raise TokenValidationError(
        f"the {what} signature is not valid for this connection's IdP certificates "
        f"(expected a signature by SHA-256 {', '.join(_fingerprint(c) for c in certificates)}; "
        f"{_named_certificate(element)})",
        code=code,
    )


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()[:16] + "…"


def _named_certificate(element: etree._Element) -> str:
    """What the signature's own KeyInfo names (never trusted: only for the error message)."""
    node = element.find(f"{{{NS['ds']}}}Signature//{{{NS['ds']}}}X509Certificate")
    if node is None or not (node.text or "").strip():
        return "the signature names no certificate"
    try:
        der = base64.b64decode("".join((node.text or "").split()), validate=True)
        return f"it names SHA-256 {_fingerprint(x509.load_der_x509_certificate(der))}"
    except (ValueError, binascii.Error):
        return "it names an unreadable certificate"
