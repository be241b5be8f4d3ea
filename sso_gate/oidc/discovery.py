"""OpenID Provider metadata (OpenID Connect Discovery 1.0 §3, §4.3)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from sso_gate.exceptions import IdPUnavailableError

__all__ = ["ProviderMetadata", "discovery_url", "parse_discovery", "check_url"]


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    code_challenge_methods: tuple[str, ...]
    iss_parameter_supported: bool
    token_endpoint_auth_methods: tuple[str, ...]


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def check_url(url: str, *, what: str, allow_http: bool) -> str:
    """An absolute https URL (http only when allowed), without fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise IdPUnavailableError(f"{what} {url!r} is not an absolute URL")
    if parts.scheme == "http" and not allow_http:
        raise IdPUnavailableError(f"{what} {url!r} must use https")
    if parts.fragment:
        raise IdPUnavailableError(f"{what} {url!r} must not have a fragment")
    return url


def parse_discovery(doc: Any, *, expected_issuer: str, allow_http: bool) -> ProviderMetadata:
    """Validate a discovery document.

    The ``issuer`` in the document must equal the configured issuer exactly (Discovery §4.3), or
    a provider could impersonate another. Signing algorithms advertised by the provider are
    deliberately ignored: the connection pins them.
    """
    if not isinstance(doc, dict):
        raise IdPUnavailableError("discovery document is not a JSON object")
    issuer = doc.get("issuer")
    if issuer != expected_issuer:
        raise IdPUnavailableError(
            f"discovery document issuer {issuer!r} does not match the configured issuer "
            f"{expected_issuer!r}"
        )

    def endpoint(name: str, required: bool = True) -> str | None:
        value = doc.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise IdPUnavailableError(f"discovery document has no valid {name}")
        return check_url(value, what=name, allow_http=allow_http)

    def str_list(name: str) -> tuple[str, ...]:
        value = doc.get(name) or ()
        if not isinstance(value, list | tuple):
            return ()
        return tuple(v for v in value if isinstance(v, str))

    auth = endpoint("authorization_endpoint")
    token = endpoint("token_endpoint")
    jwks = endpoint("jwks_uri")
    assert auth is not None and token is not None and jwks is not None
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=auth,
        token_endpoint=token,
        jwks_uri=jwks,
        userinfo_endpoint=endpoint("userinfo_endpoint", required=False),
        code_challenge_methods=str_list("code_challenge_methods_supported"),
        iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
        token_endpoint_auth_methods=str_list("token_endpoint_auth_methods_supported")
        or ("client_secret_basic",),
    )
