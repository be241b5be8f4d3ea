"""The development IdP forgets expired authorization codes and access tokens (found while writing
the load test, by reading the dev IdP: every OIDC login left its access token, and every
abandoned login its code, in the IdP's memory for the life of the process)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sso_gate import devidp
from sso_gate.devidp import DevIdP
from sso_gate.oidc.flow import code_challenge
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

REDIRECT = "http://app.test/sso-gate/sso/oidc/conn_1/callback"


async def test_expired_codes_and_tokens_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_settings(f"sqlite:///{tmp_path / 'x.db'}", environment="development")
    idp = DevIdP(s, issuer="http://app.test/dev-idp", clients={"c": ("secret", REDIRECT)})
    now = [1_000_000.0]
    monkeypatch.setattr(devidp.time, "time", lambda: now[0])
    verifier = "v" * 50
    form = {
        "client_id": "c",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "code_challenge_method": "S256",
        "code_challenge": code_challenge(verifier),
        "email": "a@acme.test",
    }
    transport = httpx.ASGITransport(app=idp.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as c:

        async def login(redeem: bool) -> None:
            r = await c.post("/authorize", data=form)
            assert r.status_code == 303
            if redeem:
                code = httpx.URL(r.headers["location"]).params["code"]
                r = await c.post(
                    "/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT,
                        "code_verifier": verifier,
                        "client_id": "c",
                        "client_secret": "secret",
                    },
                )
                assert r.status_code == 200, r.text

        for i in range(600):  # half abandoned after the redirect, half completed
            await login(redeem=i % 2 == 0)
            now[0] += 10  # codes live 60 s, access tokens 300 s
        # 300 codes were abandoned and 300 tokens issued; without the sweep all stay. With it,
        # what is left is what is still valid plus at most one sweep interval's worth.
        assert len(idp._codes) < 256 and len(idp._tokens) < 150
        assert sum(exp > now[0] for _, exp in idp._tokens.values()) >= 10
