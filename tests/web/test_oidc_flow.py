"""OIDC sign-in through the gate against the in-process fake IdP: the happy path and every
attack a relying party must refuse. Nothing refused may reach the session."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from joserfc import jwt

from tests.fakes.idp import new_key
from tests.web.conftest import Env, qs

pytestmark = pytest.mark.anyio


async def no_session(env: Env) -> bool:
    r = await env.client.get("/sso-gate/sso/me")
    return r.status_code == 401


async def test_happy_path_sets_session_and_redirects(env: Env) -> None:
    url = await env.start(return_to="/dashboard?tab=1")
    params = qs(url)
    assert params["code_challenge_method"] == "S256" and params["code_challenge"]
    assert params["nonce"] and params["state"] and params["login_hint"] == "alice@acme.test"
    assert params["redirect_uri"] == env.gate.connections.redirect_uri(env.connection.id)
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 303 and r.headers["location"] == "/dashboard?tab=1"
    cookie = r.headers["set-cookie"]
    assert "sso_gate_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http base URL
    me = (await env.client.get("/sso-gate/sso/me")).json()
    prof = me["profile"]
    assert prof["email"] == "alice@acme.test" and prof["first_name"] == "Alice"
    assert prof["organization_id"] == env.org.id and prof["connection_id"] == env.connection.id
    assert prof["groups"] == ["Engineering", "Admins"] and prof["id"].startswith("prof_")
    assert prof["connection_type"] == "GenericOIDC" and "nonce" not in prof["raw_attributes"]
    home = (await env.client.get("/")).json()
    assert home["sso_user"] == "alice@acme.test"
    # the token request used PKCE and HTTP basic client auth
    form = env.idp.token_requests[-1].content.decode()
    assert "code_verifier=" in form and "client_secret" not in form


async def test_new_session_id_at_every_login(env: Env) -> None:
    await env.login()
    first = (await env.client.get("/sso-gate/sso/me")).json()["id"]
    await env.login()
    second = (await env.client.get("/sso-gate/sso/me")).json()["id"]
    assert first != second


# -- state ------------------------------------------------------------------------------------


async def test_missing_state_refused(env: Env) -> None:
    url = await env.start()
    code, _ = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, None))  # type: ignore[arg-type]
    assert r.status_code == 400 and "missing_state" in r.text
    assert await no_session(env)


async def test_mismatched_state_refused(env: Env) -> None:
    url = await env.start()
    code, _ = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, "forged-state"))
    assert r.status_code == 400 and "invalid_state" in r.text
    assert await no_session(env)


async def test_reused_state_and_code_refused(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    cb = env.callback_url(code, p["state"])
    assert (await env.client.get(cb)).status_code == 303
    env.client.cookies.delete("sso_gate_session")
    again = await env.client.get(cb)
    assert again.status_code == 400 and "invalid_state" in again.text
    assert await no_session(env)


async def test_reused_code_with_fresh_state_refused(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    assert (await env.client.get(env.callback_url(code, p["state"]))).status_code == 303
    env.client.cookies.delete("sso_gate_session")
    url2 = await env.start()
    r = await env.client.get(env.callback_url(code, qs(url2)["state"]))
    assert r.status_code == 400 and "token_exchange_failed" in r.text
    assert await no_session(env)


async def test_state_bound_to_browser(env: Env) -> None:
    """An attacker's callback URL (login CSRF) cannot be completed in the victim's browser."""
    url = await env.start()
    code, p = env.idp.accept(url)
    victim = httpx.AsyncClient(transport=env.client._transport, base_url=str(env.client.base_url))
    r = await victim.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "browser_mismatch" in r.text
    # a different flow cookie is refused too
    victim.cookies.set("sso_gate_flow", "x" * 43, domain="app.test")
    url = await env.start()
    code, p = env.idp.accept(url)
    r = await victim.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "browser_mismatch" in r.text
    await victim.aclose()


async def test_state_of_other_connection_refused(env: Env) -> None:
    other = await env.gate.organizations.create("Globex", domains=["globex.test"])
    conn2 = await env.gate.connections.create_oidc(
        other.id,
        issuer=env.idp.issuer,
        client_id=env.idp.client_id,
        client_secret=env.idp.client_secret,
    )
    url = await env.start()
    code, p = env.idp.accept(url)
    r = await env.client.get(
        f"/sso-gate/sso/oidc/{conn2.id}/callback?code={code}&state={p['state']}&iss={env.idp.issuer}"
    )
    assert r.status_code == 400 and "connection_mismatch" in r.text
    assert await no_session(env)


# -- ID token ---------------------------------------------------------------------------------


async def _callback_with(env: Env) -> httpx.Response:
    url = await env.start()
    code, p = env.idp.accept(url)
    return await env.client.get(env.callback_url(code, p["state"]))


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"iss": "https://evil.test"}, "invalid_issuer"),
        ({"aud": "someone-else"}, "invalid_audience"),
        ({"aud": ["client-123", "untrusted"], "azp": "client-123"}, "untrusted_audience"),
        ({"azp": "another-client"}, "invalid_azp"),
        ({"exp": int(time.time()) - 3600}, "token_expired"),
        (
            {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 7200},
            "token_issued_in_future",
        ),
        ({"nbf": int(time.time()) + 3600}, "token_not_yet_valid"),
        ({"nonce": "not-the-nonce"}, "invalid_nonce"),
        ({"email_verified": False}, "email_not_verified"),
        ({"email": "mallory@globex.test"}, "email_domain_mismatch"),
        ({"sub": ""}, "invalid_sub"),
    ],
)
async def test_bad_claims_refused(env: Env, overrides: dict[str, object], code: str) -> None:
    env.idp.claim_overrides = overrides
    r = await _callback_with(env)
    assert r.status_code == 400, r.text
    assert f'<code id="code">{code}</code>' in r.text
    assert await no_session(env)


@pytest.mark.parametrize("claim", ["nonce", "exp", "iat", "aud", "email"])
async def test_missing_claims_refused(env: Env, claim: str) -> None:
    env.idp.drop_claims = {claim}
    r = await _callback_with(env)
    assert r.status_code == 400
    assert await no_session(env)


async def test_multiple_audiences_need_azp(env: Env) -> None:
    env.gate.connections._cache.clear()
    conn = await env.gate.connections.create_oidc(
        env.org.id,
        issuer=env.idp.issuer,
        client_id=env.idp.client_id,
        client_secret=env.idp.client_secret,
        additional_trusted_audiences=["api://trusted"],
    )
    env.connection = conn
    env.idp.claim_overrides = {"aud": ["client-123", "api://trusted"]}
    url = (await env.client.get(f"/sso-gate/sso/authorize?connection={conn.id}")).headers[
        "location"
    ]
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "invalid_azp" in r.text
    env.idp.claim_overrides = {"aud": ["client-123", "api://trusted"], "azp": "client-123"}
    url = (await env.client.get(f"/sso-gate/sso/authorize?connection={conn.id}")).headers[
        "location"
    ]
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 303


def _unsigned(claims: dict[str, object], header: dict[str, object]) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc(header)}.{enc(claims)}."


async def test_alg_none_refused(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    env.idp.raw_id_token = _unsigned(env.idp.claims_for(p), {"alg": "none", "kid": "k1"})
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "algorithm_not_allowed" in r.text
    assert await no_session(env)


async def test_hs256_signed_with_public_key_refused(env: Env) -> None:
    """Algorithm confusion: HMAC keyed with the provider's public RSA key."""
    url = await env.start()
    code, p = env.idp.accept(url)
    from cryptography.hazmat.primitives import serialization

    pem = env.idp.key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    signing_input = _unsigned(env.idp.claims_for(p), {"alg": "HS256", "kid": "k1"})[:-1]
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    env.idp.raw_id_token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "algorithm_not_allowed" in r.text
    assert await no_session(env)


