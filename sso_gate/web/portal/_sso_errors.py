"""Plain-language explanations of the SSO errors an IT admin meets in the portal.

The services raise :class:`~sso_gate.exceptions.SSOGateError` with stable codes and technical
messages; the portal shows the sentence below first and the technical message underneath.
"""

from __future__ import annotations

import dataclasses

from sso_gate.exceptions import SSOGateError, ValidationError

__all__ = ["Explanation", "explain", "FRIENDLY"]


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    summary: str  # what went wrong, in plain language
    code: str
    technical: str  # the service's own message

    def to_dict(self) -> dict[str, str]:
        return {"summary": self.summary, "code": self.code, "technical": self.technical}


_DISCOVERY = (
    "The discovery document is not valid. Check the issuer: {idp} must publish an OpenID "
    "Connect discovery document at <issuer>/.well-known/openid-configuration whose “issuer” "
    "is exactly the issuer you entered."
)
_UNREACHABLE = (
    "We could not reach {idp}. Check the address and that it is reachable from the internet "
    "(not only from your office network)."
)
_SIGNATURE = (
    "The response is not signed with the certificate we have for {idp}. If {idp} has a new "
    "signing certificate, refresh the metadata or upload the new certificate below."
)
_ACS = (
    "{idp} sent the response to another address than this connection's ACS URL. Enter the ACS "
    "URL shown in the steps exactly as shown."
)

#: code -> plain-language summary ({idp} is the provider's name)
FRIENDLY: dict[str, str] = {
    # metadata, certificates, issuer
    "malformed_xml": "This is not XML. Give the metadata document itself: it starts with "
    "<EntityDescriptor or <md:EntityDescriptor.",
    "invalid_xml": "This is not XML. Give the metadata document itself: it starts with "
    "<EntityDescriptor or <md:EntityDescriptor.",
    "doctype_refused": "The file contains a DOCTYPE declaration, which we refuse for security. "
    "Download the metadata from {idp} again without changes.",
    "too_large": "The file is too large to be SAML metadata (the limit is 2 MB).",
    "no_signing_certificate": "The metadata has no signing certificate, so we could not check "
    "who signed a sign-in. Make sure the SAML app in {idp} is saved and has an active signing "
    "certificate, then download the metadata again.",
    "certificate_expired": "The signing certificate has expired. In {idp}, create or activate "
    "a new signing certificate, then give the new metadata or certificate.",
    "certificate_invalid": "This is not a valid X.509 certificate. Paste the PEM text, from "
    "-----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
    "metadata_unreachable": "We could not download the metadata from that URL. Check that the "
    "address is right and public (not behind a VPN or sign-in page); or upload the file instead.",
    "empty": "Fill in the field (or choose the file) first.",
    "metadata_url_https": "The metadata URL must start with https://.",
    "private_address": "That URL points to a private network address, which we do not fetch. "
    "Upload the metadata file instead.",
    "metadata_invalid": "This is XML, but not usable SAML metadata for an identity provider. "
    "Give the identity provider (IdP) metadata of the app you created in {idp}.",
    "idp_unreachable": _UNREACHABLE,
    "idp_timeout": _UNREACHABLE,
    "idp_http_error": "{idp} answered with an error when we fetched its discovery document "
    "(<issuer>/.well-known/openid-configuration). Check the issuer URL.",
    "idp_bad_response": _DISCOVERY,
    "idp_unavailable": _DISCOVERY,
    "invalid_discovery": _DISCOVERY,
    "issuer_invalid": "The issuer must be an https:// address such as the example shown.",
    "client_required": "Enter both the client ID and the client secret from {idp}.",
    "connection_incomplete": "Give {idp}'s metadata (or issuer and client) before activating.",
    # test sign-in
    "wrong_audience": "{idp} sent the sign-in to another audience. Set the SP entity ID "
    "(“Audience” / “Entity ID” / “Identifier”) in {idp} to the value shown in the steps.",
    "wrong_issuer": "The response comes from another identity provider entity ID than the one "
    "in the metadata. Give the metadata of this very app in {idp} again.",
    "wrong_destination": _ACS,
    "wrong_recipient": _ACS,
    "invalid_signature": _SIGNATURE,
    "digest_mismatch": _SIGNATURE,
    "no_certificate": _SIGNATURE,
    "unsigned": "The response is not signed. In {idp}, sign the assertion (or the whole response).",
    "weak_algorithm": "{idp} signs with SHA-1, which we refuse. Choose RSA-SHA256 as the "
    "signature algorithm.",
    "assertion_expired": "The sign-in arrived too late or the clocks disagree. Try again; if "
    "it persists, check the clock of {idp}'s server.",
    "assertion_not_yet_valid": "The sign-in is dated in the future: the clock of {idp}'s server "
    "is probably wrong.",
    "missing_email": "{idp} sent no email address for this user. Add the email attribute shown "
    "in the steps (or use email as NameID) and try again.",
    "email_domain_mismatch": "The user's email domain is not one of your organization's "
    "domains. Sign in with a user of your company's domain, or ask for the domain to be added.",
    "saml_status_error": "{idp} refused the sign-in. Usually the user is not assigned to the "
    "app in {idp}.",
    "idp_error": "{idp} refused the sign-in. Usually the user is not assigned to the app or "
    "did not consent.",
    "unknown_in_response_to": "This answer does not belong to a test started here (it expired, "
    "or was started from {idp}'s dashboard). Start the test from this page.",
    "unsolicited_response": "This answer was started from {idp}'s dashboard. Start the test "
    "from this page instead.",
    "invalid_audience": "The ID token was issued to another client. Check the client ID.",
    "invalid_issuer": "The ID token comes from another issuer than the one you entered. Use the "
    "issuer shown in {idp} exactly (mind the trailing slash).",
    "token_exchange_failed": "{idp} refused to exchange the sign-in code: usually the client "
    "secret is wrong, or the redirect URI is not registered exactly as shown.",
    "invalid_state": "This test expired or was already used. Start it again from this page.",
    "browser_mismatch": "The test was finished in another browser than the one that started "
    "it. Start it again and finish it in the same browser.",
    "user_deprovisioned": "This user was deactivated by your directory, so they cannot sign in.",
    "encryption_required": "This connection expects encrypted assertions, but {idp} sent a "
    "plain one.",
    "unexpected_encryption": "{idp} encrypts assertions, which this connection does not expect.",
    "algorithm_not_allowed": "{idp} signs ID tokens with an algorithm we do not accept. Choose "
    "RS256.",
}

_GENERIC = "Something in this step did not work. The technical details below say what."


def explain(exc: SSOGateError, idp: str = "your identity provider") -> Explanation:
    """The plain-language summary of an error, with its technical message."""
    code = exc.code
    field = exc.field if isinstance(exc, ValidationError) else None
    if code == "invalid_request":
        # validation errors share one code; the field tells them apart
        if field == "issuer":
            code = "issuer_invalid"
        elif field in ("client_id", "client_secret"):
            code = "client_required"
        elif field == "certificates":
            code = "certificate_invalid"
        elif field == "metadata_url" and "https" in exc.message:
            code = "metadata_url_https"
        elif field in ("metadata_xml", "metadata_url"):
            code = "metadata_invalid"
    summary = FRIENDLY.get(code, _GENERIC).replace("{idp}", idp)
    return Explanation(summary, exc.code, exc.message)
