"""Management API for audit log streams: every route, bearer auth, secrets never in an answer,
the test send, delivery through the worker, clear 4xx errors, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sso_gate import SSOGate
from tests.conftest import ADMIN_KEY, make_settings
from tests.web.conftest import inner_app

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
URL = "https://siem.example.com/ingest"
TOKEN = "hec-7f3a9c2e-1b4d-4e8f-9a6b-c0ffee0d1234"


class Receiver:
    """The SIEM behind httpx.MockTransport: records requests, answers ``status``."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json={"text": "Success", "code": 0})


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def gate(database_url: str, receiver: Receiver) -> AsyncIterator[SSOGate]:
    # allow_private_urls: no DNS lookup of the (unresolvable) test receiver's host name
    settings = make_settings(database_url, allow_private_urls=True)
    g = SSOGate(settings, http_client=httpx.AsyncClient(transport=httpx.MockTransport(receiver)))
    await g.migrate()
    yield g
    await g.aclose()


@pytest.fixture
async def api(gate: SSOGate) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())),
        base_url="http://app.test/sso-gate/api",
        headers=AUTH,
    ) as c:
        yield c


@pytest.fixture
async def org_id(api: httpx.AsyncClient) -> str:
    return str((await api.post("/organizations", json={"name": "Acme"})).json()["id"])


