"""SAML response verification: every relying-party check, tried against genuinely signed
messages bent into each known attack (XSW1–XSW8, exclusion, faked certs, time, audience…)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from lxml import etree

from sso_gate.exceptions import TokenValidationError
from sso_gate.saml._xml import NS
from sso_gate.saml.response import (
    ResponseExpectations,
    SAMLStatusError,
    VerifiedAssertion,
    verify_response,
)
from tests.fakes.saml_idp import FakeSamlIdP, encode, make_cert, strip_placeholder

ACS = "https://app.test/sso-gate/sso/saml/conn_1/acs"
SP = "https://app.test/sso-gate/sso/saml/conn_1/metadata"
REQ = "_req-1"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"


@pytest.fixture(scope="module")
def idp() -> FakeSamlIdP:
    return FakeSamlIdP()


def expect(idp: FakeSamlIdP, **kw: Any) -> ResponseExpectations:
    base: dict[str, Any] = dict(
        idp_entity_id=idp.entity_id,
        sp_entity_id=SP,
        acs_url=ACS,
        certificates=(idp.cert,),
        now=dt.datetime.now(dt.UTC),
        in_response_to=REQ,
    )
    base.update(kw)
    return ResponseExpectations(**base)


def good(idp: FakeSamlIdP, *, sign_response: bool = False, **kw: Any) -> etree._Element:
    a_kw = dict(acs_url=ACS, audience=SP, in_response_to=REQ) | kw
    if sign_response:
        return idp.response(
            strip_placeholder(idp.assertion_xml(**a_kw)),
            acs_url=ACS,
            in_response_to=REQ,
            sign_response=True,
        )
    return idp.response(idp.signed_assertion(**a_kw), acs_url=ACS, in_response_to=REQ)


def refused(
    idp: FakeSamlIdP, root: etree._Element | str, code: str, **exp: Any
) -> TokenValidationError:
    value = root if isinstance(root, str) else encode(root)
    with pytest.raises(TokenValidationError) as info:
        verify_response(value, expect(idp, **exp))
    assert info.value.code == code, info.value.message
    return info.value


def test_signed_assertion_accepted(idp: FakeSamlIdP) -> None:
    v = verify_response(encode(good(idp)), expect(idp))
    assert isinstance(v, VerifiedAssertion) and v.name_id == "alice@acme.test"
    assert v.attributes["groups"] == ["Engineering", "Admins"] and v.in_response_to == REQ


def test_signed_response_accepted(idp: FakeSamlIdP) -> None:
    v = verify_response(encode(good(idp, sign_response=True)), expect(idp))
    assert v.name_id == "alice@acme.test"


def test_both_signed_accepted(idp: FakeSamlIdP) -> None:
    a = idp.signed_assertion(acs_url=ACS, audience=SP, in_response_to=REQ)
    r = idp.response(a, acs_url=ACS, in_response_to=REQ, sign_response=True)
    assert verify_response(encode(r), expect(idp)).name_id == "alice@acme.test"


def test_certificate_rotation_overlap(idp: FakeSamlIdP) -> None:
    _, other = make_cert("old")
    v = verify_response(encode(good(idp)), expect(idp, certificates=(other, idp.cert)))
    assert v.certificate_index == 1


# -- signature exclusion, faking and weak algorithms -------------------------------------------


def test_unsigned_refused(idp: FakeSamlIdP) -> None:
    r = idp.response(
        strip_placeholder(idp.assertion_xml(acs_url=ACS, audience=SP, in_response_to=REQ)),
        acs_url=ACS,
        in_response_to=REQ,
    )
    refused(idp, r, "unsigned")


def test_signature_removed_after_signing_refused(idp: FakeSamlIdP) -> None:
    r = good(idp)
    sig = r.find(f".//{DS}Signature")
    sig.getparent().remove(sig)
    refused(idp, r, "unsigned")


def test_signature_emptied_refused(idp: FakeSamlIdP) -> None:
    r = good(idp)
    sv = r.find(f".//{DS}SignatureValue")
    sv.text = ""
    with pytest.raises(TokenValidationError):
        verify_response(encode(r), expect(idp))


def test_content_changed_after_signing_refused(idp: FakeSamlIdP) -> None:
    r = good(idp)
    r.find(f".//{SAML}NameID").text = "ceo@acme.test"
    refused(idp, r, "digest_mismatch")


def test_attacker_key_with_own_cert_in_keyinfo_refused(idp: FakeSamlIdP) -> None:
    key, cert = make_cert("Attacker")
    a = idp.sign(
        idp.assertion_xml(acs_url=ACS, audience=SP, in_response_to=REQ), key=key, cert=cert
    )
    refused(idp, idp.response(a, acs_url=ACS, in_response_to=REQ), "invalid_signature")


def test_other_tenant_idp_signature_refused(idp: FakeSamlIdP) -> None:
    """A response genuinely signed by another organization's IdP (cross-tenant)."""
    other = FakeSamlIdP(entity_id=idp.entity_id)  # even claiming the same entity ID
    r = other.response(
        other.signed_assertion(acs_url=ACS, audience=SP, in_response_to=REQ),
        acs_url=ACS,
        in_response_to=REQ,
    )
    refused(idp, r, "invalid_signature")


