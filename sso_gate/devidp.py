"""A development OpenID provider for ``sso-gate demo`` and tests: pick or type a user, sign in.

It is a real (small) OIDC provider: discovery, authorization code + PKCE S256, RS256 ID tokens,
JWKS, userinfo. Refuses to be built unless the settings say ``environment=development``.
Never use it in production: it authenticates anyone who types an email.
"""

from __future__ import annotations

import dataclasses
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sso_gate._crypto import constant_time_equals
from sso_gate.exceptions import ConfigurationError
from sso_gate.oidc.flow import code_challenge
from sso_gate.settings import Settings

__all__ = ["DevIdP", "DevUser"]


@dataclasses.dataclass(frozen=True)
class DevUser:
    email: str
    first_name: str
    last_name: str
    groups: tuple[str, ...] = ()


@dataclasses.dataclass
class _Code:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    email: str
    expires: float


class DevIdP:
    """Mount ``idp.app`` at the issuer path; ``clients`` maps id to (secret, redirect prefix)."""

    def __init__(
        self,
        settings: Settings,
        issuer: str,
        clients: dict[str, tuple[str, str]],
        users: list[DevUser] | None = None,
        saml_acs_prefix: str | None = None,
    ) -> None:
        if not settings.is_development:
            raise ConfigurationError(
                "the development IdP runs only with SSO_GATE_ENVIRONMENT=development"
            )
        self.issuer = issuer.rstrip("/")
        self.clients = clients
        self.users = users or []
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key = RSAKey.import_key(private, parameters={"use": "sig", "alg": "RS256"})
        self.kid = secrets.token_hex(8)
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._writes = 0
        from sso_gate.devidp_saml import DevSamlIdP

        self.saml = DevSamlIdP(self, saml_acs_prefix or "")
        self.app = Starlette(
            routes=[
                *self.saml.routes(),
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize, methods=["GET"]),
                Route("/authorize", self.approve, methods=["POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
                Route("/userinfo", self.userinfo),
            ]
        )

    def user(self, email: str) -> DevUser:
        for u in self.users:
            if u.email == email:
                return u
        local = email.split("@")[0]
        first, _, last = local.partition(".")
        return DevUser(email, first.capitalize(), last.capitalize() or "User", ("Everyone",))

    async def discovery(self, request: Request) -> Response:
        i = self.issuer
        return JSONResponse(
            {
                "issuer": i,
                "authorization_endpoint": f"{i}/authorize",
                "token_endpoint": f"{i}/token",
                "jwks_uri": f"{i}/jwks",
                "userinfo_endpoint": f"{i}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "authorization_response_iss_parameter_supported": True,
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    def _check_request(self, params: Any) -> str | None:
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return "unknown client_id"
        if not params.get("redirect_uri", "").startswith(client[1]):
            return "redirect_uri is not registered for this client"
        if params.get("response_type") != "code":
            return "response_type must be code"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "PKCE S256 is required"
        return None

    async def authorize(self, request: Request) -> Response:
        p = request.query_params
        error = self._check_request(p)
        if error:
            return HTMLResponse(f"<h1>Bad request</h1><p>{html.escape(error)}</p>", 400)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in p.items()
        )
        buttons = "".join(
            f'<li><button name="email" value="{html.escape(u.email)}">{html.escape(u.first_name)} '
            f"{html.escape(u.last_name)} &lt;{html.escape(u.email)}&gt;</button></li>"
            for u in self.users
        )
        hint = html.escape(p.get("login_hint", ""))
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Dev IdP</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto}}</style></head>
<body><h1>sso_gate development IdP</h1>
<p>Not for production: signs in whoever you pick.</p>
<form method="post">{hidden}<ul>{buttons}</ul></form>
<form method="post">{hidden}<label>Or type an email
<input type="email" name="email" id="email" value="{hint}" required></label>
<button type="submit" id="signin">Sign in</button></form></body></html>"""
        return HTMLResponse(page)

    async def approve(self, request: Request) -> Response:
        form = await request.form()
        p = {k: str(v) for k, v in form.items()}
        error = self._check_request(p)
        email = p.get("email", "").strip()
        if error or "@" not in email:
            return HTMLResponse("<h1>Bad request</h1>", 400)
        code = secrets.token_urlsafe(24)
        self._sweep()
        self._codes[code] = _Code(
            p["client_id"],
            p["redirect_uri"],
            p.get("nonce"),
            p["code_challenge"],
            email,
            time.time() + 60,
        )
        query = {"code": code, "iss": self.issuer}
        if p.get("state"):
            query["state"] = p["state"]
        return RedirectResponse(f"{p['redirect_uri']}?{urlencode(query)}", status_code=303)

    def _sweep(self) -> None:
        """Drop expired codes (never redeemed) and access tokens every 256 writes, so a
        long-running demo's memory stays bounded by what is still valid."""
        self._writes += 1
        if self._writes % 256:
            return
        now = time.time()
        self._codes = {k: c for k, c in self._codes.items() if c.expires > now}
        self._tokens = {k: t for k, t in self._tokens.items() if t[1] > now}

    def _client_auth(self, request: Request, form: Any) -> str | None:
        import base64
        from urllib.parse import unquote

        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            raw = base64.b64decode(auth[6:]).decode()
            cid, _, secret = raw.partition(":")
            cid, secret = unquote(cid), unquote(secret)
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.clients.get(cid)
        if client is None or not constant_time_equals(client[0], secret):
            return None
        return str(cid)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        client_id = self._client_auth(request, form)
        if client_id is None:
            return JSONResponse({"error": "invalid_client"}, 401)
        code = self._codes.pop(str(form.get("code", "")), None)
        if (
            code is None
            or code.expires < time.time()
            or code.client_id != client_id
            or code.redirect_uri != form.get("redirect_uri")
            or code_challenge(str(form.get("code_verifier", ""))) != code.challenge
        ):
            return JSONResponse({"error": "invalid_grant"}, 400)
        user = self.user(code.email)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "dev|" + user.email,
            "aud": client_id,
            "iat": now,
            "exp": now + 300,
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "groups": list(user.groups),
        }
        if code.nonce:
            claims["nonce"] = code.nonce
        id_token = jwt.encode({"alg": "RS256", "kid": self.kid}, claims, self.key)
        access = secrets.token_urlsafe(24)
        self._sweep()
        self._tokens[access] = (user.email, now + 300)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )

    async def jwks(self, request: Request) -> Response:
        public = self.key.as_dict(private=False)
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": [public]})

    async def userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "")[7:]
        entry = self._tokens.get(token)
        if entry is None or entry[1] < time.time():
            return JSONResponse({"error": "invalid_token"}, 401)
        user = self.user(entry[0])
        return JSONResponse(
            {
                "sub": "dev|" + user.email,
                "email": user.email,
                "given_name": user.first_name,
                "family_name": user.last_name,
                "groups": list(user.groups),
            }
        )
