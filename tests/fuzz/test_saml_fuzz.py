"""A fuzz run over SAML response parsing and verification (``verify_response`` and the hardened
parser in ``sso_gate.saml._xml``).

Genuinely signed responses from ``tests/fakes/saml_idp.py`` — assertion signed, response signed,
both, and a signed assertion encrypted for the SP — are mutated (``_saml_mutations``: tree
edits, byte edits, encoding tricks, truncation, huge values; one to three at a time), and random
XML, random bytes and random strings are sent too. For every input:

* ``verify_response`` returns or raises an ``SSOGateError`` answered with a 4xx — never
  anything else (no ``lxml``, ``signxml``, ``cryptography``, ``ValueError``…);
* what it accepts is exactly what the unmutated response gives: a mutation of a signed part is
  never accepted with other content, whatever the mutation. Only the Response's own ID may
  differ, where the assertion is signed by itself: a response signature is optional then, so a
  response whose signature was removed or broken (found by the long run: one flipped byte in
  ``xmlns:ds`` makes ``ds:Signature`` a foreign element) is an assertion-signed response, and
  nothing is read from the Response's ID (replays are keyed on the signed assertion's ID).

CI runs ``fuzz_examples(200)`` examples per property; ``fuzz/README.md`` has the long run.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from sso_gate.exceptions import SSOGateError, TokenValidationError
from sso_gate.saml._xml import parse_xml
from sso_gate.saml.response import (
    ResponseExpectations,
    VerifiedAssertion,
    decode_saml_response,
    verify_response,
)
from tests.fakes.saml_idp import (
    FakeSamlIdP,
    encrypt_assertion,
    make_cert,
    pem,
    strip_placeholder,
)
from tests.fuzz._harness import fuzz_examples, record
from tests.fuzz._saml_mutations import MUTATIONS, Draw, random_xml

ACS = "https://app.test/sso-gate/sso/saml/conn_1/acs"
SP = "https://app.test/sso-gate/sso/saml/conn_1/metadata"
REQ = "_req-1"
NOW = dt.datetime.now(dt.UTC)

FUZZ = settings(
    database=None,
    deadline=None,
    max_examples=fuzz_examples(200),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

IDP = FakeSamlIdP()
SP_KEY, SP_CERT = make_cert("SP")


def _expect(**kw: Any) -> ResponseExpectations:
    base: dict[str, Any] = dict(
        idp_entity_id=IDP.entity_id,
        sp_entity_id=SP,
        acs_url=ACS,
        certificates=(IDP.cert,),
        now=NOW,
        in_response_to=REQ,
        max_bytes=256 * 1024,
    )
    return ResponseExpectations(**{**base, **kw})


def _variants() -> dict[str, tuple[bytes, ResponseExpectations, bool]]:
    """name -> (signed response bytes, expectations, response ID bound to a signature that
    cannot be dropped — only where the assertion is not signed by itself)."""
    kw = dict(acs_url=ACS, audience=SP, in_response_to=REQ, now=NOW)
    attrs = {"email": ["alice@acme.test"], "groups": ["Engineering", "Admins"]}
    signed_assertion = IDP.signed_assertion(attributes=attrs, **kw)
    plain_assertion = strip_placeholder(IDP.assertion_xml(attributes=attrs, **kw))
    out = {
        "assertion-signed": (
            IDP.response(signed_assertion, acs_url=ACS, in_response_to=REQ),
            _expect(),
            False,
        ),
        "response-signed": (
            IDP.response(plain_assertion, acs_url=ACS, in_response_to=REQ, sign_response=True),
            _expect(),
            True,
        ),
        "both-signed": (
            IDP.response(
                IDP.signed_assertion(attributes=attrs, **kw),
                acs_url=ACS,
                in_response_to=REQ,
                sign_response=True,
            ),
            _expect(),
            False,
        ),
        "encrypted": (
            IDP.response(
                encrypt_assertion(IDP.signed_assertion(attributes=attrs, **kw), pem(SP_CERT)),
                acs_url=ACS,
                in_response_to=REQ,
            ),
            _expect(decryption_key=SP_KEY, require_encryption=True),
            False,
        ),
    }
    return {
        name: (bytes(etree.tostring(root)), exp, signed)
        for name, (root, exp, signed) in out.items()
    }


VARIANTS = _variants()
ORIGINALS = {
    name: verify_response(base64.b64encode(data).decode(), exp)
    for name, (data, exp, _) in VARIANTS.items()
}


def _same_content(
    got: VerifiedAssertion, original: VerifiedAssertion, response_id_bound: bool
) -> bool:
    if not response_id_bound:
        got = dataclasses.replace(got, response_id=original.response_id)
    return got == original


def _verify(variant: str, data: bytes | str, how: str) -> str:
    """Verify; return the outcome (``refused <code>`` or ``accepted``) after the checks."""
    _, exp, response_id_bound = VARIANTS[variant]
    value = data if isinstance(data, str) else base64.b64encode(data).decode()
    try:
        got = verify_response(value, exp)
    except SSOGateError as exc:
        assert exc.http_status < 500, (type(exc).__name__, exc.code, exc.message)
        outcome = f"refused {exc.code}"
    else:
        # anything else (lxml, signxml, cryptography, ValueError…) fails the test as it is
        assert _same_content(got, ORIGINALS[variant], response_id_bound), (
            f"accepted a mutated response ({how}) with other content: {got} != {ORIGINALS[variant]}"
        )
        outcome = "accepted (unchanged content)"
    record("saml", how, outcome)
    return outcome


def test_a_broken_response_signature_leaves_an_assertion_signed_response() -> None:
    """The long run's find, pinned: flip ``xmlns:ds`` of the Response's signature and its ID."""
    raw, exp, _ = VARIANTS["both-signed"]
    root = etree.fromstring(raw)
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    foreign = etree.SubElement(root, "{ittp://www.w3.org/2000/09/xmldsig#}Signature")
    foreign.extend(list(signature))
    signature.addprevious(foreign)
    root.remove(signature)
    root.set("ID", "^" + root.get("ID", "")[1:])
    got = verify_response(base64.b64encode(etree.tostring(root)).decode(), exp)
    assert got.response_id == root.get("ID")
    assert _same_content(got, ORIGINALS["both-signed"], response_id_bound=False)
    # where the response signature is the only one, the same edits are refused
    raw, exp, _ = VARIANTS["response-signed"]
    root = etree.fromstring(raw)
    root.set("ID", "^" + root.get("ID", "")[1:])
    with pytest.raises(TokenValidationError):
        verify_response(base64.b64encode(etree.tostring(root)).decode(), exp)


def test_unmutated_variants_are_accepted() -> None:
    for name, original in ORIGINALS.items():
        assert original.name_id == "alice@acme.test", name
        assert original.attributes["groups"] == ["Engineering", "Admins"], name


@FUZZ
@given(
    st.sampled_from(sorted(VARIANTS)),
    st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
    st.data(),
)
def test_mutated_signed_responses(variant: str, mutations: list[Any], data: st.DataObject) -> None:
    draw: Draw = data.draw
    raw = VARIANTS[variant][0]
    for mutate in mutations:
        raw = mutate(raw, draw)
    outcome = _verify(variant, raw, f"{variant} response, mutated")
    for mutate in mutations:
        record("saml-mutations", mutate.__name__, outcome.partition(" ")[0])


@FUZZ
@given(
    st.sampled_from(sorted(VARIANTS)),
    st.one_of(
        random_xml(),
        st.binary(max_size=2000),
        st.sampled_from([b"", b"<", b"<?xml version='1.0'?>", b"\x00" * 10, b"<a/>" * 1000]),
    ),
)
def test_random_documents(variant: str, raw: bytes) -> None:
    _verify(variant, raw, "random document")


@FUZZ
@given(
    st.one_of(
        st.text(max_size=300),
        st.text(alphabet="ABCDEFabcdef0123456789+/= \n\r\t-_", max_size=400),
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode() + "=" * (len(b) % 3)),
    )
)
def test_random_form_values(value: str) -> None:
    _verify("assertion-signed", value, "random form value")


@FUZZ
@given(st.one_of(random_xml(), st.binary(max_size=3000)), st.integers(1, 4000))
def test_hardened_parser(raw: bytes, limit: int) -> None:
    """``parse_xml`` and ``decode_saml_response`` raise only their documented errors."""
    try:
        parse_xml(raw, what="document", max_bytes=limit)
    except SSOGateError as exc:
        assert exc.code in {"too_large", "doctype_refused", "malformed_xml"}, exc.code
    try:
        decode_saml_response(raw.decode("latin-1"), limit)
    except SSOGateError as exc:
        assert exc.code in {"missing_saml_response", "response_too_large", "malformed_base64"}
    record("saml", "hardened parser", "ok")
