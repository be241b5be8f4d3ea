"""SAML half of the development IdP: metadata, SSO (HTTP-Redirect in, HTTP-POST out) with signed
assertions. Like the OIDC half it signs in whoever is picked; development only."""

from __future__ import annotations

import base64
import datetime as dt
import html
import secrets
import zlib
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod
from signxml.signer import XMLSigner
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from sso_gate.saml._xml import NS, parse_xml
from sso_gate.saml.metadata import certificate_pem
from sso_gate.saml.request import post_form

if TYPE_CHECKING:
    from sso_gate.devidp import DevIdP

__all__ = ["DevSamlIdP"]


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class DevSamlIdP:
    def __init__(self, parent: DevIdP, acs_prefix: str) -> None:
        self.parent = parent
        self.entity_id = parent.issuer + "/saml/metadata"
        self.sso_url = parent.issuer + "/saml/sso"
        self.acs_prefix = acs_prefix
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sso_gate dev IdP")])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )

    def routes(self) -> list[Route]:
        return [
            Route("/saml/metadata", self.metadata_endpoint),
            Route("/saml/sso", self.sso, methods=["GET"]),
            Route("/saml/sso", self.approve, methods=["POST"]),
        ]

    def metadata(self) -> str:
        body = "".join(certificate_pem(self.cert).strip().splitlines()[1:-1])
        return (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{self.entity_id}">'
            "<md:IDPSSODescriptor "
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f"{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{self.sso_url}"/></md:IDPSSODescriptor></md:EntityDescriptor>'
        )

    async def metadata_endpoint(self, request: Request) -> Response:
        return Response(self.metadata(), media_type="application/samlmetadata+xml")

    def _read_request(self, saml_request: str) -> etree._Element | None:
        try:
            raw = zlib.decompressobj(-15).decompress(base64.b64decode(saml_request), 256 * 1024)
            root = parse_xml(raw, what="AuthnRequest", max_bytes=256 * 1024)
        except Exception:
            return None
        acs = root.get("AssertionConsumerServiceURL", "")
        if root.tag != f"{{{NS['samlp']}}}AuthnRequest" or not acs.startswith(self.acs_prefix):
            return None
        return root

    async def sso(self, request: Request) -> Response:
        q = request.query_params
        if self._read_request(q.get("SAMLRequest", "")) is None:
            return HTMLResponse("<h1>Bad SAMLRequest</h1>", 400)
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""))}">'
            for k in ("SAMLRequest", "RelayState")
        )
        buttons = "".join(
            f'<li><button name="email" value="{html.escape(u.email)}">{html.escape(u.first_name)} '
            f"{html.escape(u.last_name)} &lt;{html.escape(u.email)}&gt;</button></li>"
            for u in self.parent.users
        )
        return HTMLResponse(
            f"""<!doctype html><html><head><meta charset="utf-8"><title>Dev IdP (SAML)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto}}</style></head>
<body><h1>sso_gate development IdP — SAML</h1><p>Not for production.</p>
<form method="post">{hidden}<ul>{buttons}</ul></form>
<form method="post">{hidden}<label>Or type an email
<input type="email" name="email" id="email" required></label>
<button type="submit" id="signin">Sign in</button></form></body></html>"""
        )

    async def approve(self, request: Request) -> Response:
        form = await request.form()
        req = self._read_request(str(form.get("SAMLRequest", "")))
        email = str(form.get("email", "")).strip()
        if req is None or "@" not in email:
            return HTMLResponse("<h1>Bad request</h1>", 400)
        acs = req.get("AssertionConsumerServiceURL", "")
        sp = (req.findtext("saml:Issuer", namespaces=NS) or "").strip()
        user = self.parent.user(email)
        now = dt.datetime.now(dt.UTC)
        aid, rid, rid_in = (
            "_" + secrets.token_hex(16),
            "_" + secrets.token_hex(16),
            req.get("ID", ""),
        )
        values = {
            "email": [user.email],
            "firstName": [user.first_name],
            "lastName": [user.last_name],
            "groups": list(user.groups),
        }
        attrs = "".join(
            f'<saml:Attribute Name="{k}">'
            + "".join(f"<saml:AttributeValue>{html.escape(v)}</saml:AttributeValue>" for v in vs)
            + "</saml:Attribute>"
            for k, vs in values.items()
        )
        assertion = (
            '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
            f'ID="{aid}" Version="2.0" IssueInstant="{_iso(now)}">'
            f"<saml:Issuer>{self.entity_id}</saml:Issuer>"
            '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
            '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:'
            f'emailAddress">{html.escape(user.email)}</saml:NameID>'
            '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData InResponseTo="{html.escape(rid_in)}" '
            f'Recipient="{html.escape(acs)}" NotOnOrAfter="{_iso(now + dt.timedelta(minutes=5))}"/>'
            "</saml:SubjectConfirmation></saml:Subject>"
            f'<saml:Conditions NotBefore="{_iso(now - dt.timedelta(seconds=30))}" '
            f'NotOnOrAfter="{_iso(now + dt.timedelta(minutes=5))}"><saml:AudienceRestriction>'
            f"<saml:Audience>{html.escape(sp)}</saml:Audience></saml:AudienceRestriction>"
            "</saml:Conditions>"
            f'<saml:AuthnStatement AuthnInstant="{_iso(now)}" '
            f'SessionIndex="_{secrets.token_hex(8)}">'
            "<saml:AuthnContext><saml:AuthnContextClassRef>"
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
            f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement></saml:Assertion>"
        )
        signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        signed = signer.sign(
            etree.fromstring(assertion.encode()), key=self.key, cert=[self.cert], id_attribute="ID"
        )
        response = (
            '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
            f'ID="{rid}" Version="2.0" IssueInstant="{_iso(now)}" Destination="{html.escape(acs)}" '
            f'InResponseTo="{html.escape(rid_in)}"><saml:Issuer>{self.entity_id}</saml:Issuer>'
            '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
            "</samlp:Status>" + etree.tostring(signed).decode() + "</samlp:Response>"
        )
        relay = str(form.get("RelayState", "")) or None
        page = post_form(acs, response, relay_state=relay, param="SAMLResponse")
        return HTMLResponse(page)