@pytest.mark.parametrize(("alg", "digest"), [("rsa-sha1", "sha256"), ("rsa-sha256", "sha1")])
def test_sha1_refused(idp: FakeSamlIdP, alg: str, digest: str) -> None:
    a = idp.sign(
        idp.assertion_xml(acs_url=ACS, audience=SP, in_response_to=REQ),
        algorithm=alg,
        digest=digest,
    )
    refused(idp, idp.response(a, acs_url=ACS, in_response_to=REQ), "weak_algorithm")
    # the legacy opt-in accepts it
    assert verify_response(
        encode(idp.response(a, acs_url=ACS, in_response_to=REQ)), expect(idp, allow_sha1=True)
    ).name_id


# -- XML signature wrapping ---------------------------------------------------------------------


def evil_assertion(idp: FakeSamlIdP, signed: etree._Element) -> etree._Element:
    evil = copy.deepcopy(signed)
    evil.set("ID", "_evil")
    evil.find(f".//{SAML}NameID").text = "ceo@acme.test"
    sig = evil.find(f"{DS}Signature")
    if sig is not None:
        evil.remove(sig)
    return evil


def xsw(variant: int, idp: FakeSamlIdP) -> etree._Element:
    if variant in (1, 2):
        r = good(idp, sign_response=True)
        original = copy.deepcopy(r)
        sig = r.find(f"{DS}Signature")
        r.set("ID", "_evil_response")
        r.find(f".//{SAML}NameID").text = "ceo@acme.test"
        orig_sig = original.find(f"{DS}Signature")
        original.remove(orig_sig)
        if variant == 1:  # original response inside the signature's ds:Object
            obj = etree.SubElement(sig, f"{DS}Object")
            obj.append(original)
        else:  # original response as a sibling before the signature
            sig.addprevious(original)
        return r
    r = good(idp)
    signed = r.find(f"{SAML}Assertion")
    evil = evil_assertion(idp, signed)
    if variant == 3:  # evil assertion first, original after
        signed.addprevious(evil)
    elif variant == 4:  # original nested inside the evil assertion
        r.remove(signed)
        evil.append(signed)
        r.append(evil)
    elif variant == 5:  # original's signature moved into the evil assertion, original at the end
        sig = signed.find(f"{DS}Signature")
        evil.insert(1, sig)
        r.remove(signed)
        r.append(evil)
        unsigned = copy.deepcopy(signed)
        r.append(unsigned)
    elif variant == 6:  # original inside the ds:Object of the signature moved into evil
        sig = signed.find(f"{DS}Signature")
        evil.insert(1, sig)
        signed_copy = copy.deepcopy(signed)
        etree.SubElement(sig, f"{DS}Object").append(signed_copy)
        r.remove(signed)
        r.append(evil)
    elif variant == 7:  # original hidden in samlp:Extensions, evil in its place
        ext = etree.Element("{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
        r.find(f"{SAML}Issuer").addnext(ext)
        r.remove(signed)
        ext.append(signed)
        r.append(evil)
    elif variant == 8:  # evil with a signature whose ds:Object holds the original minus signature
        sig = copy.deepcopy(signed.find(f"{DS}Signature"))
        evil.insert(1, sig)
        inner = copy.deepcopy(signed)
        inner.remove(inner.find(f"{DS}Signature"))
        etree.SubElement(sig, f"{DS}Object").append(inner)
        r.remove(signed)
        r.append(evil)
    return r


@pytest.mark.parametrize("variant", range(1, 9))
def test_signature_wrapping_refused(idp: FakeSamlIdP, variant: int) -> None:
    with pytest.raises(TokenValidationError) as info:
        verify_response(encode(xsw(variant, idp)), expect(idp))
    assert info.value.code in {
        "assertion_count",
        "signature_wrapping",
        "invalid_signature",
        "digest_mismatch",
        "wrong_root",
    }, info.value


def test_wrapping_defence_holds_without_the_count_check(
    idp: FakeSamlIdP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the one-assertion rule were gone, identity is read only from signed bytes."""
    r = good(idp)
    signed = r.find(f"{SAML}Assertion")
    evil = evil_assertion(idp, signed)
    sig = signed.find(f"{DS}Signature")
    evil.insert(1, sig)  # XSW5 without the extra copy: the reference points at a missing ID
    r.remove(signed)
    r.append(evil)
    with pytest.raises(TokenValidationError):
        verify_response(encode(r), expect(idp))


def test_comment_in_name_id_never_truncates(idp: FakeSamlIdP) -> None:
    a = idp.signed_assertion(
        acs_url=ACS, audience=SP, in_response_to=REQ, name_id_raw="admin@acme.com<!---->.evil.com"
    )
    v = verify_response(encode(idp.response(a, acs_url=ACS, in_response_to=REQ)), expect(idp))
    assert v.name_id == "admin@acme.com.evil.com"


# -- audience, recipient, destination, issuer ---------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"audience": "https://other-sp.test"}, "wrong_audience"),
        ({"omit": {"audience"}}, "missing_audience"),
        ({"omit": {"conditions"}}, "missing_conditions"),
        ({"recipient": "https://evil.test/acs"}, "wrong_recipient"),
        ({"omit": {"recipient"}}, "wrong_recipient"),
        ({"issuer": "https://evil-idp.test"}, "wrong_issuer"),
        ({"in_response_to": "_someone-elses-request"}, "in_response_to_mismatch"),
    ],
)
def test_assertion_checks(idp: FakeSamlIdP, kw: dict[str, Any], code: str) -> None:
    a_kw = dict(acs_url=ACS, audience=SP, in_response_to=REQ) | kw
    r = idp.response(
        idp.signed_assertion(**a_kw), acs_url=ACS, in_response_to=a_kw["in_response_to"]
    )
    refused(idp, r, code)


def test_wrong_destination_refused(idp: FakeSamlIdP) -> None:
    r = idp.response(
        idp.signed_assertion(acs_url=ACS, audience=SP, in_response_to=REQ),
        acs_url=ACS,
        in_response_to=REQ,
        destination="https://evil.test/acs",
    )
    refused(idp, r, "wrong_destination")


def test_signed_response_without_destination_refused(idp: FakeSamlIdP) -> None:
    r = idp.response(
        strip_placeholder(idp.assertion_xml(acs_url=ACS, audience=SP, in_response_to=REQ)),
        acs_url=ACS,
        in_response_to=REQ,
        sign_response=True,
        omit_destination=True,
    )
    refused(idp, r, "missing_destination")


def test_wrong_response_issuer_refused(idp: FakeSamlIdP) -> None:
    r = idp.response(
        idp.signed_assertion(acs_url=ACS, audience=SP, in_response_to=REQ),
        acs_url=ACS,
        in_response_to=REQ,
        issuer="https://evil-idp.test",
    )
    refused(idp, r, "wrong_issuer")


def test_unsolicited_refused_unless_enabled(idp: FakeSamlIdP) -> None:
    r = idp.response(idp.signed_assertion(acs_url=ACS, audience=SP), acs_url=ACS)
    refused(idp, r, "unsolicited_response", in_response_to=None)
    assert verify_response(
        encode(r), expect(idp, in_response_to=None, allow_unsolicited=True)
    ).name_id
    # a solicited response arriving where none was started is refused even when unsolicited is on
    refused(idp, good(idp), "unknown_in_response_to", in_response_to=None, allow_unsolicited=True)


# -- time ---------------------------------------------------------------------------------------


def test_expired_assertion_says_by_how_much(idp: FakeSamlIdP) -> None:
    now = dt.datetime.now(dt.UTC)
    r = good(idp)
    err = refused(idp, r, "assertion_expired", now=now + dt.timedelta(minutes=5, seconds=300))
    assert (
        "SubjectConfirmationData NotOnOrAfter passed" in err.message
        and "skew allowed 120 s" in err.message
    )


def test_conditions_not_on_or_after(idp: FakeSamlIdP) -> None:
    now = dt.datetime.now(dt.UTC)
    r = good(idp, not_on_or_after=now - dt.timedelta(minutes=10))
    err = refused(idp, r, "assertion_expired")
    assert err.message.startswith("Conditions NotOnOrAfter passed")


def test_not_yet_valid(idp: FakeSamlIdP) -> None:
    now = dt.datetime.now(dt.UTC)
    r = good(idp, not_before=now + dt.timedelta(minutes=10))
    err = refused(idp, r, "assertion_not_yet_valid")
    assert "Conditions NotBefore is 6" in err.message or "Conditions NotBefore is 5" in err.message


def test_skew_tolerated(idp: FakeSamlIdP) -> None:
    now = dt.datetime.now(dt.UTC)
    r = good(idp, not_before=now + dt.timedelta(seconds=60))
    assert verify_response(encode(r), expect(idp)).name_id


# -- status, encoding, parser ------------------------------------------------------------------


def test_non_success_status(idp: FakeSamlIdP) -> None:
    r = idp.response(
        None, acs_url=ACS, in_response_to=REQ, status="urn:oasis:names:tc:SAML:2.0:status:Responder"
    )
    st = r.find("samlp:Status/samlp:StatusCode", NS)
    etree.SubElement(
        st,
        "{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode",
        Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed",
    )
    msg = etree.SubElement(
        r.find("samlp:Status", NS), "{urn:oasis:names:tc:SAML:2.0:protocol}StatusMessage"
    )
    msg.text = "User locked out"
    with pytest.raises(SAMLStatusError) as info:
        verify_response(encode(r), expect(idp))
    assert (
        "Responder / AuthnFailed" in info.value.message and "User locked out" in info.value.message
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("!!!not base64!!!", "malformed_base64"),
        ("", "missing_saml_response"),
        (base64.b64encode(b"not xml at all").decode(), "malformed_xml"),
        (base64.b64encode(b"<foo/>").decode(), "wrong_root"),
        (
            base64.b64encode(
                b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
            ).decode(),
            "doctype_refused",
        ),
        (
            base64.b64encode(
                b'<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'
            ).decode(),
            "doctype_refused",
        ),
        (
            base64.b64encode(b'<!DOCTYPE r SYSTEM "http://evil.test/x.dtd"><r/>').decode(),
            "doctype_refused",
        ),
        (base64.b64encode(b"<r>" + b"x" * 300_000 + b"</r>").decode(), "response_too_large"),
    ],
)
def test_bad_input(idp: FakeSamlIdP, value: str, code: str) -> None:
    refused(idp, value, code)


def test_deflate_bomb_is_not_inflated(idp: FakeSamlIdP) -> None:
    """The POST binding is plain base64: a deflated payload is just garbage, never inflated."""
    bomb = base64.b64encode(zlib.compress(b"<" + b"a" * 10_000_000))
    refused(idp, bomb.decode(), "malformed_xml")


def test_ids_must_match_for_replay_cache(idp: FakeSamlIdP) -> None:
    r = good(idp)
    v1 = verify_response(encode(r), expect(idp))
    v2 = verify_response(encode(r), expect(idp))
    assert v1.assertion_id == v2.assertion_id  # the caller's replay cache keys on this


_: Callable[..., Any] = xsw
