"""Management API for webhook endpoints and the Events feed: every route, bearer auth, clear 4xx
for bad input, the signing secret only in the create and rotate answers, OpenAPI coverage."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from sso_gate import SSOGate
from sso_gate.web.routes_api import api_routes
from sso_gate.webhooks import verify
from tests.conftest import ADMIN_KEY, make_settings
from tests.web.conftest import inner_app

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
URL = "https://hooks.example.com/sso"
JSON = {"content-type": "application/json"}


class Receiver:
    """A webhook receiver behind httpx.MockTransport: records every request, answers 200."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, text="ok")


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def hook_gate(database_url: str, receiver: Receiver) -> AsyncIterator[SSOGate]:
    # allow_private_urls: no DNS lookup of the (unresolvable) test receiver's host name
    settings = make_settings(
        database_url, allow_private_urls=True, webhook_retry_schedule=(0.0, 0.0)
    )
    g = SSOGate(settings, http_client=httpx.AsyncClient(transport=httpx.MockTransport(receiver)))
    await g.migrate()
    yield g
    await g.aclose()


def _client(gate: SSOGate, **kw: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate.wrap(inner_app())),
        base_url="http://app.test/sso-gate/api",
        **kw,
    )


@pytest.fixture
async def api(hook_gate: SSOGate) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(hook_gate, headers=AUTH) as c:
        yield c


async def _create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("url", URL)
    body.setdefault("events", ["organization.created"])
    r = await api.post("/webhook_endpoints", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


WEBHOOK_ROUTES = [
    ("GET", "/webhook_endpoints"),
    ("POST", "/webhook_endpoints"),
    ("GET", "/webhook_endpoints/we_x"),
    ("PATCH", "/webhook_endpoints/we_x"),
    ("DELETE", "/webhook_endpoints/we_x"),
    ("POST", "/webhook_endpoints/we_x/enable"),
    ("POST", "/webhook_endpoints/we_x/disable"),
    ("POST", "/webhook_endpoints/we_x/rotate_secret"),
    ("POST", "/webhook_endpoints/we_x/redeliver"),
    ("GET", "/webhook_endpoints/we_x/deliveries"),
    ("GET", "/webhook_endpoints/we_x/attempts"),
    ("GET", "/events"),
    ("GET", "/events/event_x"),
]


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), WEBHOOK_ROUTES)
async def test_every_route_needs_the_api_key(
    api: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {ADMIN_KEY}x"}):
        r = await api.request(method, path, headers=headers, json={"url": URL, "events": ["*"]})
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert (await api.get("/webhook_endpoints")).json()["data"] == []  # nothing was created


async def test_api_off_without_key(database_url: str) -> None:
    g = SSOGate(make_settings(database_url, admin_api_key=None))
    async with _client(g, headers=AUTH) as c:
        for path in ("/webhook_endpoints", "/events"):
            r = await c.get(path)
            assert r.status_code == 404 and r.json()["code"] == "api_disabled"
    await g.aclose()


# -- endpoints -------------------------------------------------------------------------------


async def test_endpoint_lifecycle(api: httpx.AsyncClient) -> None:
    created = await _create(
        api, events=["dsync.*", "organization.created"], description="ops", enabled=True
    )
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and created["secret_hint"] == secret[-4:]
    assert created["object"] == "webhook_endpoint" and created["id"].startswith("we_")
    assert created["url"] == URL and created["events"] == ["dsync.*", "organization.created"]
    assert created["enabled"] is True and created["state"] == "enabled"
    assert created["description"] == "ops" and created["organization_id"] is None
    assert created["created_at"].endswith("Z")
    eid = created["id"]

    got = await api.get(f"/webhook_endpoints/{eid}")
    assert got.status_code == 200 and got.json() == created and "secret" not in got.json()
    listed = (await api.get("/webhook_endpoints")).json()
    assert listed["object"] == "list" and [e["id"] for e in listed["data"]] == [eid]
    assert set(listed["list_metadata"]) == {"before", "after"}

    r = await api.patch(
        f"/webhook_endpoints/{eid}",
        json={"url": URL + "/v2", "events": ["connection.*"], "description": None},
    )
    assert r.status_code == 200, r.text
    assert r.json()["url"] == URL + "/v2" and r.json()["events"] == ["connection.*"]
    assert r.json()["description"] is None
    r = await api.patch(f"/webhook_endpoints/{eid}", json={"enabled": False})
    assert r.json()["enabled"] is False and r.json()["state"] == "disabled"
    r = await api.patch(f"/webhook_endpoints/{eid}", json={})
    assert r.status_code == 200 and r.json()["url"] == URL + "/v2"

    r = await api.delete(f"/webhook_endpoints/{eid}")
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "PATCH", "DELETE"):
        r = await api.request(method, f"/webhook_endpoints/{eid}", json={})
        assert r.status_code == 404 and r.json()["code"] == "webhook_endpoint_not_found"
    for action in ("enable", "disable", "rotate_secret"):
        r = await api.post(f"/webhook_endpoints/{eid}/{action}")
        assert r.status_code == 404, action
    r = await api.get(f"/webhook_endpoints/{eid}/deliveries")
    assert r.status_code == 404