async def test_token_signed_by_unpublished_key_refused(env: Env) -> None:
    """Certificate faking: a token signed by the attacker's key claiming the IdP's kid."""
    url = await env.start()
    code, p = env.idp.accept(url)
    attacker = new_key("k1")
    env.idp.raw_id_token = jwt.encode(
        {"alg": "RS256", "kid": "k1"}, env.idp.claims_for(p), attacker
    )
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "invalid_signature" in r.text
    assert await no_session(env)


async def test_tampered_payload_refused(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    good = env.idp.mint(env.idp.claims_for(p))
    h, payload, sig = good.split(".")
    claims = env.idp.claims_for(p) | {"email": "ceo@acme.test"}
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    env.idp.raw_id_token = f"{h}.{forged_payload}.{sig}"
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "invalid_signature" in r.text


async def test_unknown_kid_refetches_jwks_once(env: Env) -> None:
    assert (await env.login()).status_code == 303
    fetches = env.idp.jwks_fetches
    # the IdP rotates to a new key: one refetch, then the login works
    env.idp.key = new_key("k2")
    env.idp.published = [env.idp.key]
    assert (await env.login()).status_code == 303
    assert env.idp.jwks_fetches == fetches + 1
    # a kid the IdP never publishes: one refetch, then refused
    env.idp.key = new_key("k-rogue")
    r = await env.login()
    assert r.status_code == 400 and "unknown_signing_key" in r.text
    assert env.idp.jwks_fetches == fetches + 2


async def test_missing_id_token_refused(env: Env) -> None:
    env.idp.token_response_overrides = {"id_token": None}
    r = await _callback_with(env)
    assert r.status_code == 400 and "missing_id_token" in r.text
    assert await no_session(env)


async def test_encrypted_or_garbage_token_refused(env: Env) -> None:
    env.idp.raw_id_token = "a.b.c.d.e"
    r = await _callback_with(env)
    assert r.status_code == 400 and "malformed_token" in r.text


# -- RFC 9207 iss parameter -------------------------------------------------------------------


async def test_wrong_iss_parameter_refused(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"], iss="https://evil.test"))
    assert r.status_code == 400 and "invalid_iss_parameter" in r.text
    assert await no_session(env)


async def test_missing_iss_parameter_refused_when_advertised(env: Env) -> None:
    url = await env.start()
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"], iss=None))  # type: ignore[arg-type]
    assert r.status_code == 400 and "missing_iss_parameter" in r.text


# -- IdP errors and outages -------------------------------------------------------------------


async def test_idp_error_response(env: Env) -> None:
    url = await env.start()
    state = qs(url)["state"]
    r = await env.client.get(
        f"/sso-gate/sso/oidc/{env.connection.id}/callback?error=access_denied"
        f"&error_description=User+cancelled&state={state}"
    )
    assert r.status_code == 400 and "idp_error" in r.text and "access_denied" in r.text
    assert "Traceback" not in r.text
    events = await _events(env, "authentication.sso_failed")
    assert events and events[-1]["error"]["code"] == "idp_error"


async def test_idp_unreachable_is_a_clear_502(env: Env) -> None:
    env.gate.sso._discovery.clear()
    env.gate.sso._last.clear()  # never fetched: no last good document either
    env.idp.down = True
    r = await env.client.get("/sso-gate/sso/authorize?email=alice@acme.test")
    assert r.status_code == 502 and "idp_timeout" in r.text
    r = await env.client.get(
        "/sso-gate/sso/authorize?email=alice@acme.test", headers={"accept": "application/json"}
    )
    assert r.json()["code"] == "idp_timeout"


async def test_discovery_issuer_mismatch_refused(env: Env) -> None:
    await env.login()  # a last good document exists: a wrong one is still refused
    env.gate.sso._discovery.clear()
    env.idp.discovery_overrides = {"issuer": "https://other.test"}
    r = await env.client.get("/sso-gate/sso/authorize?email=alice@acme.test")
    assert r.status_code == 502 and "does not match" in r.text


async def test_expired_discovery_and_jwks_fall_back_to_the_last_good_ones(env: Env) -> None:
    """Cache expiry during an IdP outage: the last good discovery document and JWKS keep
    sign-ins working (with a warning), and the IdP is not asked again for a minute."""
    assert (await env.login()).status_code == 303
    env.gate.sso._discovery.clear()  # both expire
    env.gate.sso._jwks.clear()
    env.idp.failing = {"/.well-known/openid-configuration", "/jwks"}
    fetches = env.idp.discovery_fetches, env.idp.jwks_fetches
    r = await env.login()
    assert r.status_code == 303 and "sso-gate" not in r.headers["location"], r.text
    env.gate.sso._discovery.clear()
    env.gate.sso._jwks.clear()
    assert (await env.login()).status_code == 303  # within the cool-down: not asked again
    assert (env.idp.discovery_fetches, env.idp.jwks_fetches) == fetches
    env.gate.sso._cooldown.clear()  # a minute later the IdP is back
    env.idp.failing = set()
    env.gate.sso._discovery.clear()
    env.gate.sso._jwks.clear()
    assert (await env.login()).status_code == 303
    assert env.idp.discovery_fetches == fetches[0] + 1 and env.idp.jwks_fetches == fetches[1] + 1


async def test_unknown_kid_needs_fresh_keys(env: Env) -> None:
    """A token signed with a key the last good JWKS does not have is refused while the JWKS
    endpoint is down: stale keys stand in only for keys they contain."""
    assert (await env.login()).status_code == 303
    env.idp.key = new_key("k2")
    env.idp.published = [env.idp.key]
    env.gate.sso._jwks.clear()
    env.idp.failing = {"/jwks"}
    r = await env.login()
    assert r.status_code == 502 and "idp_http_error" in r.text


async def test_unknown_connection(env: Env) -> None:
    r = await env.client.get("/sso-gate/sso/oidc/conn_NOPE/callback?code=x&state=y")
    assert r.status_code == 400 and "unknown_connection" in r.text


async def test_userinfo_sub_must_match(env: Env) -> None:
    conn = await env.gate.connections.create_oidc(
        env.org.id,
        issuer=env.idp.issuer,
        client_id=env.idp.client_id,
        client_secret=env.idp.client_secret,
        use_userinfo=True,
    )
    env.connection = conn
    env.idp.userinfo = {"sub": "someone-else", "email": "alice@acme.test"}
    url = (await env.client.get(f"/sso-gate/sso/authorize?connection={conn.id}")).headers[
        "location"
    ]
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 400 and "userinfo_sub_mismatch" in r.text
    env.idp.userinfo = {"sub": "user-alice@acme.test", "department": "R&D"}
    url = (await env.client.get(f"/sso-gate/sso/authorize?connection={conn.id}")).headers[
        "location"
    ]
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.status_code == 303
    me = (await env.client.get("/sso-gate/sso/me")).json()
    assert me["profile"]["raw_attributes"]["department"] == "R&D"


async def test_inactive_connection_cannot_start(env: Env) -> None:
    await env.gate.connections.deactivate(env.connection.id)
    r = await env.client.get(f"/sso-gate/sso/authorize?connection={env.connection.id}")
    assert r.status_code == 400 and "connection_inactive" in r.text


# -- return_to --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
        "/ok\x00",
        "http://app.test.evil.example/",
        "http://user@app.test/",
        "\t//evil.example",
    ],
)
async def test_open_redirects_refused(env: Env, target: str) -> None:
    r = await env.client.get(
        "/sso-gate/sso/authorize", params={"email": "alice@acme.test", "return_to": target}
    )
    assert r.status_code == 400 and "invalid_return_to" in r.text
    assert "location" not in r.headers


async def test_same_origin_absolute_return_to_accepted(env: Env) -> None:
    url = await env.start(return_to="http://app.test/dashboard")
    code, p = env.idp.accept(url)
    r = await env.client.get(env.callback_url(code, p["state"]))
    assert r.headers["location"] == "/dashboard"


# -- events -----------------------------------------------------------------------------------


async def _events(env: Env, name: str) -> list[dict[str, object]]:
    import sqlalchemy as sa

    from sso_gate.store.tables import events

    async with env.gate._rt.read() as conn:
        rows = (await conn.execute(sa.select(events).where(events.c.event == name))).all()
    return [r.data for r in rows]


async def test_success_event_recorded(env: Env) -> None:
    await env.login()
    evs = await _events(env, "authentication.sso_succeeded")
    assert evs and evs[0]["email"] == "alice@acme.test"
