"""The bugs the fuzz runs found, each pinned by a deterministic test (``fuzz/README.md``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from lxml import etree

from sso_gate import SSOGate
from sso_gate._time import isoformat
from sso_gate.exceptions import TokenValidationError
from sso_gate.saml.response import verify_response
from sso_gate.scim.errors import SCIMError
from tests.conftest import ADMIN_KEY, make_settings
from tests.fuzz._harness import inner_app, no_network
from tests.fuzz.test_saml_fuzz import VARIANTS
from tests.fuzz.test_scim_properties import base_user, patch

DS = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.mark.parametrize("variant", ["assertion-signed", "response-signed"])
def test_signature_without_signed_info_is_refused_not_a_crash(variant: str) -> None:
    raw, exp, _ = VARIANTS[variant]
    root = etree.fromstring(raw)
    for signed_info in root.iter(f"{DS}SignedInfo"):
        signed_info.getparent().remove(signed_info)
    with pytest.raises(TokenValidationError) as info:
        verify_response(base64.b64encode(etree.tostring(root)).decode(), exp)
    assert info.value.code == "invalid_signature"


def test_timestamps_have_four_digit_years() -> None:
    assert isoformat(datetime(228, 10, 8, 19, 41, 39, 600999, tzinfo=UTC)) == (
        "0228-10-08T19:41:39.600Z"
    )
    assert isoformat(datetime(2026, 11, 28, 19, 44, 19, 123456)) == "2026-11-28T19:44:19.123Z"


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    gate = SSOGate(make_settings(database_url, worker="off"))
    await gate.migrate()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())),
        base_url="http://app.test/sso-gate/api",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client
    await gate.aclose()


@pytest.mark.anyio
async def test_405_lists_every_method_of_the_path(api: httpx.AsyncClient) -> None:
    r = await api.patch("/organizations/org_1", json={})
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, HEAD, PUT"
    assert r.json()["code"] == "method_not_allowed"
    assert (await api.get("/organizations/org_1")).status_code == 404  # still routed


@pytest.mark.anyio
async def test_values_once_taken_as_absent_are_refused(api: httpx.AsyncClient) -> None:
    org = (await api.post("/organizations", json={"name": "Acme"})).json()["id"]
    endpoint = {"url": "https://hooks.example.com/in", "events": ["*"]}
    with no_network():
        hook = (await api.post("/webhook_endpoints", json=endpoint)).json()["id"]
    refused = [
        await api.get("/connections", params={"state": "bogus"}),
        await api.get("/events", params={"range_start": ""}),
        await api.get(f"/webhook_endpoints/{hook}/deliveries", params={"status": ""}),
        await api.post("/directories", json={"organization_id": org, "type": ""}),
        await api.post(
            "/connections",
            json={
                "organization_id": org,
                "connection_type": "",
                "oidc": {"issuer": "https://idp.test", "client_id": "c", "client_secret": "s"},
            },
        ),
        await api.post(
            "/audit_logs/events",
            json={
                "organization_id": org,
                "event": {"action": "a.b", "actor": {"type": "u", "id": "1"}, "context": False},
            },
        ),
    ]
    assert [r.status_code for r in refused] == [422] * len(refused), [r.text for r in refused]


@pytest.mark.anyio
async def test_integral_floats_are_integers(api: httpx.AsyncClient) -> None:
    org = (await api.post("/organizations", json={"name": "Acme"})).json()["id"]
    r = await api.put(f"/organizations/{org}/audit_log_retention", json={"retention_days": 30.0})
    assert r.status_code == 200, r.text
    assert r.json()["retention_days"] == 30


def test_replace_that_unselects_its_target_is_idempotent() -> None:
    """replace emails[type eq "work"] with {"type": "home"}: done once, the second time there is
    no work email, and the Entra seeding ({"type": "work"} created for a filter that matches
    nothing) must not create a value the filter does not select."""
    op = {"op": "replace", "path": 'emails[type eq "work"]', "value": {"type": "home"}}
    user = base_user()
    once = patch(user, op)
    assert [e["type"] for e in once["emails"]] == ["home"]
    with pytest.raises(SCIMError) as info:
        patch(once, op)
    assert info.value.scim_type == "noTarget"
    # the seeding itself still works (Entra: replace emails[type eq "work"].value)
    seeded = patch(once, {**op, "path": 'emails[type eq "work"].value', "value": "w@x.org"})
    assert {"type": "work", "value": "w@x.org"} in seeded["emails"]
