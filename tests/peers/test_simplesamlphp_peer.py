"""Smoke test of the SimpleSAMLphp IdP peer: SAML 2.0 Web SSO driven by hand, no sso_gate code."""

from __future__ import annotations

import base64
import datetime
import os
import secrets
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .simplesamlphp import (
    SamlIdP,
    SamlPost,
    SimpleSamlPhpError,
    SpConfig,
    available,
    drive_login,
    idp_initiated_url,
    run_simplesamlphp,
    self_signed_cert,
)

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

SP_ENTITY_ID = "http://127.0.0.1:9/sp"
ACS_URL = "http://127.0.0.1:9/acs"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
}


@pytest.fixture(autouse=True)
def _require_simplesamlphp() -> None:
    if available():
        return
    message = "php (with php-xml) and Debian's simplesamlphp are needed for the SAML IdP peer"
    if os.environ.get("SSO_GATE_REQUIRE_PEERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def sp_keys() -> tuple[str, str]:
    return self_signed_cert("sso-gate test SP")


@pytest.fixture(scope="module")
def other_keys() -> tuple[str, str]:
    return self_signed_cert("not the registered SP")


@pytest.fixture
def idp() -> Iterator[SamlIdP]:
    with run_simplesamlphp([SpConfig(entity_id=SP_ENTITY_ID, acs_url=ACS_URL)]) as running:
        yield running


def _authn_request(idp: SamlIdP, request_id: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<samlp:AuthnRequest xmlns:samlp="{NS["samlp"]}" xmlns:saml="{NS["saml"]}"'
        f' ID="{request_id}" Version="2.0" IssueInstant="{now}" Destination="{idp.sso_url}"'
        f' AssertionConsumerServiceURL="{ACS_URL}"'
        ' ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">'
        f"<saml:Issuer>{SP_ENTITY_ID}</saml:Issuer>"
        "</samlp:AuthnRequest>"
    )


def _redirect_url(
    idp: SamlIdP, request_xml: str, relay_state: str, key_pem: str | None = None
) -> str:
    """HTTP-Redirect binding URL; signed per SAML bindings §3.4.4.1 when a key is given."""
    compressor = zlib.compressobj(wbits=-15)
    deflated = compressor.compress(request_xml.encode()) + compressor.flush()
    params = [("SAMLRequest", base64.b64encode(deflated).decode()), ("RelayState", relay_state)]
    if key_pem is None:
        return f"{idp.sso_url}?{urlencode(params)}"
    signed = urlencode([*params, ("SigAlg", RSA_SHA256)])
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{idp.sso_url}?{signed}&{urlencode({'Signature': base64.b64encode(signature)})}"


async def _login(url: str, username: str = "alice", password: str = "alicepass") -> SamlPost:
    async with httpx.AsyncClient(timeout=10) as client:
        return await drive_login(client, url, username, password)


def _response_xml(post: SamlPost) -> tuple[str, ET.Element]:
    xml = base64.b64decode(post.saml_response).decode()
    return xml, ET.fromstring(xml)


def _algorithms(element: ET.Element) -> list[str]:
    return sorted(
        {node.attrib["Algorithm"] for node in element.iter() if "Algorithm" in node.attrib}
    )


def _decrypt_assertion(root: ET.Element, sp_key_pem: str) -> tuple[str, str, str]:
    """Decrypt the EncryptedAssertion with the SP key; return (xml, data alg, key alg)."""
    data = root.find("saml:EncryptedAssertion/xenc:EncryptedData", NS)
    assert data is not None
    data_method = data.find("xenc:EncryptionMethod", NS)
    enc_key = data.find(".//xenc:EncryptedKey", NS)
    if enc_key is None:  # some producers put EncryptedKey next to EncryptedData
        enc_key = root.find("saml:EncryptedAssertion/xenc:EncryptedKey", NS)
    assert data_method is not None and enc_key is not None
    key_method = enc_key.find("xenc:EncryptionMethod", NS)
    key_cipher = enc_key.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS)
    data_cipher = data.findtext("xenc:CipherData/xenc:CipherValue", namespaces=NS)
    assert key_method is not None and key_cipher and data_cipher
    data_alg, key_alg = data_method.attrib["Algorithm"], key_method.attrib["Algorithm"]
    assert key_alg == "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", key_alg
    assert data_alg == "http://www.w3.org/2001/04/xmlenc#aes128-cbc", data_alg

    sp_key = serialization.load_pem_private_key(sp_key_pem.encode(), password=None)
    assert isinstance(sp_key, rsa.RSAPrivateKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    session_key = sp_key.decrypt(base64.b64decode(key_cipher), oaep)
    blob = base64.b64decode(data_cipher)
    decryptor = Cipher(algorithms.AES(session_key), modes.CBC(blob[:16])).decryptor()
    plain = decryptor.update(blob[16:]) + decryptor.finalize()
    return plain[: -plain[-1]].decode(), data_alg, key_alg  # XML Encryption padding


async def test_sp_initiated_login(idp: SamlIdP) -> None:
    assert idp.entity_id == idp.metadata_url
    assert "<md:IDPSSODescriptor" in idp.metadata_xml
    assert idp.sso_url in idp.metadata_xml
    cert_body = "".join(idp.cert_pem.strip().splitlines()[1:-1])
    assert cert_body in idp.metadata_xml

    request_id = "_" + secrets.token_hex(16)
    url = _redirect_url(idp, _authn_request(idp, request_id), "relay-123 /?&")
    post = await _login(url)

    assert post.action == ACS_URL
    assert post.relay_state == "relay-123 /?&"
    xml, root = _response_xml(post)
    assert "alice@acme.test" in xml
    assert "urn:oasis:names:tc:SAML:2.0:status:Success" in xml
    assert root.attrib["InResponseTo"] == request_id
    assert "<ds:Signature" in xml
    # default flags: the assertion is signed, the response envelope is not
    assert root.find("ds:Signature", NS) is None
    assert root.find("saml:Assertion/ds:Signature", NS) is not None
    name_id = root.find("saml:Assertion/saml:Subject/saml:NameID", NS)
    assert name_id is not None and name_id.text == "alice@acme.test"
    assert name_id.attrib["Format"] == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    groups = root.findall(
        "saml:Assertion/saml:AttributeStatement/saml:Attribute[@Name='groups']/saml:AttributeValue",
        NS,
    )
    assert [g.text for g in groups] == ["Engineering", "Admins"]
    print("signature algorithms:", _algorithms(root))


async def test_idp_initiated_login(idp: SamlIdP) -> None:
    post = await _login(idp_initiated_url(idp, SP_ENTITY_ID, "deep/link"), "bob", "bobpass")
    assert post.action == ACS_URL
    assert post.relay_state == "deep/link"
    xml, root = _response_xml(post)
    assert "bob@acme.test" in xml
    assert "InResponseTo" not in root.attrib


async def test_wrong_password_is_reported(idp: SamlIdP) -> None:
    with pytest.raises(SimpleSamlPhpError, match="Incorrect username or password"):
        await _login(idp_initiated_url(idp, SP_ENTITY_ID), "alice", "nope")


async def test_signed_authn_request_required(
    sp_keys: tuple[str, str], other_keys: tuple[str, str]
) -> None:
    sp_key, sp_cert = sp_keys
    sp = SpConfig(
        entity_id=SP_ENTITY_ID,
        acs_url=ACS_URL,
        cert_pem=sp_cert,
        require_signed_authn_request=True,
    )
    with run_simplesamlphp([sp]) as idp:
        request_id = "_" + secrets.token_hex(16)
        url = _redirect_url(idp, _authn_request(idp, request_id), "signed", sp_key)
        post = await _login(url)
        assert post.relay_state == "signed"
        xml, root = _response_xml(post)
        assert root.attrib["InResponseTo"] == request_id
        assert "alice@acme.test" in xml

        unsigned = _redirect_url(idp, _authn_request(idp, "_" + secrets.token_hex(16)), "x")
        with pytest.raises(SimpleSamlPhpError, match="no signature found") as refused:
            await _login(unsigned)
        assert "SimpleSAMLphp log tail" in str(refused.value)

        forged = _redirect_url(
            idp, _authn_request(idp, "_" + secrets.token_hex(16)), "x", other_keys[0]
        )
        with pytest.raises(SimpleSamlPhpError, match="Unable to validate signature"):
            await _login(forged)


async def test_encrypted_assertion(sp_keys: tuple[str, str]) -> None:
    sp_key, sp_cert = sp_keys
    sp = SpConfig(entity_id=SP_ENTITY_ID, acs_url=ACS_URL, cert_pem=sp_cert)
    with run_simplesamlphp([sp], encrypt_assertion=True) as idp:
        request_id = "_" + secrets.token_hex(16)
        post = await _login(_redirect_url(idp, _authn_request(idp, request_id), "enc"))
    xml, root = _response_xml(post)
    assert "<saml:EncryptedAssertion" in xml
    assert root.find("saml:Assertion", NS) is None
    assert "alice@acme.test" not in xml
    assertion, data_alg, key_alg = _decrypt_assertion(root, sp_key)
    assert "alice@acme.test" in assertion
    assert f'InResponseTo="{request_id}"' in assertion
    assert "<ds:Signature" in assertion  # signed, then encrypted
    print("EncryptedData:", data_alg, "EncryptedKey:", key_alg)


async def test_sps_added_after_start_are_trusted_at_once() -> None:
    """``add_sp``/``set_sps`` rewrite the metadata of the running IdP; the next request sees it
    (the metadata directory is kept out of OPcache, which would otherwise serve the old file
    for up to ``opcache.revalidate_freq`` seconds)."""
    late = "http://127.0.0.1:9/late-sp"
    with run_simplesamlphp([SpConfig(entity_id=SP_ENTITY_ID, acs_url=ACS_URL)]) as idp:
        remote = idp.metadata_dir / "saml20-sp-remote.php"
        old = time.time() - 60
        os.utime(remote, (old, old))  # old enough for OPcache to cache it
        await _login(idp_initiated_url(idp, SP_ENTITY_ID))
        with pytest.raises(SimpleSamlPhpError):
            await _login(idp_initiated_url(idp, late))

        idp.add_sp(SpConfig(entity_id=late, acs_url=ACS_URL + "/late", sign_response=True))
        post = await _login(idp_initiated_url(idp, late))
        assert post.action == ACS_URL + "/late"
        _xml, root = _response_xml(post)
        assert root.find("ds:Signature", NS) is not None  # the per-SP override applies
        assert [sp.entity_id for sp in idp.sps] == [SP_ENTITY_ID, late]
