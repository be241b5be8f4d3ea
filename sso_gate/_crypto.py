"""Small cryptographic helpers: hashing of stored tokens, constant-time comparison and
encryption at rest (AES-256-GCM, key derived from ``SSO_GATE_SECRET_KEYS`` by HKDF)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sso_gate.exceptions import ConfigurationError
from sso_gate.settings import Secret

__all__ = ["hash_token", "constant_time_equals", "SecretBox", "derive_key"]


def hash_token(token: str) -> str:
    """SHA-256 hex of a high-entropy token (tokens are random, so no salt/KDF is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    ab = a.encode() if isinstance(a, str) else a
    bb = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


def derive_key(secret: Secret, purpose: str, length: int = 32) -> bytes:
    """A key for one purpose, so one secret key never signs two kinds of thing."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=b"sso_gate", info=purpose.encode())
    return hkdf.derive(secret.reveal().encode())


class SecretBox:
    """Encrypts secrets at rest. Ciphertext: ``v1.<key id>.<base64(nonce|ct)>``.

    The first secret key encrypts; any configured key decrypts, so keys can rotate.
    """

    def __init__(self, keys: tuple[Secret, ...], purpose: str = "sso_gate.secret_box.v1") -> None:
        self._keys: list[tuple[str, AESGCM]] = []
        for key in keys:
            raw = derive_key(key, purpose)
            kid = hashlib.sha256(raw).hexdigest()[:8]
            self._keys.append((kid, AESGCM(raw)))

    def encrypt(self, plaintext: str, associated: str = "") -> str:
        kid, aead = self._keys[0]
        nonce = os.urandom(12)
        ct = aead.encrypt(nonce, plaintext.encode(), associated.encode())
        return f"v1.{kid}.{base64.urlsafe_b64encode(nonce + ct).decode()}"

    @property
    def kids(self) -> tuple[str, ...]:
        """Ids of the configured keys, the encrypting one first."""
        return tuple(kid for kid, _ in self._keys)

    @property
    def current_kid(self) -> str:
        """The id of the key that encrypts (the first secret key)."""
        return self._keys[0][0]

    @staticmethod
    def kid_of(token: str) -> str | None:
        """The id of the key that sealed ``token`` (``None`` if it is not a sealed value)."""
        parts = token.split(".", 2)
        return parts[1] if len(parts) == 3 and parts[0] == "v1" else None

    def decrypt(self, token: str, associated: str = "") -> str:
        try:
            version, kid, body = token.split(".", 2)
        except ValueError:
            raise ConfigurationError("stored secret is not in a known format") from None
        for candidate, aead in self._keys:
            if candidate == kid:
                raw = base64.urlsafe_b64decode(body)
                return aead.decrypt(raw[:12], raw[12:], associated.encode()).decode()
        raise ConfigurationError(
            "a stored secret was encrypted with a key no longer in SSO_GATE_SECRET_KEYS; "
            "add the old key back (after the new one) to decrypt it"
        )
