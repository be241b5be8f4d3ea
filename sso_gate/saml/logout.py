"""Single Logout over the HTTP-Redirect binding (SAML Core §3.7, Bindings §3.4.4.1).

Incoming messages arrive as raw query strings: the signature covers the parameters exactly as
URL-encoded by the sender, so they are taken from the raw query, never re-encoded.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import zlib
from datetime import UTC, datetime
from urllib.parse import unquote_plus
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from sso_gate.exceptions import TokenValidationError
from sso_gate.saml._xml import NS, parse_xml, qname, text_of
from sso_gate.saml.request import new_request_id

__all__ = [
    "RedirectMessage",
    "parse_redirect",
    "verify_redirect_signature",
    "LogoutRequest",
    "parse_logout_request",
    "logout_response_xml",
    "parse_logout_response",
]

_SIG_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": hashes.SHA512,
}
_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
_MAX_INFLATED = 256 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class RedirectMessage:
    param: str  # SAMLRequest or SAMLResponse
    xml: bytes
    relay_state: str | None
    sig_alg: str | None
    signature: bytes | None
    signed_bytes: bytes


def parse_redirect(raw_query: bytes) -> RedirectMessage:
    """Split a redirect-binding query; inflate with a hard size limit (deflate bombs)."""
    raw: dict[str, str] = {}
    for part in raw_query.decode("ascii", "replace").split("&"):
        key, sep, value = part.partition("=")
        if sep and key in ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature"):
            if key in raw:
                raise TokenValidationError(f"duplicate {key} parameter", code="malformed_message")
            raw[key] = value
    param = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    if param not in raw:
        raise TokenValidationError(
            "no SAMLRequest or SAMLResponse parameter", code="malformed_message"
        )
    try:
        deflated = base64.b64decode(unquote_plus(raw[param]), validate=True)
        inflater = zlib.decompressobj(-15)
        xml = inflater.decompress(deflated, _MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise TokenValidationError(
                f"the message inflates beyond {_MAX_INFLATED} bytes", code="message_too_large"
            )
    except (binascii.Error, ValueError, zlib.error):
        raise TokenValidationError(
            f"{param} is not valid DEFLATE+base64", code="malformed_message"
        ) from None
    signed = f"{param}={raw[param]}"
    if "RelayState" in raw:
        signed += f"&RelayState={raw['RelayState']}"
    signature = None
    if "Signature" in raw:
        try:
            signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=True)
        except (binascii.Error, ValueError):
            raise TokenValidationError(
                "Signature is not valid base64", code="malformed_message"
            ) from None
        signed += f"&SigAlg={raw.get('SigAlg', '')}"
    return RedirectMessage(
        param=param,
        xml=xml,
        relay_state=unquote_plus(raw["RelayState"]) if "RelayState" in raw else None,
        sig_alg=unquote_plus(raw["SigAlg"]) if "SigAlg" in raw else None,
        signature=signature,
        signed_bytes=signed.encode(),
    )


def verify_redirect_signature(
    msg: RedirectMessage, certificates: tuple[x509.Certificate, ...], *, allow_sha1: bool = False
) -> None:
    if msg.signature is None or msg.sig_alg is None:
        raise TokenValidationError("the message is not signed", code="unsigned")
    if msg.sig_alg == _SHA1 and allow_sha1:
        digest: type[hashes.HashAlgorithm] = hashes.SHA1
    elif msg.sig_alg in _SIG_HASHES:
        digest = _SIG_HASHES[msg.sig_alg]
    else:
        raise TokenValidationError(
            f"signature algorithm {msg.sig_alg} is refused", code="weak_algorithm"
        )
    for cert in certificates:
        key = cert.public_key()
        try:
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(msg.signature, msg.signed_bytes, padding.PKCS1v15(), digest())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(msg.signature, msg.signed_bytes, ec.ECDSA(digest()))
            else:
                continue
            return
        except InvalidSignature:
            continue
    raise TokenValidationError(
        "the message signature is not valid for this connection's IdP certificates",
        code="invalid_signature",
    )


@dataclasses.dataclass(frozen=True, slots=True)
class LogoutRequest:
    id: str
    issuer: str | None
    name_id: str
    session_indexes: tuple[str, ...]
    destination: str | None
    not_on_or_after: str | None


def parse_logout_request(xml: bytes) -> LogoutRequest:
    root = parse_xml(xml, what="LogoutRequest", max_bytes=_MAX_INFLATED)
    if root.tag != qname("samlp", "LogoutRequest"):
        raise TokenValidationError("expected a samlp:LogoutRequest", code="wrong_root")
    name_id = text_of(root.find("saml:NameID", NS))
    if not name_id or not root.get("ID"):
        raise TokenValidationError(
            "LogoutRequest needs an ID and a NameID", code="malformed_message"
        )
    return LogoutRequest(
        id=root.get("ID", ""),
        issuer=text_of(root.find("saml:Issuer", NS)),
        name_id=name_id,
        session_indexes=tuple(text_of(s) or "" for s in root.findall("samlp:SessionIndex", NS)),
        destination=root.get("Destination"),
        not_on_or_after=root.get("NotOnOrAfter"),
    )


def parse_logout_response(xml: bytes) -> tuple[str | None, str, str | None]:
    """(InResponseTo, status code, issuer)."""
    root = parse_xml(xml, what="LogoutResponse", max_bytes=_MAX_INFLATED)
    if root.tag != qname("samlp", "LogoutResponse"):
        raise TokenValidationError("expected a samlp:LogoutResponse", code="wrong_root")
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    return (
        root.get("InResponseTo"),
        code.get("Value", "") if code is not None else "",
        text_of(root.find("saml:Issuer", NS)),
    )


def logout_response_xml(
    *, in_response_to: str, destination: str, issuer: str, now: datetime, success: bool = True
) -> str:
    status = "Success" if success else "Responder"
    return (
        '<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{new_request_id()}" Version="2.0" '
        f'IssueInstant="{now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}" '
        f"Destination={quoteattr(destination)} InResponseTo={quoteattr(in_response_to)}>"
        f"<saml:Issuer>{xml_escape(issuer)}</saml:Issuer>"
        f'<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:{status}"/>'
        "</samlp:Status></samlp:LogoutResponse>"
    )
