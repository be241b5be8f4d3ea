"""An in-process OIDC provider whose every answer a test can bend (httpx.MockTransport).

The real-provider tests use npm ``oidc-provider``; this fake exists to mint hostile tokens.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from sso_gate.oidc.flow import code_challenge

ISSUER = "https://idp.test"
CLIENT_ID = "client-123"
CLIENT_SECRET = "s3cret-value-for-tests"


def new_key(kid: str) -> RSAKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RSAKey.import_key(private, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeIdP:
    issuer: str = ISSUER
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    key: RSAKey = field(default_factory=lambda: new_key("k1"))
    published: list[RSAKey] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    claim_overrides: dict[str, Any] = field(default_factory=dict)
    drop_claims: set[str] = field(default_factory=set)
    header_overrides: dict[str, Any] = field(default_factory=dict)
    raw_id_token: str | None = None
    token_response_overrides: dict[str, Any] = field(default_factory=dict)
    discovery_overrides: dict[str, Any] = field(default_factory=dict)
    userinfo: dict[str, Any] | None = None
    down: bool = False
    failing: set[str] = field(default_factory=set)  # paths answering 503
    discovery_fetches: int = 0
    jwks_fetches: int = 0
    token_requests: list[httpx.Request] = field(default_factory=list)
    email: str = "alice@acme.test"

    def __post_init__(self) -> None:
        if not self.published:
            self.published = [self.key]

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport)

    # -- tokens --------------------------------------------------------------------------------

    def claims_for(self, params: dict[str, str]) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-" + self.email,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": params.get("nonce"),
            "email": params.get("login_hint") or self.email,
            "email_verified": True,
            "given_name": "Alice",
            "family_name": "Anderson",
            "groups": ["Engineering", "Admins"],
        }
        claims.update(self.claim_overrides)
        for name in self.drop_claims:
            claims.pop(name, None)
        return claims

    def mint(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        hdr = {"alg": "RS256", "kid": self.key.kid, **(header or {})}
        return jwt.encode(hdr, claims, self.key)

    # -- flow helpers --------------------------------------------------------------------------

    def accept(self, authorization_url: str) -> tuple[str, dict[str, str]]:
        """The user signs in: returns (code, the authorization request's params)."""
        parts = urlsplit(authorization_url)
        assert f"{parts.scheme}://{parts.netloc}" == self.issuer, authorization_url
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        code = secrets.token_urlsafe(16)
        self.codes[code] = params
        return code, params

    # -- HTTP ----------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        i = self.issuer
        doc = {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "jwks_uri": f"{i}/jwks",
            "userinfo_endpoint": f"{i}/userinfo",
            "id_token_signing_alg_values_supported": ["RS256", "none", "HS256"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
        doc.update(self.discovery_overrides)
        return doc

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectTimeout("timed out", request=request)
        path = request.url.path
        if path in self.failing:
            return httpx.Response(503, text="unavailable")
        if path == "/.well-known/openid-configuration":
            self.discovery_fetches += 1
            return httpx.Response(200, json=self.discovery())
        if path == "/jwks":
            self.jwks_fetches += 1
            keys = []
            for k in self.published:
                d = k.as_dict(private=False)
                d.update({"kid": k.kid, "use": "sig", "alg": "RS256"})
                keys.append(d)
            return httpx.Response(200, json={"keys": keys})
        if path == "/token":
            self.token_requests.append(request)
            return self._token(request)
        if path == "/userinfo":
            return httpx.Response(200, json=self.userinfo or {})
        return httpx.Response(404, json={"error": "not_found"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        auth = request.headers.get("authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        if cid != self.client_id or secret != self.client_secret:
            return httpx.Response(401, json={"error": "invalid_client"})
        params = self.codes.pop(form.get("code", ""), None)
        if params is None:
            return httpx.Response(400, json={"error": "invalid_grant"})
        if code_challenge(form.get("code_verifier", "")) != params["code_challenge"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "pkce"})
        if form.get("redirect_uri") != params["redirect_uri"]:
            return httpx.Response(400, json={"error": "invalid_grant"})
        id_token = self.raw_id_token or self.mint(self.claims_for(params), self.header_overrides)
        body: dict[str, Any] = {
            "access_token": "at-" + secrets.token_hex(8),
            "token_type": "Bearer",
            "id_token": id_token,
        }
        body.update(self.token_response_overrides)
        body = {k: v for k, v in body.items() if v is not None}
        return httpx.Response(
            200, content=json.dumps(body), headers={"content-type": "application/json"}
        )
