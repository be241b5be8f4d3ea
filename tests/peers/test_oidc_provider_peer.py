"""Smoke test of the oidc-provider peer: a full authorization code + PKCE flow by hand."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import shutil
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from .oidc_provider import drive_login, run_oidc_provider

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("node") is None, reason="node is required for the oidc-provider peer"
    ),
]

CLIENT_ID = "sso-gate-test"
CLIENT_SECRET = "test-secret-0123456789"
REDIRECT_URI = "http://127.0.0.1:9/cb"


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(_b64url_decode(token.split(".")[index]))
    return decoded


async def _exchange_code(
    client: httpx.AsyncClient, token_endpoint: str, callback: str, verifier: str
) -> dict[str, Any]:
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = await client.post(
        token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == httpx.codes.OK, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def _flow(issuer: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        discovery_response = await client.get(f"{issuer}/.well-known/openid-configuration")
        discovery_response.raise_for_status()
        discovery = discovery_response.json()
        assert discovery["issuer"] == issuer
        assert discovery["authorization_response_iss_parameter_supported"] is True
        assert discovery["code_challenge_methods_supported"] == ["S256"]
        assert discovery["response_types_supported"] == ["code"]

        state = secrets.token_urlsafe(16)
        nonce = secrets.token_urlsafe(16)
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid email profile",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        authorization_url = f"{discovery['authorization_endpoint']}?{query}"

        callback = await drive_login(client, authorization_url, "alice.smith@acme.test")

        assert callback.startswith(REDIRECT_URI + "?")
        params = parse_qs(urlsplit(callback).query)
        assert "error" not in params, params
        assert params["state"] == [state]
        assert params["iss"] == [issuer]

        tokens = await _exchange_code(client, discovery["token_endpoint"], callback, verifier)
        header = _jwt_part(tokens["id_token"], 0)
        claims = _jwt_part(tokens["id_token"], 1)

        assert header["alg"] == "RS256"
        assert claims["iss"] == issuer
        assert claims["aud"] == CLIENT_ID
        assert claims["nonce"] == nonce
        assert claims["sub"].startswith("user-")
        assert claims["email"] == "alice.smith@acme.test"
        assert claims["email_verified"] is True
        assert claims["given_name"] == "Alice"
        assert claims["family_name"] == "Smith"
        assert claims["name"] == "Alice Smith"
        assert claims["groups"] == ["Engineering"]

        userinfo_response = await client.get(
            discovery["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert userinfo_response.status_code == httpx.codes.OK, userinfo_response.text
        assert userinfo_response.json()["sub"] == claims["sub"]

        jwks = (await client.get(discovery["jwks_uri"])).json()
        assert [key["kid"] for key in jwks["keys"]] == [header["kid"]]

    # A fresh browser (no cookies) logging in as an admin gets the Admins group.
    async with httpx.AsyncClient(timeout=10) as client:
        admin_callback = await drive_login(client, authorization_url, "admin@acme.test")
        admin_tokens = await _exchange_code(
            client, discovery["token_endpoint"], admin_callback, verifier
        )
        admin_claims = _jwt_part(admin_tokens["id_token"], 1)
        assert admin_claims["given_name"] == "Admin"
        assert admin_claims["family_name"] == "Test"
        assert admin_claims["groups"] == ["Engineering", "Admins"]


def test_oidc_provider_peer_code_flow() -> None:
    clients: list[dict[str, object]] = [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_basic",
            "id_token_signed_response_alg": "RS256",
        }
    ]
    with run_oidc_provider(clients) as issuer:
        assert issuer.startswith("http://127.0.0.1:")
        asyncio.run(_flow(issuer))
