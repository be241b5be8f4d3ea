"""AuthnRequest and LogoutRequest (SAML Core §3.4, §3.7) in the HTTP-Redirect and HTTP-POST
bindings (SAML Bindings §3.4, §3.5), optionally signed with the connection's SP key."""

from __future__ import annotations

import base64
import dataclasses
import secrets
import zlib
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlencode
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "RSA_SHA256",
    "OutgoingRequest",
    "new_request_id",
    "authn_request_xml",
    "logout_request_xml",
    "redirect_url",
    "post_form",
]

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclasses.dataclass(frozen=True, slots=True)
class OutgoingRequest:
    id: str
    xml: str


def new_request_id() -> str:
    # xs:ID must not start with a digit.
    return "_" + secrets.token_hex(20)


def _instant(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def authn_request_xml(
    *, sp_entity_id: str, acs_url: str, destination: str, now: datetime, force_authn: bool = False
) -> OutgoingRequest:
    rid = new_request_id()
    force = ' ForceAuthn="true"' if force_authn else ""
    xml = (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{rid}" Version="2.0" IssueInstant="{_instant(now)}" '
        f"Destination={quoteattr(destination)} AssertionConsumerServiceURL={quoteattr(acs_url)} "
        f'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"{force}>'
        f"<saml:Issuer>{xml_escape(sp_entity_id)}</saml:Issuer>"
        '<samlp:NameIDPolicy AllowCreate="true"/>'
        "</samlp:AuthnRequest>"
    )
    return OutgoingRequest(rid, xml)


def logout_request_xml(
    *,
    sp_entity_id: str,
    destination: str,
    name_id: str,
    name_id_format: str | None,
    session_index: str | None,
    now: datetime,
) -> OutgoingRequest:
    rid = new_request_id()
    fmt = f" Format={quoteattr(name_id_format)}" if name_id_format else ""
    index = (
        f"<samlp:SessionIndex>{xml_escape(session_index)}</samlp:SessionIndex>"
        if session_index
        else ""
    )
    xml = (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="{rid}" Version="2.0" IssueInstant="{_instant(now)}" '
        f"Destination={quoteattr(destination)}>"
        f"<saml:Issuer>{xml_escape(sp_entity_id)}</saml:Issuer>"
        f"<saml:NameID{fmt}>{xml_escape(name_id)}</saml:NameID>{index}"
        "</samlp:LogoutRequest>"
    )
    return OutgoingRequest(rid, xml)


def redirect_url(
    endpoint: str,
    xml: str,
    *,
    relay_state: str | None,
    key: rsa.RSAPrivateKey | None,
    param: str = "SAMLRequest",
) -> str:
    """HTTP-Redirect binding: raw DEFLATE, base64, and (when ``key``) a query-string signature over
    ``SAMLRequest=…&RelayState=…&SigAlg=…`` in exactly that order (Bindings §3.4.4.1)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(deflater.compress(xml.encode()) + deflater.flush()).decode()
    pairs = [(param, encoded)]
    if relay_state is not None:
        pairs.append(("RelayState", relay_state))
    if key is not None:
        pairs.append(("SigAlg", RSA_SHA256))
        signed = urlencode(pairs).encode()
        signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        pairs.append(("Signature", base64.b64encode(signature).decode()))
    sep = "&" if "?" in endpoint else "?"
    return endpoint + sep + urlencode(pairs)


def post_form(
    endpoint: str, xml: str, *, relay_state: str | None, param: str = "SAMLRequest"
) -> str:
    """HTTP-POST binding: an auto-submitting form (works without JavaScript via the button)."""
    value = base64.b64encode(xml.encode()).decode()
    relay = (
        f'<input type="hidden" name="RelayState" value="{escape(relay_state)}">'
        if relay_state
        else ""
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Signing in…</title></head>'
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{escape(endpoint)}">'
        f'<input type="hidden" name="{param}" value="{value}">{relay}'
        '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
    )
