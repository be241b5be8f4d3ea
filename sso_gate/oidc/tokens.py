"""ID token validation (OIDC Core §3.1.3.7) with pinned algorithms.

Every check is explicit and gives a specific error code:
``alg`` pinned by the connection (``none`` and HS* are never accepted: an HS256 token "signed"
with the provider's public key is the classic algorithm-confusion attack), key type must fit the
algorithm, ``iss`` equals the configured issuer, ``aud`` contains the client id and nothing
untrusted, ``azp`` equals the client id when present or when there are several audiences,
``exp``/``iat``/``nbf`` within the allowed skew, ``nonce`` equals the one sent.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Collection, Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from sso_gate.exceptions import TokenValidationError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "UnknownKeyError",
    "parse_jwks",
    "validate_id_token",
    "peek_header",
]

ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_KTY_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_MAX_TOKEN = 64 * 1024


class UnknownKeyError(TokenValidationError):
    """The token names a ``kid`` the cached JWKS does not have (the caller refetches once)."""

    code = "unknown_signing_key"


def _b64json(segment: str, what: str) -> dict[str, Any]:
    try:
        padded = segment + "=" * (-len(segment) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise TokenValidationError(
            f"ID token {what} is not valid base64url JSON", code="malformed_token"
        ) from None
    if not isinstance(value, dict):
        raise TokenValidationError(f"ID token {what} is not a JSON object", code="malformed_token")
    return value


def peek_header(token: str) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        raise TokenValidationError("ID token is missing or too large", code="malformed_token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenValidationError(
            f"ID token must be a compact JWS with 3 parts, got {len(parts)}"
            + (" (encrypted ID tokens are not supported)" if len(parts) == 5 else ""),
            code="malformed_token",
        )
    return _b64json(parts[0], "header")


def parse_jwks(doc: Any) -> KeySet:
    """Import a JWKS once; keys that are not for signatures or cannot be imported are skipped."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise TokenValidationError("JWKS document has no 'keys' array", code="invalid_jwks")
    usable = [
        k
        for k in doc["keys"]
        if isinstance(k, dict)
        and k.get("kty") in ("RSA", "EC", "OKP")
        and k.get("use", "sig") == "sig"
    ]
    try:
        return KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenValidationError(
            f"JWKS could not be imported: {type(exc).__name__}", code="invalid_jwks"
        ) from None


def _select_key(keys: KeySet, kid: str | None, alg: str) -> Any:
    kty = _KTY_FOR_ALG[alg[:2]]
    candidates = [k for k in keys.keys if k.key_type == kty]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
        if not candidates:
            raise UnknownKeyError(f"no {kty} key with kid {kid!r} in the provider's JWKS")
    elif len(candidates) != 1:
        raise TokenValidationError(
            "ID token has no kid and the JWKS does not have exactly one matching key",
            code="unknown_signing_key",
        )
    key = candidates[0]
    key_alg = key.get("alg") if hasattr(key, "get") else None
    if key_alg is not None and key_alg != alg:
        raise TokenValidationError(
            f"key {kid!r} is for {key_alg}, token says {alg}", code="algorithm_mismatch"
        )
    return key


def _num(claims: Mapping[str, Any], name: str, required: bool) -> int | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenValidationError(f"ID token has no {name!r} claim", code=f"missing_{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenValidationError(
            f"ID token claim {name!r} is not a number", code=f"invalid_{name}"
        )
    return int(value)


def validate_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    allowed_algorithms: Collection[str],
    skew: int,
    trusted_audiences: Collection[str] = (),
) -> dict[str, Any]:
    """Verify signature and claims; return the claims. Raises :class:`TokenValidationError`."""
    header = peek_header(token)
    alg = header.get("alg")
    if (
        not isinstance(alg, str)
        or alg not in allowed_algorithms
        or alg not in ASYMMETRIC_ALGORITHMS
    ):
        raise TokenValidationError(
            f"ID token algorithm {alg!r} is not allowed for this connection "
            f"(allowed: {', '.join(sorted(allowed_algorithms))})",
            code="algorithm_not_allowed",
        )
    if "crit" in header:
        raise TokenValidationError("ID token header has unsupported 'crit'", code="malformed_token")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise TokenValidationError("ID token kid is not a string", code="malformed_token")
    key = _select_key(keys, kid, alg)
    try:
        obj = jws.deserialize_compact(token, key, algorithms=[alg])
    except JoseError:
        raise TokenValidationError(
            "ID token signature is not valid", code="invalid_signature"
        ) from None
    try:
        claims = json.loads(obj.payload)
    except ValueError:
        raise TokenValidationError("ID token payload is not JSON", code="malformed_token") from None
    if not isinstance(claims, dict):
        raise TokenValidationError("ID token payload is not a JSON object", code="malformed_token")

    if claims.get("iss") != issuer:
        raise TokenValidationError(
            f"ID token issuer {claims.get('iss')!r} is not the connection's issuer {issuer!r}",
            code="invalid_issuer",
        )
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud
    if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds) or not auds:
        raise TokenValidationError("ID token has no valid 'aud' claim", code="invalid_audience")
    if client_id not in auds:
        raise TokenValidationError(
            f"ID token audience {auds!r} does not include this client {client_id!r}",
            code="invalid_audience",
        )
    untrusted = [a for a in auds if a != client_id and a not in trusted_audiences]
    if untrusted:
        raise TokenValidationError(
            f"ID token lists audiences this client does not trust: {untrusted!r}",
            code="untrusted_audience",
        )
    azp = claims.get("azp")
    if (len(auds) > 1 or azp is not None) and azp != client_id:
        raise TokenValidationError(
            f"ID token azp {azp!r} must be this client when present or when there are several "
            "audiences",
            code="invalid_azp",
        )
    exp = _num(claims, "exp", True)
    iat = _num(claims, "iat", True)
    nbf = _num(claims, "nbf", False)
    assert exp is not None and iat is not None
    if now > exp + skew:
        raise TokenValidationError(
            f"ID token expired {int(now - exp)} s ago (skew allowed {skew} s)", code="token_expired"
        )
    if iat > now + skew:
        raise TokenValidationError(
            f"ID token issued {int(iat - now)} s in the future (skew allowed {skew} s)",
            code="token_issued_in_future",
        )
    if nbf is not None and nbf > now + skew:
        raise TokenValidationError(
            f"ID token not valid for another {int(nbf - now)} s", code="token_not_yet_valid"
        )
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str):
        raise TokenValidationError("ID token has no nonce", code="missing_nonce")
    if not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
        raise TokenValidationError(
            "ID token nonce does not match the one sent with this sign-in", code="invalid_nonce"
        )
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise TokenValidationError("ID token has no valid 'sub' claim", code="invalid_sub")
    return claims
