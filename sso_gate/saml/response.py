"""SAML Response verification (SAML Core §2–3, Profiles §4.1.4): every relying-party check.

:func:`verify_response` takes the raw ``SAMLResponse`` form value and what the connection expects,
and returns a :class:`VerifiedAssertion` read **only from signed content**, or raises
:class:`~sso_gate.exceptions.TokenValidationError` / :class:`SAMLStatusError` with a specific
``code``. The clock comes in as ``now`` (sans-I/O); the replay cache is the caller's.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from sso_gate.exceptions import IdPError, TokenValidationError
from sso_gate.saml._xml import NS, parse_xml, qname, text_of
from sso_gate.saml._xmlsig import has_signature, verify_enveloped
from sso_gate.saml.encryption import decrypt_assertion

__all__ = [
    "ResponseExpectations",
    "VerifiedAssertion",
    "SAMLStatusError",
    "verify_response",
    "decode_saml_response",
    "parse_instant",
    "SUCCESS",
]

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"


class SAMLStatusError(IdPError):
    """The IdP answered with a non-Success status."""

    code = "saml_status_error"


@dataclasses.dataclass(frozen=True, slots=True)
class ResponseExpectations:
    idp_entity_id: str
    sp_entity_id: str
    acs_url: str
    certificates: tuple[x509.Certificate, ...]
    now: datetime
    skew: int = 120
    # None: unsolicited (IdP-initiated) response expected; else the AuthnRequest IDs we accept.
    in_response_to: str | None = None
    allow_unsolicited: bool = False
    allow_sha1: bool = False
    decryption_key: PrivateKeyTypes | None = None
    require_encryption: bool = False
    max_bytes: int = 256 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    assertion_id: str
    response_id: str | None
    issuer: str
    name_id: str
    name_id_format: str | None
    session_index: str | None
    in_response_to: str | None
    attributes: dict[str, list[str]]
    not_on_or_after: datetime
    authn_instant: datetime | None
    certificate_index: int


def decode_saml_response(value: str, max_bytes: int) -> bytes:
    """Strict base64 of the HTTP-POST binding (SAML Bindings §3.5.4), size-limited."""
    if not isinstance(value, str) or not value:
        raise TokenValidationError("the form has no SAMLResponse", code="missing_saml_response")
    if len(value) > max_bytes * 4 // 3 + 8:
        raise TokenValidationError(
            f"SAMLResponse is larger than {max_bytes} bytes", code="response_too_large"
        )
    compact = "".join(value.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise TokenValidationError(
            "SAMLResponse is not valid base64", code="malformed_base64"
        ) from None


def parse_instant(value: str | None, what: str) -> datetime | None:
    """xs:dateTime in UTC (SAML Core §1.3.3)."""
    if value is None:
        return None
    raw = value.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise TokenValidationError(
            f"{what} {value!r} is not a valid time", code="malformed_time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _too_early(bound: datetime, now: datetime, skew: int, what: str) -> TokenValidationError:
    delta = int((bound - now).total_seconds())
    return TokenValidationError(
        f"{what} is {delta} s in the future (skew allowed {skew} s)", code="assertion_not_yet_valid"
    )


def _too_late(bound: datetime, now: datetime, skew: int, what: str) -> TokenValidationError:
    delta = int((now - bound).total_seconds())
    return TokenValidationError(
        f"{what} passed {delta} s ago (skew allowed {skew} s)", code="assertion_expired"
    )


def _status(root: etree._Element) -> None:
    code_el = root.find("samlp:Status/samlp:StatusCode", NS)
    value = code_el.get("Value") if code_el is not None else None
    if value == SUCCESS:
        return
    codes = []
    node = code_el
    while node is not None:
        if node.get("Value"):
            codes.append(node.get("Value", ""))
        node = node.find("samlp:StatusCode", NS)
    message = text_of(root.find("samlp:Status/samlp:StatusMessage", NS)) or ""
    shown = " / ".join(c.rsplit(":", 1)[-1] for c in codes) or "no status"
    raise SAMLStatusError(
        f"the identity provider refused the sign-in: {shown}"
        + (f" ({message[:200]})" if message else ""),
        code="saml_status_error",
    )


def verify_response(saml_response: str, exp: ResponseExpectations) -> VerifiedAssertion:
    raw = decode_saml_response(saml_response, exp.max_bytes)
    root = parse_xml(raw, what="SAMLResponse", max_bytes=exp.max_bytes)
    if root.tag != qname("samlp", "Response"):
        raise TokenValidationError(
            f"expected a samlp:Response, got {etree.QName(root).localname!r}", code="wrong_root"
        )
    if root.get("Version") != "2.0":
        raise TokenValidationError("SAML response Version must be 2.0", code="wrong_version")

    # Count assertions anywhere in the document: exactly one, in its expected place. Wrapping
    # attacks hide a second (signed) assertion in Extensions, ds:Object or another assertion.
    plain = root.findall(".//saml:Assertion", NS)
    encrypted = root.findall(".//saml:EncryptedAssertion", NS)
    _status(root)
    if len(plain) + len(encrypted) != 1:
        raise TokenValidationError(
            f"the response must hold exactly one assertion, found {len(plain) + len(encrypted)}",
            code="assertion_count",
        )
    holder = plain[0] if plain else encrypted[0]
    if holder.getparent() is not root:
        raise TokenValidationError(
            "the assertion is not a direct child of the response", code="signature_wrapping"
        )

    cert_index = -1
    response_signed = has_signature(root)
    if response_signed:
        check = verify_enveloped(root, exp.certificates, what="response", allow_sha1=exp.allow_sha1)
        cert_index = check.certificate_index
        root = check.signed  # from here on only the signed bytes
        holder = (root.findall("saml:Assertion", NS) + root.findall("saml:EncryptedAssertion", NS))[
            0
        ]

    _check_response_envelope(root, exp, response_signed)

    if holder.tag == qname("saml", "EncryptedAssertion"):
        if exp.decryption_key is None:
            raise TokenValidationError(
                "the assertion is encrypted but this connection has no decryption key",
                code="unexpected_encryption",
            )
        assertion = decrypt_assertion(holder, exp.decryption_key, max_bytes=exp.max_bytes)
    else:
        if exp.require_encryption:
            raise TokenValidationError(
                "this connection requires encrypted assertions", code="encryption_required"
            )
        # Standalone copy: its own enveloped signature is verified in isolation.
        assertion = parse_xml(etree.tostring(holder), what="assertion", max_bytes=exp.max_bytes)

    if has_signature(assertion):
        check = verify_enveloped(
            assertion, exp.certificates, what="assertion", allow_sha1=exp.allow_sha1
        )
        cert_index = check.certificate_index
        assertion = check.signed
    elif not response_signed:
        raise TokenValidationError(
            "neither the response nor the assertion is signed", code="unsigned"
        )
    result = _check_assertion(assertion, exp, root)
    return dataclasses.replace(result, certificate_index=cert_index)


def _check_response_envelope(root: etree._Element, exp: ResponseExpectations, signed: bool) -> None:
    destination = root.get("Destination")
    if destination is None:
        if signed:
            raise TokenValidationError(
                "a signed response must carry a Destination (SAML Bindings §3.5.5.2)",
                code="missing_destination",
            )
    elif destination != exp.acs_url:
        raise TokenValidationError(
            f"response Destination {destination!r} is not this connection's ACS URL "
            f"{exp.acs_url!r}",
            code="wrong_destination",
        )
    issuer = root.find("saml:Issuer", NS)
    if issuer is not None and text_of(issuer) != exp.idp_entity_id:
        raise TokenValidationError(
            f"response Issuer {text_of(issuer)!r} is not this connection's IdP "
            f"{exp.idp_entity_id!r}",
            code="wrong_issuer",
        )


def _check_assertion(
    a: etree._Element, exp: ResponseExpectations, response: etree._Element
) -> VerifiedAssertion:
    now, skew = exp.now, exp.skew
    if a.tag != qname("saml", "Assertion"):
        raise TokenValidationError("the signed element is not an assertion", code="wrong_root")
    assertion_id = a.get("ID")
    if not assertion_id:
        raise TokenValidationError("the assertion has no ID", code="missing_id")
    issuer = text_of(a.find("saml:Issuer", NS))
    if issuer != exp.idp_entity_id:
        raise TokenValidationError(
            f"assertion Issuer {issuer!r} is not this connection's IdP {exp.idp_entity_id!r}",
            code="wrong_issuer",
        )

    # Subject and its bearer confirmation (Profiles §4.1.4.2).
    subject = a.find("saml:Subject", NS)
    name_id_el = subject.find("saml:NameID", NS) if subject is not None else None
    name_id = text_of(name_id_el)
    if not name_id:
        raise TokenValidationError("the assertion has no Subject NameID", code="missing_name_id")
    confirmations = subject.findall("saml:SubjectConfirmation", NS) if subject is not None else []
    bearer = [c for c in confirmations if c.get("Method") == BEARER]
    if not bearer:
        raise TokenValidationError(
            "the assertion has no bearer SubjectConfirmation", code="missing_confirmation"
        )
    problems: list[TokenValidationError] = []
    in_response_to: str | None = None
    valid_confirmation = None
    for c in bearer:
        data = c.find("saml:SubjectConfirmationData", NS)
        try:
            if data is None:
                raise TokenValidationError(
                    "SubjectConfirmationData is missing", code="missing_confirmation"
                )
            recipient = data.get("Recipient")
            if recipient != exp.acs_url:
                raise TokenValidationError(
                    f"SubjectConfirmationData Recipient {recipient!r} is not this connection's "
                    f"ACS URL {exp.acs_url!r}",
                    code="wrong_recipient",
                )
            nooa = parse_instant(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")
            if nooa is None:
                raise TokenValidationError(
                    "SubjectConfirmationData has no NotOnOrAfter", code="missing_not_on_or_after"
                )
            if (now - nooa).total_seconds() >= skew:
                raise _too_late(nooa, now, skew, "SubjectConfirmationData NotOnOrAfter")
            nb = parse_instant(data.get("NotBefore"), "SubjectConfirmationData NotBefore")
            if nb is not None and (nb - now).total_seconds() > skew:
                raise _too_early(nb, now, skew, "SubjectConfirmationData NotBefore")
            in_response_to = data.get("InResponseTo")
            valid_confirmation = data
            break
        except TokenValidationError as exc:
            problems.append(exc)
    if valid_confirmation is None:
        raise problems[0]

    # InResponseTo: on the confirmation data and/or the response; must match our request.
    response_irt = response.get("InResponseTo")
    irts = {x for x in (in_response_to, response_irt) if x is not None}
    if len(irts) > 1:
        raise TokenValidationError("InResponseTo values disagree", code="in_response_to_mismatch")
    irt = next(iter(irts), None)
    if exp.in_response_to is None:
        if irt is not None:
            raise TokenValidationError(
                "this response answers a request that was not started here (or already used)",
                code="unknown_in_response_to",
            )
        if not exp.allow_unsolicited:
            raise TokenValidationError(
                "unsolicited (IdP-initiated) responses are not enabled for this connection",
                code="unsolicited_response",
            )
    elif irt != exp.in_response_to:
        raise TokenValidationError(
            f"InResponseTo {irt!r} does not match the request started in this sign-in",
            code="in_response_to_mismatch",
        )

    # Conditions (Core §2.5): time window and audience.
    conditions = a.find("saml:Conditions", NS)
    if conditions is None:
        raise TokenValidationError("the assertion has no Conditions", code="missing_conditions")
    nb = parse_instant(conditions.get("NotBefore"), "Conditions NotBefore")
    if nb is not None and (nb - now).total_seconds() > skew:
        raise _too_early(nb, now, skew, "Conditions NotBefore")
    nooa_cond = parse_instant(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter")
    if nooa_cond is not None and (now - nooa_cond).total_seconds() >= skew:
        raise _too_late(nooa_cond, now, skew, "Conditions NotOnOrAfter")
    restrictions = conditions.findall("saml:AudienceRestriction", NS)
    if not restrictions:
        raise TokenValidationError(
            "the assertion has no AudienceRestriction", code="missing_audience"
        )
    for r in restrictions:
        audiences = [text_of(x) for x in r.findall("saml:Audience", NS)]
        if exp.sp_entity_id not in audiences:
            raise TokenValidationError(
                f"Audience {audiences!r} does not include this SP {exp.sp_entity_id!r}",
                code="wrong_audience",
            )

    authn = a.find("saml:AuthnStatement", NS)
    session_index = authn.get("SessionIndex") if authn is not None else None
    authn_instant = (
        parse_instant(authn.get("AuthnInstant"), "AuthnInstant") if authn is not None else None
    )
    attributes: dict[str, list[str]] = {}
    for attr in a.iterfind("saml:AttributeStatement/saml:Attribute", NS):
        name = attr.get("Name")
        if not name:
            continue
        values = [text_of(v) or "" for v in attr.findall("saml:AttributeValue", NS)]
        attributes.setdefault(name, []).extend(values)
        friendly = attr.get("FriendlyName")
        if friendly and friendly != name:
            attributes.setdefault(friendly, []).extend(values)

    confirmation_end = parse_instant(valid_confirmation.get("NotOnOrAfter"), "NotOnOrAfter")
    assert confirmation_end is not None
    ends = [confirmation_end] + ([nooa_cond] if nooa_cond else [])
    return VerifiedAssertion(
        assertion_id=assertion_id,
        response_id=response.get("ID"),
        issuer=issuer,
        name_id=name_id,
        name_id_format=name_id_el.get("Format") if name_id_el is not None else None,
        session_index=session_index,
        in_response_to=irt,
        attributes=attributes,
        not_on_or_after=max(ends),
        authn_instant=authn_instant,
        certificate_index=-1,
    )
