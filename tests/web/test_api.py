"""Management API: WorkOS paths and shapes, bearer auth, clear 4xx for bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sso_gate import SSOGate
from tests.conftest import ADMIN_KEY, make_settings
from tests.web.conftest import inner_app

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def api(gate: SSOGate) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())),
        base_url="http://app.test/sso-gate/api",
        headers=AUTH,
    ) as c:
        yield c


async def test_auth_required(api: httpx.AsyncClient) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic x"},
    ):
        r = await api.get("/organizations", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_api_off_without_key(database_url: str) -> None:
    g = SSOGate(make_settings(database_url, admin_api_key=None))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=g.wrap(inner_app())), base_url="http://app.test"
    ) as c:
        r = await c.get("/sso-gate/api/organizations", headers=AUTH)
        assert r.status_code == 404 and r.json()["code"] == "api_disabled"
    await g.aclose()


async def test_organization_crud(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/organizations",
        json={"name": "Acme", "domains": ["Acme.test", "acme.example"], "sso_policy": "required"},
    )
    assert r.status_code == 201, r.text
    org = r.json()
    assert org["object"] == "organization" and org["id"].startswith("org_")
    assert sorted(d["domain"] for d in org["domains"]) == ["acme.example", "acme.test"]
    assert org["domains"][0]["object"] == "organization_domain"
    assert org["created_at"].endswith("Z")
    got = (await api.get(f"/organizations/{org['id']}")).json()
    assert got == org
    r = await api.put(
        f"/organizations/{org['id']}",
        json={"name": "Acme Inc", "domains": ["acme.test", "acme.io"]},
    )
    assert r.json()["name"] == "Acme Inc"
    assert sorted(d["domain"] for d in r.json()["domains"]) == ["acme.io", "acme.test"]
    r = await api.post(f"/organizations/{org['id']}/domains", json={"domain": "acme.dev"})
    assert r.status_code == 201 and len(r.json()["domains"]) == 3
    r = await api.delete(f"/organizations/{org['id']}/domains/acme.dev")
    assert len(r.json()["domains"]) == 2
    # WorkOS domain_data form
    r = await api.post(
        "/organizations",
        json={"name": "Globex", "domain_data": [{"domain": "globex.test", "state": "pending"}]},
    )
    assert r.status_code == 201
    listed = (await api.get("/organizations", params={"domains": "globex.test"})).json()
    assert [o["name"] for o in listed["data"]] == ["Globex"]
    assert (await api.delete(f"/organizations/{org['id']}")).status_code == 204
    assert (await api.get(f"/organizations/{org['id']}")).status_code == 404


async def test_pagination(api: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):
        ids.append((await api.post("/organizations", json={"name": f"Org {i}"})).json()["id"])
    page1 = (await api.get("/organizations", params={"limit": 2})).json()
    assert [o["id"] for o in page1["data"]] == ids[::-1][:2]
    assert page1["list_metadata"]["before"] is None
    page2 = (
        await api.get(
            "/organizations", params={"limit": 2, "after": page1["list_metadata"]["after"]}
        )
    ).json()
    assert [o["id"] for o in page2["data"]] == ids[::-1][2:4]
    back = (
        await api.get(
            "/organizations", params={"limit": 2, "before": page2["list_metadata"]["before"]}
        )
    ).json()
    assert [o["id"] for o in back["data"]] == ids[::-1][:2]
    asc = (await api.get("/organizations", params={"order": "asc", "limit": 100})).json()
    assert [o["id"] for o in asc["data"]] == ids and asc["list_metadata"]["after"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "X", "domains": ["gmail.com"]}, "domains"),
        ({"name": "X", "domains": ["not a domain"]}, "domains"),
        ({"name": "X", "domains": ["127.0.0.1"]}, "domains"),
        ({"name": "X", "domains": "acme.test"}, "domains"),
        ({"name": "X", "domains": ["a.test", "A.test"]}, "domains"),
        ({"name": "X", "sso_policy": "sometimes"}, "sso_policy"),
    ],
)
async def test_organization_validation(
    api: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    r = await api.post("/organizations", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["message"]


async def test_domain_belongs_to_one_org(api: httpx.AsyncClient) -> None:
    await api.post("/organizations", json={"name": "A", "domains": ["shared.test"]})
    r = await api.post("/organizations", json={"name": "B", "domains": ["shared.test"]})
    assert r.status_code == 409 and r.json()["code"] == "domain_taken"
    assert len((await api.get("/organizations")).json()["data"]) == 1  # nothing half-written


async def test_bad_bodies(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/organizations", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"
    r = await api.post(
        "/organizations", content=b"[]", headers={"content-type": "application/json"}
    )
    assert r.json()["code"] == "malformed_body"
    r = await api.post("/organizations", content=b"name=x", headers={"content-type": "text/plain"})
    assert r.json()["code"] == "invalid_content_type"
    r = await api.post(
        "/organizations",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    for params in (
        {"limit": "0"},
        {"limit": "abc"},
        {"order": "up"},
        {"before": "a", "after": "b"},
    ):
        r = await api.get("/organizations", params=params)
        assert r.status_code == 422


async def test_connection_crud(api: httpx.AsyncClient) -> None:
    org = (await api.post("/organizations", json={"name": "Acme", "domains": ["acme.test"]})).json()
    body = {
        "organization_id": org["id"],
        "name": "Okta",
        "connection_type": "OktaOIDC",
        "oidc": {
            "issuer": "https://acme.okta.test",
            "client_id": "cid",
            "client_secret": "very-secret",
        },
    }
    r = await api.post("/connections", json=body)
    assert r.status_code == 201, r.text
    conn = r.json()
    assert conn["object"] == "connection" and conn["id"].startswith("conn_")
    assert conn["state"] == "active" and conn["connection_type"] == "OktaOIDC"
    assert (
        conn["oidc"]["redirect_uri"] == f"http://app.test/sso-gate/sso/oidc/{conn['id']}/callback"
    )
    assert "very-secret" not in r.text and "client_secret" not in conn["oidc"]
    assert (await api.post(f"/connections/{conn['id']}/deactivate")).json()["state"] == "inactive"
    listed = (await api.get("/connections", params={"organization_id": org["id"]})).json()
    assert [c["id"] for c in listed["data"]] == [conn["id"]]
    assert (await api.post(f"/connections/{conn['id']}/activate")).json()["state"] == "active"
    assert (await api.delete(f"/connections/{conn['id']}")).status_code == 204
    assert (await api.get(f"/connections/{conn['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("oidc", "field"),
    [
        ({"client_id": "c", "client_secret": "s"}, "issuer"),
        ({"issuer": "ftp://x", "client_id": "c", "client_secret": "s"}, "issuer"),
        ({"issuer": "https://x.test", "client_secret": "s"}, "client_id"),
        (
            {
                "issuer": "https://x.test",
                "client_id": "c",
                "client_secret": "s",
                "allowed_algorithms": ["HS256"],
            },
            "allowed_algorithms",
        ),
        (
            {
                "issuer": "https://x.test",
                "client_id": "c",
                "client_secret": "s",
                "allowed_algorithms": ["none"],
            },
            "allowed_algorithms",
        ),
        (
            {
                "issuer": "https://x.test",
                "client_id": "c",
                "client_secret": "s",
                "scopes": ["email"],
            },
            "scopes",
        ),
    ],
)
async def test_connection_validation(
    api: httpx.AsyncClient, oidc: dict[str, object], field: str
) -> None:
    org = (await api.post("/organizations", json={"name": "Acme"})).json()
    r = await api.post("/connections", json={"organization_id": org["id"], "oidc": oidc})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


async def test_http_issuer_refused_in_production(database_url: str) -> None:
    g = SSOGate(make_settings(database_url, environment="production", base_url="https://app.test"))
    await g.migrate()
    org = await g.organizations.create("Acme")
    from sso_gate import ValidationError

    with pytest.raises(ValidationError) as info:
        await g.connections.create_oidc(
            org.id, issuer="http://idp.test", client_id="c", client_secret="s"
        )
    assert info.value.field == "issuer"
    await g.aclose()


async def test_connection_for_unknown_org(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/connections",
        json={
            "organization_id": "org_nope",
            "oidc": {"issuer": "https://x.test", "client_id": "c", "client_secret": "s"},
        },
    )
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"


async def test_openapi_document(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert {"/organizations", "/connections", "/connections/{id}/activate"} <= set(doc["paths"])


async def test_saml_connection_via_api(api: httpx.AsyncClient) -> None:
    from tests.fakes.saml_idp import FakeSamlIdP

    idp = FakeSamlIdP()
    org = (await api.post("/organizations", json={"name": "Acme", "domains": ["acme.test"]})).json()
    r = await api.post(
        "/connections",
        json={
            "organization_id": org["id"],
            "connection_type": "OktaSAML",
            "saml": {"metadata_xml": idp.metadata(), "sign_requests": True},
        },
    )
    assert r.status_code == 201, r.text
    conn = r.json()
    saml = conn["saml"]
    assert saml["acs_url"] == f"http://app.test/sso-gate/sso/saml/{conn['id']}/acs"
    assert saml["sp_entity_id"] == saml["sp_metadata_url"] and saml["sign_requests"] is True
    assert saml["idp_entity_id"] == idp.entity_id and saml["attribute_preset"] == "okta"
    assert "PRIVATE KEY" not in r.text
    r = await api.put(
        f"/connections/{conn['id']}/saml_idp",
        json={
            "idp_entity_id": idp.entity_id,
            "sso_url": "https://idp.example.test/sso2",
            "certificates": [idp.cert_pem],
        },
    )
    assert r.json()["saml"]["sso_url"] == "https://idp.example.test/sso2"
    r = await api.post(f"/connections/{conn['id']}/refresh_metadata")
    assert r.status_code == 422 and r.json()["field"] == "metadata_url"
    r = await api.post(
        "/connections", json={"organization_id": org["id"], "saml": {"metadata_xml": "<nope/>"}}
    )
    assert r.status_code == 422 and "metadata" in r.json()["message"]


async def test_role_mapping_refuses_nul(api: httpx.AsyncClient) -> None:
    """Found by the API fuzz: role mapping lives in a JSON column, which no string column type
    checks, so U+0000 was stored and answered back (the OpenAPI document forbids it)."""
    org = (await api.post("/organizations", json={"name": "Acme"})).json()
    url = f"/organizations/{org['id']}/role_mapping"
    for body in (
        {"role_mapping": [{"group": "Admins", "role": "admin"}, {"group": "x\x00", "role": "r"}]},
        {"role_mapping": [{"group": "Admins", "role": "ad\x00min"}]},
        {"role_mapping": [], "default_role": "member\x00"},
    ):
        r = await api.put(url, json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_text" and "U+0000" in r.json()["message"]
    ok = await api.put(url, json={"role_mapping": [{"group": "Admins", "role": "admin"}]})
    assert ok.status_code == 200 and ok.json()["role_mapping"] == [
        {"group": "Admins", "role": "admin"}
    ]


async def test_connection_settings_refuse_nul(api: httpx.AsyncClient) -> None:
    """Found by probing after the role-mapping fuzz find: OIDC and SAML settings live in a JSON
    column too; U+0000 anywhere in them is a 422 naming the field, and nothing is created."""
    org = (await api.post("/organizations", json={"name": "Acme", "domains": ["acme.test"]})).json()
    oidc = {"issuer": "https://acme.okta.test", "client_id": "cid", "client_secret": "s"}
    for key, value in (
        ("client_id", "c\x00id"),
        ("client_secret", "s\x00"),
        ("scopes", ["openid", "em\x00ail"]),
    ):
        body = {"organization_id": org["id"], "oidc": {**oidc, key: value}}
        r = await api.post("/connections", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid_text" and r.json()["field"] == key
    saml = {"idp_entity_id": "urn:idp", "sso_url": "https://idp.test/sso\x00", "certificates": []}
    r = await api.post("/connections", json={"organization_id": org["id"], "saml": saml})
    assert r.status_code == 422 and r.json()["field"] == "sso_url", r.text
    # in a map's key too (found by the long API fuzz: the document did not say so of keys)
    saml = {**saml, "sso_url": "https://idp.test/sso", "custom_attributes": {"de\x00pt": "d"}}
    r = await api.post("/connections", json={"organization_id": org["id"], "saml": saml})
    assert r.status_code == 422 and r.json()["field"] == "custom_attributes", r.text
    document = (await api.get("/openapi.json")).json()
    saml_schema = document["components"]["schemas"]["ConnectionCreate"]["properties"]["saml"]
    keys = saml_schema["properties"]["custom_attributes"]["propertyNames"]
    assert keys == {"type": "string", "not": {"type": "string", "pattern": "\x00"}}
    listed = (await api.get("/connections", params={"organization_id": org["id"]})).json()
    assert listed["data"] == []