async def _create(api: httpx.AsyncClient, org: str, **body: Any) -> dict[str, Any]:
    body = {"organization_id": org, "type": "https", "config": {"url": URL}, **body}
    r = await api.post("/audit_logs/streams", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


STREAM_ROUTES = [
    ("GET", "/audit_logs/streams?organization_id=ORG"),
    ("POST", "/audit_logs/streams"),
    ("GET", "/audit_logs/streams/audit_stream_x"),
    ("PATCH", "/audit_logs/streams/audit_stream_x"),
    ("DELETE", "/audit_logs/streams/audit_stream_x"),
    ("POST", "/audit_logs/streams/audit_stream_x/test"),
]


@pytest.mark.parametrize(("method", "path"), STREAM_ROUTES)
async def test_every_route_needs_the_api_key(
    api: httpx.AsyncClient, org_id: str, method: str, path: str
) -> None:
    body = {"organization_id": org_id, "type": "https", "config": {"url": URL}}
    for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {ADMIN_KEY}x"}):
        r = await api.request(method, path.replace("ORG", org_id), headers=headers, json=body)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthorized"
    r = await api.get("/audit_logs/streams", params={"organization_id": org_id})
    assert r.json()["data"] == []


async def test_stream_lifecycle_keeps_secrets_out(
    api: httpx.AsyncClient, gate: SSOGate, org_id: str, receiver: Receiver
) -> None:
    created = await _create(
        api, org_id, type="splunk_hec", config={"url": "https://splunk.example.com:8088", "token": TOKEN, "index": "audit"}, name="Splunk"
    )  # fmt: skip
    assert created["object"] == "audit_log_stream" and created["id"].startswith("audit_stream_")
    assert created["type"] == "splunk_hec" and created["name"] == "Splunk"
    assert created["config"] == {"url": "https://splunk.example.com:8088", "index": "audit"}
    assert created["secret_hints"] == {"token": TOKEN[-4:]} and created["state"] == "active"
    sid = created["id"]
    answers = [created]

    got = await api.get(f"/audit_logs/streams/{sid}")
    assert got.status_code == 200 and got.json()["id"] == sid
    listed = (await api.get("/audit_logs/streams", params={"organization_id": org_id})).json()
    assert listed["object"] == "list" and [s["id"] for s in listed["data"]] == [sid]
    r = await api.patch(f"/audit_logs/streams/{sid}", json={"config": {"index": "security"}})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["index"] == "security" and r.json()["secret_hints"] == {
        "token": TOKEN[-4:]
    }
    r = await api.patch(f"/audit_logs/streams/{sid}", json={"enabled": False, "name": "Off"})
    assert (
        r.json()["enabled"] is False
        and r.json()["state"] == "disabled"
        and r.json()["name"] == "Off"
    )
    answers += [got.json(), listed, r.json()]

    tested = await api.post(f"/audit_logs/streams/{sid}/test")
    assert tested.status_code == 200
    assert tested.json()["success"] is True and tested.json()["status_code"] == 200
    (request,) = receiver.requests
    assert request.url.path == "/services/collector/event"
    assert request.headers["authorization"] == f"Splunk {TOKEN}"
    assert json.loads(request.content)["event"]["action"] == "audit_stream.tested"
    receiver.status = 403
    refused = (await api.post(f"/audit_logs/streams/{sid}/test")).json()
    assert refused["success"] is False and refused["status_code"] == 403 and refused["error"]
    answers += [tested.json(), refused]

    audit = (
        await api.get("/audit_logs/events", params={"organization_id": org_id, "limit": 100})
    ).json()
    actions = [e["action"] for e in audit["data"]]
    assert actions[:3] == ["audit_stream.updated", "audit_stream.updated", "audit_stream.created"]
    answers.append(audit)
    for answer in answers:
        assert TOKEN not in json.dumps(answer)

    r = await api.delete(f"/audit_logs/streams/{sid}")
    assert r.status_code == 204 and r.content == b""
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/test")):
        r = await api.request(method, f"/audit_logs/streams/{sid}{path}", json={"name": "x"})
        assert r.status_code == 404 and r.json()["code"] == "audit_stream_not_found", method


async def test_delivery_through_the_worker(
    api: httpx.AsyncClient, gate: SSOGate, org_id: str, receiver: Receiver
) -> None:
    await gate.audit.chain()
    sid = (await _create(api, org_id, config={"url": URL, "token": TOKEN}))["id"]
    body = {
        "organization_id": org_id,
        "events": [
            {"action": "invoice.paid", "actor": {"type": "user", "id": f"u{i}"}} for i in range(3)
        ],
    }
    assert (await api.post("/audit_logs/events/batch", json=body)).status_code == 201
    await gate.audit.chain()
    await gate.audit_streams.deliver_due()
    sent = [e for r in receiver.requests for e in json.loads(r.content)["events"]]
    assert [e["actor"]["id"] for e in sent if e["action"] == "invoice.paid"] == ["u0", "u1", "u2"]
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in receiver.requests)
    stream = (await api.get(f"/audit_logs/streams/{sid}")).json()
    assert stream["lag"] == 0 and stream["last_success_at"] is not None
    r = await api.patch(f"/audit_logs/streams/{sid}", json={"cursor": 0})
    assert r.status_code == 200 and r.json()["cursor"] == 0 and r.json()["lag"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "https", "config": {"url": URL}}, "organization_id"),
        ({"organization_id": "ORG", "config": {"url": URL}}, "type"),
        ({"organization_id": "ORG", "type": "kafka", "config": {"url": URL}}, "type"),
        ({"organization_id": "ORG", "type": "https"}, "config"),
        ({"organization_id": "ORG", "type": "https", "config": "https://x"}, "config"),
        ({"organization_id": "ORG", "type": "https", "config": {}}, "config.url"),
        (
            {"organization_id": "ORG", "type": "https", "config": {"url": "ftp://x.test/"}},
            "config.url",
        ),
        (
            {"organization_id": "ORG", "type": "https", "config": {"url": URL, "nope": 1}},
            "config.nope",
        ),
        ({"organization_id": "ORG", "type": "splunk_hec", "config": {"url": URL}}, "config.token"),
        (
            {"organization_id": "ORG", "type": "datadog", "config": {"site": "x.example"}},
            "config.api_key",
        ),
        (
            {"organization_id": "ORG", "type": "syslog", "config": {"host": "siem.example.com"}},
            "config.port",
        ),
        (
            {"organization_id": "ORG", "type": "https", "config": {"url": URL}, "enabled": "yes"},
            "enabled",
        ),
        (
            {"organization_id": "ORG", "type": "https", "config": {"url": URL}, "start": "now!"},
            "start",
        ),
        ({"organization_id": "ORG", "type": "https", "config": {"url": URL}, "name": 5}, "name"),
        (
            {"organization_id": "ORG", "type": "https", "config": {"url": URL}, "cursor": 5},
            "cursor",
        ),
    ],
)
async def test_create_validation(
    api: httpx.AsyncClient, org_id: str, body: dict[str, Any], field: str
) -> None:
    body = {k: (org_id if v == "ORG" else v) for k, v in body.items()}
    r = await api.post("/audit_logs/streams", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["message"]
    assert (await api.get("/audit_logs/streams", params={"organization_id": org_id})).json()[
        "data"
    ] == []


async def test_other_errors(api: httpx.AsyncClient, org_id: str) -> None:
    r = await api.post(
        "/audit_logs/streams",
        json={"organization_id": "org_nope", "type": "https", "config": {"url": URL}},
    )
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
    r = await api.get("/audit_logs/streams", params={"organization_id": "org_nope"})
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
    r = await api.get("/audit_logs/streams")
    assert r.status_code == 422 and r.json()["field"] == "organization_id"
    r = await api.get("/audit_logs/streams", params={"organization_id": org_id, "limit": 0})
    assert r.status_code == 422 and r.json()["field"] == "limit"
    sid = (await _create(api, org_id))["id"]
    for body, field in [
        ({"type": "datadog"}, "type"),
        ({"cursor": -1}, "cursor"),
        ({"cursor": 10**6}, "cursor"),
        ({"enabled": "no"}, "enabled"),
        ({"config": {"url": "not a url"}}, "config.url"),
        ({"config": []}, "config"),
    ]:
        r = await api.patch(f"/audit_logs/streams/{sid}", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    r = await api.post(
        "/audit_logs/streams", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"
    assert (await api.get(f"/audit_logs/streams/{sid}")).json()["config"] == {"url": URL}


async def test_openapi(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    for method, path in STREAM_ROUTES:
        route = path.split("?")[0].replace("audit_stream_x", "{id}")
        assert method.lower() in doc["paths"][route], path
    schemas = doc["components"]["schemas"]
    assert set(schemas["AuditLogStreamCreate"]["required"]) == {"organization_id", "type", "config"}
    assert schemas["AuditLogStream"]["properties"]["type"]["enum"] == [
        "https", "splunk_hec", "datadog", "syslog",
    ]  # fmt: skip
    assert "token" not in schemas["AuditLogStream"]["properties"]