async def test_endpoint_list_pagination(api: httpx.AsyncClient) -> None:
    ids = [(await _create(api))["id"] for _ in range(3)]
    page1 = (await api.get("/webhook_endpoints", params={"limit": 2})).json()
    assert [e["id"] for e in page1["data"]] == ids[::-1][:2]
    page2 = (
        await api.get(
            "/webhook_endpoints", params={"limit": 2, "after": page1["list_metadata"]["after"]}
        )
    ).json()
    assert [e["id"] for e in page2["data"]] == ids[:1]
    asc = (await api.get("/webhook_endpoints", params={"order": "asc"})).json()
    assert [e["id"] for e in asc["data"]] == ids
    for params in ({"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"order": "up"}):
        r = await api.get("/webhook_endpoints", params=params)
        assert r.status_code == 422 and r.json()["field"] in ("limit", "order")


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"events": ["*"]}, "url", "invalid_request"),
        ({"url": 5, "events": ["*"]}, "url", "invalid_request"),
        ({"url": "ftp://hooks.example.com/x", "events": ["*"]}, "url", "invalid_request"),
        ({"url": "not a url", "events": ["*"]}, "url", "invalid_request"),
        ({"url": "https://u:p@hooks.example.com/", "events": ["*"]}, "url", "invalid_request"),
        ({"url": URL + "#x", "events": ["*"]}, "url", "invalid_request"),
        ({"url": URL}, "events", "invalid_request"),
        ({"url": URL, "events": "dsync.*"}, "events", "invalid_request"),
        ({"url": URL, "events": []}, "events", "invalid_request"),
        ({"url": URL, "events": [5]}, "events", "invalid_request"),
        ({"url": URL, "events": {"dsync.*": True}}, "events", "invalid_request"),
        ({"url": URL, "events": ["dsync.user.exploded"]}, "events", "unknown_event"),
        ({"url": URL, "events": ["nope.*"]}, "events", "unknown_event"),
        ({"url": URL, "events": ["*"], "description": 5}, "description", "invalid_request"),
        ({"url": URL, "events": ["*"], "description": "x" * 501}, "description", "invalid_request"),
        ({"url": URL, "events": ["*"], "enabled": "yes"}, "enabled", "invalid_request"),
        ({"url": URL, "events": ["*"], "organization_id": 5}, "organization_id", "invalid_request"),
        ({"url": URL, "events": ["*"], "secret": "whsec_mine"}, "secret", "invalid_request"),
    ],
)
async def test_create_validation(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, code: str
) -> None:
    r = await api.post("/webhook_endpoints", json=body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["field"] == field and err["code"] == code and err["message"]
    assert (await api.get("/webhook_endpoints")).json()["data"] == []


async def test_unknown_event_message_lists_known_names(api: httpx.AsyncClient) -> None:
    r = await api.post("/webhook_endpoints", json={"url": URL, "events": ["dsync.usr.created"]})
    assert "dsync.usr.created" in r.json()["message"]
    assert "dsync.user.created" in r.json()["message"]


async def test_create_for_unknown_organization(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/webhook_endpoints", json={"url": URL, "events": ["*"], "organization_id": "org_nope"}
    )
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"


async def test_private_and_plain_http_urls_refused(database_url: str) -> None:
    g = SSOGate(make_settings(database_url))  # allow_private_urls off
    await g.migrate()
    async with _client(g, headers=AUTH) as c:
        for url in ("https://127.0.0.1/hook", "https://169.254.169.254/latest", "https://[::1]/"):
            r = await c.post("/webhook_endpoints", json={"url": url, "events": ["*"]})
            assert r.status_code == 422 and r.json()["code"] == "private_address", url
            assert "SSO_GATE_ALLOW_PRIVATE_URLS" in r.json()["message"]
    await g.aclose()
    g = SSOGate(
        make_settings(
            database_url,
            environment="production",
            base_url="https://app.test",
            allow_private_urls=True,
        )
    )
    async with _client(g, headers=AUTH) as c:
        r = await c.post(
            "/webhook_endpoints", json={"url": "http://hooks.example.com/x", "events": ["*"]}
        )
        assert r.status_code == 422 and r.json()["code"] == "https_required"
        assert r.json()["field"] == "url"
    await g.aclose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret": "whsec_x"}, "secret"),
        ({"organization_id": "org_x"}, "organization_id"),
        ({"url": 5}, "url"),
        ({"url": "ftp://x.test/"}, "url"),
        ({"events": ["bogus.event"]}, "events"),
        ({"events": "dsync.*"}, "events"),
        ({"events": None}, "events"),
        ({"description": 7}, "description"),
        ({"enabled": "yes"}, "enabled"),
        ({"enabled": None}, "enabled"),
    ],
)
async def test_update_validation(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    eid = (await _create(api))["id"]
    r = await api.patch(f"/webhook_endpoints/{eid}", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert (await api.get(f"/webhook_endpoints/{eid}")).json()["url"] == URL


async def test_bad_bodies(api: httpx.AsyncClient) -> None:
    r = await api.post("/webhook_endpoints", content=b"{nope", headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"
    assert "not valid JSON" in r.json()["message"]
    r = await api.post("/webhook_endpoints", content=b'["x"]', headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"
    r = await api.post(
        "/webhook_endpoints", content=b"url=x", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_content_type"
    r = await api.post(
        "/webhook_endpoints", content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=JSON
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    eid = (await _create(api))["id"]
    r = await api.patch(f"/webhook_endpoints/{eid}", content=b"\xff\xfe", headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"
    r = await api.post(f"/webhook_endpoints/{eid}/redeliver", content=b"", headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"
    r = await api.post(f"/webhook_endpoints/{eid}/rotate_secret", content=b"{", headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"


async def test_enable_and_disable(api: httpx.AsyncClient) -> None:
    eid = (await _create(api, enabled=False))["id"]
    got = (await api.get(f"/webhook_endpoints/{eid}")).json()
    assert got["enabled"] is False and got["disabled_reason"]
    r = await api.post(f"/webhook_endpoints/{eid}/enable")
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert r.json()["disabled_reason"] is None and r.json()["consecutive_failures"] == 0
    r = await api.post(f"/webhook_endpoints/{eid}/disable")
    assert r.json()["enabled"] is False and r.json()["state"] == "disabled"
    assert "administrator" in r.json()["disabled_reason"]
    assert (await api.post(f"/webhook_endpoints/{eid}/disable")).status_code == 200  # idempotent
    feed = (await api.get("/events", params={"events": "webhook_endpoint.enabled,"})).json()
    assert [e["event"] for e in feed["data"]] == ["webhook_endpoint.enabled"]
    feed = (await api.get("/events", params={"events": "webhook_endpoint.disabled"})).json()
    assert len(feed["data"]) == 1  # one change of state, one event
    assert feed["data"][0]["data"]["webhook_endpoint"]["id"] == eid


async def test_rotate_secret(
    api: httpx.AsyncClient, hook_gate: SSOGate, receiver: Receiver
) -> None:
    created = await _create(api)
    eid, old = created["id"], created["secret"]
    r = await api.post(f"/webhook_endpoints/{eid}/rotate_secret")  # no body: default grace
    assert r.status_code == 200, r.text
    rotated = r.json()
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != old and rotated["id"] == eid
    assert rotated["secret_hint"] == new[-4:] and rotated["secret_rotating_until"] is not None
    until = datetime.fromisoformat(rotated["secret_rotating_until"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
    got = (await api.get(f"/webhook_endpoints/{eid}")).json()
    assert "secret" not in got and got["secret_hint"] == new[-4:]

    await api.post("/organizations", json={"name": "Acme"})
    await hook_gate.worker.drain()
    (request,) = receiver.requests
    verify(request.content, dict(request.headers), old, replay_cache=None)  # grace period
    verify(request.content, dict(request.headers), new, replay_cache=None)

    r = await api.post(f"/webhook_endpoints/{eid}/rotate_secret", json={"grace_seconds": 0})
    assert r.status_code == 200 and r.json()["secret_rotating_until"] is None
    newest = r.json()["secret"]
    await api.post("/organizations", json={"name": "Initech"})
    await hook_gate.worker.drain()
    last = receiver.requests[-1]
    verify(last.content, dict(last.headers), newest, replay_cache=None)
    with pytest.raises(Exception, match="signature"):
        verify(last.content, dict(last.headers), new, replay_cache=None)

    r = await api.post(f"/webhook_endpoints/{eid}/rotate_secret", json={"grace_seconds": 60})
    until = datetime.fromisoformat(r.json()["secret_rotating_until"])
    assert until - datetime.now(UTC) <= timedelta(seconds=60)
    for bad in (-1, "60", True, 1.5, 10**12, 30 * 24 * 3600 + 1):
        r = await api.post(f"/webhook_endpoints/{eid}/rotate_secret", json={"grace_seconds": bad})
        assert r.status_code == 422 and r.json()["field"] == "grace_seconds", bad
    r = await api.post(f"/webhook_endpoints/{eid}/rotate_secret", json={"grace": 5})
    assert r.status_code == 422 and r.json()["field"] == "grace"


async def test_secret_appears_only_in_create_and_rotate_answers(
    api: httpx.AsyncClient, hook_gate: SSOGate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await _create(api, events=["*"])
    eid = created["id"]
    rotated = (await api.post(f"/webhook_endpoints/{eid}/rotate_secret")).json()
    secrets = [created["secret"], rotated["secret"]]
    await api.post("/organizations", json={"name": "Acme"})
    await hook_gate.worker.drain()
    bodies = []
    for method, path, body in [
        ("GET", "/webhook_endpoints", None),
        ("GET", f"/webhook_endpoints/{eid}", None),
        ("PATCH", f"/webhook_endpoints/{eid}", {"description": "x"}),
        ("POST", f"/webhook_endpoints/{eid}/disable", None),
        ("POST", f"/webhook_endpoints/{eid}/enable", None),
        ("GET", f"/webhook_endpoints/{eid}/deliveries", None),
        ("GET", f"/webhook_endpoints/{eid}/attempts", None),
        ("GET", "/events?limit=100", None),
        ("PATCH", f"/webhook_endpoints/{eid}", {"secret": "x"}),
        ("GET", "/openapi.json", None),
    ]:
        r = await api.request(method, path, json=body)
        bodies.append(r.text)
    feed = (await api.get("/events", params={"limit": 100})).json()["data"]
    for ev in feed:
        bodies.append((await api.get(f"/events/{ev['id']}")).text)
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    for secret in secrets:
        for text in [*bodies, logged]:
            assert secret not in text and secret.removeprefix("whsec_") not in text


# -- deliveries, attempts, redelivery ----------------------------------------------------------


async def test_deliveries_and_attempts(
    api: httpx.AsyncClient, hook_gate: SSOGate, receiver: Receiver
) -> None:
    eid = (await _create(api))["id"]
    org_ids = [(await api.post("/organizations", json={"name": n})).json()["id"] for n in "ABC"]
    await hook_gate.worker.drain()
    assert len(receiver.requests) == 3
    r = await api.get(f"/webhook_endpoints/{eid}/deliveries")
    assert r.status_code == 200
    page = r.json()
    assert page["object"] == "list" and len(page["data"]) == 3
    first = page["data"][-1]  # newest first
    assert first["object"] == "webhook_delivery" and first["status"] == "succeeded"
    assert first["attempts"] == 1 and first["endpoint_id"] == eid
    event = (await api.get(f"/events/{first['event_id']}")).json()
    assert event["data"]["id"] == org_ids[0]

    p1 = (await api.get(f"/webhook_endpoints/{eid}/deliveries", params={"limit": 2})).json()
    p2 = (
        await api.get(
            f"/webhook_endpoints/{eid}/deliveries",
            params={"limit": 2, "after": p1["list_metadata"]["after"]},
        )
    ).json()
    assert [d["id"] for d in p1["data"] + p2["data"]] == [d["id"] for d in page["data"]]
    assert (
        await api.get(f"/webhook_endpoints/{eid}/deliveries", params={"status": "failed"})
    ).json()["data"] == []
    by_event = (
        await api.get(
            f"/webhook_endpoints/{eid}/deliveries",
            params={"event_id": first["event_id"], "status": "succeeded"},
        )
    ).json()
    assert [d["id"] for d in by_event["data"]] == [first["id"]]

    attempts = (await api.get(f"/webhook_endpoints/{eid}/attempts")).json()
    assert len(attempts["data"]) == 3 and attempts["data"][0]["object"] == "webhook_attempt"
    one = (
        await api.get(f"/webhook_endpoints/{eid}/attempts", params={"delivery_id": first["id"]})
    ).json()["data"]
    assert len(one) == 1 and one[0]["succeeded"] is True and one[0]["status_code"] == 200
    assert one[0]["attempt"] == 1 and one[0]["response_excerpt"] == "ok"

    for path, params, field in [
        ("deliveries", {"status": "lost"}, "status"),
        ("deliveries", {"limit": "0"}, "limit"),
        ("deliveries", {"limit": "1e3"}, "limit"),
        ("deliveries", {"order": "asc"}, "order"),
        ("deliveries", {"before": "a", "after": "b"}, "before"),
        ("attempts", {"limit": "101"}, "limit"),
    ]:
        r = await api.get(f"/webhook_endpoints/{eid}/{path}", params=params)
        assert r.status_code == 422 and r.json()["field"] == field, params


async def test_redeliver(api: httpx.AsyncClient, hook_gate: SSOGate, receiver: Receiver) -> None:
    eid = (await _create(api))["id"]
    start = datetime.now(UTC) - timedelta(seconds=5)
    org_a = (await api.post("/organizations", json={"name": "A"})).json()
    await api.post(f"/organizations/{org_a['id']}/domains", json={"domain": "a.test"})
    await api.post("/organizations", json={"name": "B"})
    await hook_gate.worker.drain()
    assert len(receiver.requests) == 2
    first_id = receiver.requests[0].headers["webhook-id"]

    r = await api.post(f"/webhook_endpoints/{eid}/redeliver", json={"event_id": first_id})
    assert r.status_code == 202 and r.json() == {"queued": 1}
    await hook_gate.worker.drain()
    assert receiver.requests[-1].headers["webhook-id"] == first_id  # stable id: de-duplicable

    since = start.isoformat().replace("+00:00", "Z")
    r = await api.post(f"/webhook_endpoints/{eid}/redeliver", json={"since": since})
    assert r.json() == {"queued": 2}  # only subscribed events (not organization_domain.*)
    r = await api.post(
        f"/webhook_endpoints/{eid}/redeliver",
        json={"since": since, "until": (start + timedelta(days=1)).isoformat()},
    )
    assert r.json() == {"queued": 2}
    r = await api.post(f"/webhook_endpoints/{eid}/redeliver", json={"until": "2000-01-01"})
    assert r.json() == {"queued": 0}
    await hook_gate.worker.drain()
    assert len(receiver.requests) == 5

    domain_event = await api.get("/events", params={"events": "organization_domain.created"})
    not_subscribed = domain_event.json()["data"][0]["id"]
    for body, status, field in [
        ({}, 422, "event_id"),
        ({"event_id": first_id, "since": since}, 422, "event_id"),
        ({"event_id": 5}, 422, "event_id"),
        ({"event_id": not_subscribed}, 422, "event_id"),
        ({"since": "yesterday"}, 422, "since"),
        ({"since": 1700000000}, 422, "since"),
        ({"until": "2024-13-01T00:00:00Z"}, 422, "until"),
        ({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, 422, "since"),
        ({"from": since}, 422, "from"),
    ]:
        r = await api.post(f"/webhook_endpoints/{eid}/redeliver", json=body)
        assert r.status_code == status and r.json()["field"] == field, (body, r.text)
    r = await api.post(f"/webhook_endpoints/{eid}/redeliver", json={"event_id": "event_nope"})
    assert r.status_code == 404 and r.json()["code"] == "event_not_found"
    r = await api.post("/webhook_endpoints/we_nope/redeliver", json={"event_id": first_id})
    assert r.status_code == 404 and r.json()["code"] == "webhook_endpoint_not_found"


async def test_organization_scoped_endpoint(
    api: httpx.AsyncClient, hook_gate: SSOGate, receiver: Receiver
) -> None:
    acme = (await api.post("/organizations", json={"name": "Acme"})).json()
    created = await _create(api, events=["organization.updated"], organization_id=acme["id"])
    assert created["organization_id"] == acme["id"]
    other = (await api.post("/organizations", json={"name": "Other"})).json()
    await api.put(f"/organizations/{other['id']}", json={"name": "Other 2"})
    await api.put(f"/organizations/{acme['id']}", json={"name": "Acme 2"})
    await hook_gate.worker.drain()
    assert [json.loads(r.content)["organization_id"] for r in receiver.requests] == [acme["id"]]


# -- the Events feed ---------------------------------------------------------------------------


async def test_events_feed_pages_in_order(api: httpx.AsyncClient) -> None:
    names = ["A", "B", "C", "D", "E"]
    for name in names:
        await api.post("/organizations", json={"name": name})
    r = await api.get("/events", params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert page["object"] == "list" and list(page["list_metadata"]) == ["after"]
    assert [e["data"]["name"] for e in page["data"]] == ["A", "B"]
    ev = page["data"][0]
    assert set(ev) == {"object", "id", "event", "data", "organization_id", "created_at"}
    assert ev["object"] == "event" and ev["event"] == "organization.created"
    assert ev["id"].startswith("event_") and ev["organization_id"] == ev["data"]["id"]
    assert page["list_metadata"]["after"] == page["data"][-1]["id"]
    seen = [e["data"]["name"] for e in page["data"]]
    cursor = page["list_metadata"]["after"]
    while True:
        nxt = (await api.get("/events", params={"limit": 2, "after": cursor})).json()
        if not nxt["data"]:
            assert nxt["list_metadata"]["after"] == cursor  # keep polling with the same cursor
            break
        seen += [e["data"]["name"] for e in nxt["data"]]
        cursor = nxt["list_metadata"]["after"]
    assert seen == names
    await api.post("/organizations", json={"name": "F"})
    (late,) = (await api.get("/events", params={"after": cursor})).json()["data"]
    assert late["data"]["name"] == "F"
    default = (await api.get("/events")).json()
    assert len(default["data"]) == 6
    assert (await api.get("/events", params={"after": ""})).json() == default


async def test_events_feed_filters(api: httpx.AsyncClient) -> None:
    acme = (await api.post("/organizations", json={"name": "Acme"})).json()
    await api.post(f"/organizations/{acme['id']}/domains", json={"domain": "a.test"})
    other = (await api.post("/organizations", json={"name": "Other"})).json()
    await api.put(f"/organizations/{other['id']}", json={"name": "Other 2"})

    async def names(query: str) -> list[str]:
        r = await api.get("/events?" + query)
        assert r.status_code == 200, r.text
        return [e["event"] for e in r.json()["data"]]

    assert await names("events=organization.updated") == ["organization.updated"]
    both = ["organization_domain.created", "organization.updated"]
    for query in (
        "events=organization_domain.created,organization.updated",
        "events=organization_domain.created&events=organization.updated",
        "events[]=organization_domain.created&events[]=organization.updated",
        "events%5B%5D=organization_domain.created&events=organization.updated",
        "events=organization_domain.created,%20organization.updated,",
    ):
        assert sorted(await names(query)) == sorted(both), query
    by_org = (await api.get("/events", params={"organization_id": acme["id"]})).json()["data"]
    assert {e["organization_id"] for e in by_org} == {acme["id"]} and len(by_org) == 2
    assert await names("organization_id=org_nobody") == []
    now = datetime.now(UTC)
    future = (now + timedelta(hours=1)).isoformat()
    past = (now - timedelta(hours=1)).isoformat()
    assert await names("range_start=" + future.replace("+", "%2B")) == []
    assert len(await names(f"range_start={past[:19]}Z&range_end={future[:19]}Z")) == 4
    assert await names(f"range_end={past[:10]}") == []


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("after=event_01ARZ3NDEKTSV4RRFFQ69G5FAV", "after", "invalid_cursor"),
        ("events=dsync.user.exploded", "events", "invalid_request"),
        ("events=organization.created,nope", "events", "invalid_request"),
        ("limit=0", "limit", "invalid_request"),
        ("limit=101", "limit", "invalid_request"),
        ("limit=ten", "limit", "invalid_request"),
        ("limit=-1", "limit", "invalid_request"),
        ("range_start=yesterday", "range_start", "invalid_request"),
        ("range_end=2024-02-30", "range_end", "invalid_request"),
        ("range_start=2024-02-01T00:00:00Z&range_end=2024-01-01T00:00:00Z", "range_start", None),
        ("before=event_x", "before", "invalid_request"),
    ],
)
async def test_events_feed_errors(
    api: httpx.AsyncClient, query: str, field: str, code: str | None
) -> None:
    await api.post("/organizations", json={"name": "Acme"})
    r = await api.get("/events?" + query)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["message"]
    if code:
        assert r.json()["code"] == code


async def test_events_feed_explains_an_unencoded_plus(api: httpx.AsyncClient) -> None:
    r = await api.get("/events?range_start=2024-01-01T00:00:00+01:00")
    assert r.status_code == 422 and "%2B" in r.json()["message"]


async def test_event_cursor_message_mentions_retention(api: httpx.AsyncClient) -> None:
    r = await api.get("/events", params={"after": "event_gone"})
    assert "retention" in r.json()["message"] and r.json()["code"] == "invalid_cursor"


async def test_get_event(api: httpx.AsyncClient) -> None:
    org = (await api.post("/organizations", json={"name": "Acme"})).json()
    (ev,) = (await api.get("/events")).json()["data"]
    r = await api.get(f"/events/{ev['id']}")
    assert r.status_code == 200 and r.json() == ev and ev["data"]["id"] == org["id"]
    r = await api.get("/events/event_nope")
    assert r.status_code == 404 and r.json()["code"] == "event_not_found"


# -- OpenAPI -----------------------------------------------------------------------------------


async def test_openapi_documents_every_route(api: httpx.AsyncClient, hook_gate: SSOGate) -> None:
    doc = (await api.get("/openapi.json")).json()
    missing = []
    for route in api_routes(hook_gate):
        assert isinstance(route, Route)
        if route.path == "/openapi.json":
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            if method.lower() not in doc["paths"].get(route.path, {}):
                missing.append(f"{method} {route.path}")
    assert missing == []
    ops = [
        op["operationId"]
        for item in doc["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ops) == len(set(ops))


async def test_openapi_webhook_schemas(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]

    def resolve(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.removeprefix("#/components/schemas/") in schemas, ref
            for value in node.values():
                resolve(value)
        elif isinstance(node, list):
            for value in node:
                resolve(value)

    resolve(doc)
    created = doc["paths"]["/webhook_endpoints"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookEndpointWithSecret"
    }
    assert "secret" not in schemas["WebhookEndpoint"]["properties"]
    assert set(schemas["WebhookEndpointCreate"]["required"]) == {"url", "events"}
    assert "organization.created" in schemas["Event"]["properties"]["event"]["enum"]
    params = {p["name"] for p in doc["paths"]["/events"]["get"]["parameters"]}
    assert params == {"after", "events", "organization_id", "range_start", "range_end", "limit"}
