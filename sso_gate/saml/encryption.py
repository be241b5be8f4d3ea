"""XML Encryption of assertions (XML Enc 1.1): decrypt an ``EncryptedAssertion``.

Key transport: RSA-OAEP (``rsa-oaep-mgf1p`` and xmlenc11 ``rsa-oaep`` with SHA-1/224/256/384/512
digests and MGF1). **RSA 1.5 is refused** (Bleichenbacher oracle). Data: AES-128/192/256 in GCM or
CBC. The decrypted bytes go through the same hardened parser as everything else.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree

from sso_gate.exceptions import TokenValidationError
from sso_gate.saml._xml import NS, parse_xml, qname, text_of

__all__ = ["decrypt_assertion", "DATA_ALGORITHMS", "KEY_TRANSPORT"]

_XENC = "http://www.w3.org/2001/04/xmlenc#"
_XENC11 = "http://www.w3.org/2009/xmlenc11#"
DATA_ALGORITHMS = {
    _XENC + "aes128-cbc": ("cbc", 16),
    _XENC + "aes192-cbc": ("cbc", 24),
    _XENC + "aes256-cbc": ("cbc", 32),
    _XENC11 + "aes128-gcm": ("gcm", 16),
    _XENC11 + "aes192-gcm": ("gcm", 24),
    _XENC11 + "aes256-gcm": ("gcm", 32),
}
KEY_TRANSPORT = {_XENC + "rsa-oaep-mgf1p", _XENC11 + "rsa-oaep"}
_RSA15 = _XENC + "rsa-1_5"
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#sha224": hashes.SHA224,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashes.SHA512,
}
_MGFS: dict[str, type[hashes.HashAlgorithm]] = {
    _XENC11 + "mgf1sha1": hashes.SHA1,
    _XENC11 + "mgf1sha224": hashes.SHA224,
    _XENC11 + "mgf1sha256": hashes.SHA256,
    _XENC11 + "mgf1sha384": hashes.SHA384,
    _XENC11 + "mgf1sha512": hashes.SHA512,
}


def _fail(message: str, code: str = "decryption_failed") -> TokenValidationError:
    return TokenValidationError(message, code=code)


def _b64(element: etree._Element | None, what: str) -> bytes:
    value = text_of(element)
    if not value:
        raise _fail(f"{what} is missing")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _fail(f"{what} is not valid base64") from None


def _unwrap_key(encrypted_key: etree._Element, key: PrivateKeyTypes) -> bytes:
    method = encrypted_key.find("xenc:EncryptionMethod", NS)
    alg = method.get("Algorithm") if method is not None else None
    if alg == _RSA15:
        raise _fail("RSA 1.5 key transport is refused (use RSA-OAEP)", code="weak_algorithm")
    if alg not in KEY_TRANSPORT or method is None:
        raise _fail(f"unsupported key transport algorithm {alg!r}", code="unsupported_algorithm")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _fail("the connection's decryption key is not an RSA key")
    digest_el = method.find("ds:DigestMethod", NS)
    digest = _DIGESTS.get(
        digest_el.get("Algorithm", "") if digest_el is not None else "", hashes.SHA1
    )
    mgf_el = method.find("xenc11:MGF", NS)
    mgf: type[hashes.HashAlgorithm] = hashes.SHA1
    if alg == _XENC11 + "rsa-oaep" and mgf_el is not None:
        mgf = _MGFS.get(mgf_el.get("Algorithm", ""), hashes.SHA1)
    label_el = method.find("xenc:OAEPparams", NS)
    label = _b64(label_el, "OAEPparams") if label_el is not None else None
    cipher = _b64(
        encrypted_key.find("xenc:CipherData/xenc:CipherValue", NS), "EncryptedKey CipherValue"
    )
    try:
        return key.decrypt(cipher, asym.OAEP(mgf=asym.MGF1(mgf()), algorithm=digest(), label=label))
    except ValueError:
        raise _fail("the assertion key could not be decrypted with this connection's key") from None


def decrypt_assertion(
    holder: etree._Element, key: PrivateKeyTypes, *, max_bytes: int
) -> etree._Element:
    """Return the ``saml:Assertion`` inside an ``EncryptedAssertion``."""
    data = holder.find("xenc:EncryptedData", NS)
    if data is None:
        raise _fail("EncryptedAssertion has no EncryptedData")
    method = data.find("xenc:EncryptionMethod", NS)
    alg = method.get("Algorithm") if method is not None else None
    if alg not in DATA_ALGORITHMS:
        raise _fail(f"unsupported data encryption algorithm {alg!r}", code="unsupported_algorithm")
    mode, size = DATA_ALGORITHMS[alg]
    encrypted_key = data.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    if encrypted_key is None:
        encrypted_key = holder.find("xenc:EncryptedKey", NS)
    if encrypted_key is None:
        raise _fail("EncryptedAssertion has no EncryptedKey")
    content_key = _unwrap_key(encrypted_key, key)
    if len(content_key) != size:
        raise _fail("the decrypted content key has the wrong length")
    blob = _b64(data.find("xenc:CipherData/xenc:CipherValue", NS), "EncryptedData CipherValue")
    try:
        if mode == "gcm":
            plain = AESGCM(content_key).decrypt(blob[:12], blob[12:], None)
        else:
            iv, body = blob[:16], blob[16:]
            dec = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
            padded = dec.update(body) + dec.finalize()
            # XML Enc uses ISO 10126 padding: only the last byte (the pad length) is meaningful.
            pad = padded[-1] if padded else 0
            if not 1 <= pad <= 16:
                raise ValueError("bad padding")
            plain = padded[:-pad]
    except Exception:
        raise _fail("the assertion could not be decrypted") from None
    assertion = parse_xml(plain, what="decrypted assertion", max_bytes=max_bytes)
    if assertion.tag != qname("saml", "Assertion"):
        raise _fail("the decrypted content is not a saml:Assertion", code="wrong_root")
    return assertion
