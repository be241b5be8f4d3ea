"""Authorization code flow with PKCE S256, state and nonce (OIDC Core §3.1, RFC 7636, RFC 9207)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from sso_gate.exceptions import IdPError, SSOFlowError
from sso_gate.oidc.discovery import ProviderMetadata

__all__ = [
    "FlowState",
    "new_flow_state",
    "code_challenge",
    "authorization_url",
    "token_request",
    "CallbackParams",
    "parse_callback",
]


@dataclasses.dataclass(frozen=True, slots=True)
class FlowState:
    """What the relying party remembers between the redirect and the callback."""

    state: str
    nonce: str
    code_verifier: str
    connection_id: str
    return_to: str
    binding_hash: str
    login_hint: str | None = None
    test: bool = False  # a test sign-in from the admin portal: never an app session

    def dumps(self) -> str:
        data = dataclasses.asdict(self)
        if not self.test:  # readable by instances that predate the field (rolling upgrades)
            del data["test"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str) -> FlowState:
        return cls(**json.loads(raw))


def new_flow_state(
    connection_id: str,
    return_to: str,
    binding_hash: str,
    login_hint: str | None = None,
    test: bool = False,
) -> FlowState:
    # 32 random bytes each; the PKCE verifier is 43 chars, within RFC 7636 §4.1's 43..128.
    return FlowState(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(32),
        connection_id=connection_id,
        return_to=return_to,
        binding_hash=binding_hash,
        login_hint=login_hint,
        test=test,
    )


def code_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(
    meta: ProviderMetadata,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: tuple[str, ...],
    flow: FlowState,
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": code_challenge(flow.code_verifier),
        "code_challenge_method": "S256",
    }
    if flow.login_hint:
        params["login_hint"] = flow.login_hint
    sep = "&" if "?" in meta.authorization_endpoint else "?"
    return meta.authorization_endpoint + sep + urlencode(params)


def token_request(
    *,
    code: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    code_verifier: str,
    auth_method: str,
) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Form fields and optional HTTP basic credentials of the token request (OIDC Core §3.1.3.1)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    if auth_method == "client_secret_post":
        form["client_id"] = client_id
        form["client_secret"] = client_secret
        return form, None
    # RFC 6749 §2.3.1: the credentials are form-urlencoded before base64.
    from urllib.parse import quote

    return form, (quote(client_id, safe=""), quote(client_secret, safe=""))


@dataclasses.dataclass(frozen=True, slots=True)
class CallbackParams:
    code: str
    state: str
    iss: str | None


_MAX_PARAM = 4096


def parse_callback(params: Mapping[str, Any]) -> CallbackParams:
    """Read the authorization response; an ``error`` from the IdP becomes :class:`IdPError`."""

    def one(name: str) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > _MAX_PARAM:
            raise SSOFlowError(f"callback parameter {name!r} is malformed", code="invalid_request")
        return value

    state = one("state")
    error = one("error")
    if error:
        description = one("error_description") or ""
        safe = "".join(ch for ch in f"{error}: {description}" if ch.isprintable())[:300]
        raise IdPError(f"the identity provider refused the sign-in ({safe})", code="idp_error")
    code = one("code")
    if not state:
        raise SSOFlowError("the callback has no state parameter", code="missing_state")
    if not code:
        raise SSOFlowError("the callback has no authorization code", code="missing_code")
    return CallbackParams(code=code, state=state, iss=one("iss"))
