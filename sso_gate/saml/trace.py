"""What a SAML response *says*, read without verifying it: for diagnostics only.

A test sign-in from the admin portal shows the IT admin a login trace (as SSOReady does): the
values the IdP sent — Issuer, Destination, Audience, Recipient, NameID, attributes, the
certificate its signature names — next to the values this connection expects. Nothing read here
decides anything; :func:`sso_gate.saml.response.verify_response` does, from signed content only.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from typing import Any

from sso_gate.exceptions import SSOGateError
from sso_gate.saml._xml import NS, parse_xml, qname, text_of
from sso_gate.saml.response import decode_saml_response

__all__ = ["ResponseTrace", "trace_response"]

_MAX_VALUES = 20


@dataclasses.dataclass(frozen=True, slots=True)
class ResponseTrace:
    """The unverified content of a SAMLResponse (every field may be missing)."""

    status: str | None = None
    in_response_to: str | None = None
    destination: str | None = None
    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    recipient: str | None = None
    name_id: str | None = None
    name_id_format: str | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    response_signed: bool = False
    assertion_signed: bool = False
    encrypted: bool = False
    certificate_sha256: str | None = None
    error: str | None = None  # why the response could not be read at all

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["audiences"] = list(self.audiences)
        data["attributes"] = [[name, list(values)] for name, values in self.attributes]
        return data


def _certificate_sha256(signature: Any) -> str | None:
    node = signature.find(".//ds:X509Certificate", NS) if signature is not None else None
    if node is None or not (node.text or "").strip():
        return None
    try:
        der = base64.b64decode("".join(node.text.split()), validate=True)
    except (ValueError, binascii.Error):
        return None
    return hashlib.sha256(der).hexdigest()


def trace_response(saml_response: str, max_bytes: int) -> ResponseTrace:
    """Read the response as sent. Never raises: an unreadable response gives ``error``."""
    try:
        raw = decode_saml_response(saml_response, max_bytes)
        root = parse_xml(raw, what="SAMLResponse", max_bytes=max_bytes)
    except SSOGateError as exc:
        return ResponseTrace(error=exc.message)
    status_el = root.find("samlp:Status/samlp:StatusCode", NS)
    assertion = root.find("saml:Assertion", NS)
    signature = root.find("ds:Signature", NS)
    fields: dict[str, Any] = {
        "status": status_el.get("Value") if status_el is not None else None,
        "in_response_to": root.get("InResponseTo"),
        "destination": root.get("Destination"),
        "issuer": text_of(root.find("saml:Issuer", NS)),
        "response_signed": signature is not None,
        "encrypted": root.find("saml:EncryptedAssertion", NS) is not None,
    }
    if assertion is not None:
        a_signature = assertion.find("ds:Signature", NS)
        signature = signature if signature is not None else a_signature
        name_id = assertion.find("saml:Subject/saml:NameID", NS)
        data = assertion.find(
            "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NS
        )
        attributes: dict[str, list[str]] = {}
        for attr in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NS):
            name = attr.get("Name")
            if name and len(attributes) < 100:
                values = [text_of(v) or "" for v in attr.findall("saml:AttributeValue", NS)]
                attributes.setdefault(name, []).extend(values[:_MAX_VALUES])
        fields.update(
            issuer=text_of(assertion.find("saml:Issuer", NS)) or fields["issuer"],
            audiences=tuple(
                text_of(x) or ""
                for x in assertion.iterfind(
                    "saml:Conditions/saml:AudienceRestriction/saml:Audience", NS
                )
            ),
            recipient=data.get("Recipient") if data is not None else None,
            in_response_to=(data.get("InResponseTo") if data is not None else None)
            or fields["in_response_to"],
            name_id=text_of(name_id),
            name_id_format=name_id.get("Format") if name_id is not None else None,
            attributes=tuple((k, tuple(v)) for k, v in attributes.items()),
            assertion_signed=a_signature is not None,
        )
    fields["certificate_sha256"] = _certificate_sha256(signature)
    if root.tag != qname("samlp", "Response"):
        fields["error"] = "this is not a samlp:Response"
    return ResponseTrace(**fields)
