"""Management API for the audit log: every route, bearer auth, Idempotency-Key over HTTP, the
batch (all or nothing), query filters and pages, the streamed CSV/NDJSON export (errors before
the first byte), verification before and after tampering, retention, and clear 4xx errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from sso_gate import SSOGate
from sso_gate.store.tables import audit_events
from tests.conftest import ADMIN_KEY, make_settings
from tests.web.conftest import inner_app

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
JSON = {"content-type": "application/json"}


def event(action: str = "invoice.paid", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "action": action,
        "occurred_at": "2026-11-28T10:00:00Z",
        "actor": {"type": "user", "id": "user_1", "name": "Alice"},
        "targets": [{"type": "invoice", "id": "inv_1", "name": "Invoice 1"}],
        "context": {"location": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "metadata": {"amount": 42},
    }
    base.update(extra)
    return base


@pytest.fixture
async def gate(database_url: str) -> AsyncIterator[SSOGate]:
    g = SSOGate(make_settings(database_url))
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
async def api(gate: SSOGate) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(gate, headers=AUTH) as c:
        yield c


@pytest.fixture
async def org_id(api: httpx.AsyncClient) -> str:
    r = await api.post("/organizations", json={"name": "Acme"})
    assert r.status_code == 201
    return str(r.json()["id"])


async def _emit(api: httpx.AsyncClient, org: str, **kw: Any) -> dict[str, Any]:
    r = await api.post("/audit_logs/events", json={"organization_id": org, "event": event(**kw)})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def _actions(api: httpx.AsyncClient, query: str) -> list[str]:
    r = await api.get("/audit_logs/events?" + query)
    assert r.status_code == 200, r.text
    return [e["action"] for e in r.json()["data"]]


AUDIT_ROUTES = [
    ("POST", "/audit_logs/events"),
    ("GET", "/audit_logs/events?organization_id=org_x"),
    ("POST", "/audit_logs/events/batch"),
    ("GET", "/audit_logs/events/audit_event_x"),
    ("GET", "/audit_logs/export?organization_id=org_x&format=csv"),
    ("GET", "/audit_logs/verify?organization_id=org_x"),
    ("POST", "/audit/events"),
    ("GET", "/audit/events?organization_id=org_x"),
    ("GET", "/organizations/org_x/audit_log_retention"),
    ("PUT", "/organizations/org_x/audit_log_retention"),
    ("GET", "/organizations/org_x/audit_logs_retention"),
    ("PUT", "/organizations/org_x/audit_logs_retention"),
]


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), AUDIT_ROUTES)
async def test_every_route_needs_the_api_key(
    api: httpx.AsyncClient, org_id: str, method: str, path: str
) -> None:
    path = path.replace("org_x", org_id)
    body = {"organization_id": org_id, "event": event(), "events": [event()], "retention_days": 1}
    for headers in ({"Authorization": ""}, {"Authorization": f"Bearer {ADMIN_KEY}x"}):
        r = await api.request(method, path, headers=headers, json=body)
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert await _actions(api, f"organization_id={org_id}") == ["organization.created"]


async def test_api_off_without_key(database_url: str) -> None:
    g = SSOGate(make_settings(database_url, admin_api_key=None))
    async with _client(g, headers=AUTH) as c:
        r = await c.get("/audit_logs/events", params={"organization_id": "org_x"})
        assert r.status_code == 404 and r.json()["code"] == "api_disabled"
    await g.aclose()


# -- writing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/audit_logs/events", "/audit/events"])
async def test_create_and_read_back(api: httpx.AsyncClient, org_id: str, path: str) -> None:
    r = await api.post(path, json={"organization_id": org_id, "event": event()})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["object"] == "audit_log_event" and created["id"].startswith("audit_event_")
    assert created["organization_id"] == org_id and created["action"] == "invoice.paid"
    assert created["occurred_at"] == "2026-11-28T10:00:00.000Z"
    assert created["actor"] == {"type": "user", "id": "user_1", "name": "Alice"}
    assert created["targets"] == [{"type": "invoice", "id": "inv_1", "name": "Invoice 1"}]
    assert created["context"] == {"location": "203.0.113.7", "user_agent": "Mozilla/5.0"}
    assert created["metadata"] == {"amount": 42} and created["version"] == 1
    got = await api.get(f"/audit_logs/events/{created['id']}")
    assert got.status_code == 200 and got.json() == created
    for listing in ("/audit_logs/events", "/audit/events"):
        page = (await api.get(listing, params={"organization_id": org_id})).json()
        assert page["data"][0] == created


async def test_idempotency_key_over_http(api: httpx.AsyncClient, org_id: str) -> None:
    body = {"organization_id": org_id, "event": event()}
    key = {"Idempotency-Key": "charge-42"}
    first = await api.post("/audit_logs/events", json=body, headers=key)
    assert first.status_code == 201
    for _ in range(2):
        again = await api.post("/audit_logs/events", json=body, headers=key)
        assert again.status_code == 201 and again.content == first.content
    assert await _actions(api, f"organization_id={org_id}&actions=invoice.paid") == ["invoice.paid"]

    other = {"organization_id": org_id, "event": event(metadata={"amount": 1})}
    r = await api.post("/audit_logs/events", json=other, headers=key)
    assert r.status_code == 409 and r.json()["code"] == "idempotency_key_reused"
    # no key, or another key: a new event each time
    assert (await api.post("/audit_logs/events", json=body)).json()["id"] != first.json()["id"]
    r = await api.post("/audit_logs/events", json=body, headers={"Idempotency-Key": "other"})
    assert r.json()["id"] != first.json()["id"]
    assert len(await _actions(api, f"organization_id={org_id}&actions=invoice.paid")) == 3
    for bad in ("", "k" * 256):
        r = await api.post("/audit_logs/events", json=body, headers={"Idempotency-Key": bad})
        assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"


async def test_batch_is_all_or_nothing(api: httpx.AsyncClient, org_id: str) -> None:
    bad = [event(), event("invoice.voided"), event("Not An Action")]
    r = await api.post("/audit_logs/events/batch", json={"organization_id": org_id, "events": bad})
    assert r.status_code == 422 and r.json()["field"] == "events[2].action"
    assert "events[2]" in r.json()["message"]
    assert await _actions(api, f"organization_id={org_id}&actions=invoice.paid") == []

    good = [event(), event("invoice.voided", occurred_at="2026-11-28T11:00:00Z")]
    r = await api.post("/audit_logs/events/batch", json={"organization_id": org_id, "events": good})
    assert r.status_code == 201, r.text
    assert r.json()["object"] == "list"
    assert [e["action"] for e in r.json()["data"]] == ["invoice.paid", "invoice.voided"]
    assert (
        len(await _actions(api, f"organization_id={org_id}&actions=invoice.paid,invoice.voided"))
        == 2
    )

    for body, field in [
        ({"organization_id": org_id, "events": []}, "events"),
        ({"organization_id": org_id, "events": event()}, "events"),
        ({"organization_id": org_id, "events": [event()] * 1001}, "events"),
        ({"organization_id": org_id, "events": [event(), "x"]}, "events[1]"),
        ({"organization_id": org_id, "events": [event(actor={"type": "u"})]}, "events[0].actor.id"),
        ({"events": [event()]}, "organization_id"),
        ({"organization_id": org_id, "events": [event()], "event": event()}, "event"),
    ]:
        r = await api.post("/audit_logs/events/batch", json=body)
        assert r.status_code == 422 and r.json()["field"] == field, (field, r.text)
    r = await api.post(
        "/audit_logs/events/batch",
        json={"organization_id": org_id, "events": [event()]},
        headers={"Idempotency-Key": "k"},
    )
    assert r.status_code == 422 and r.json()["field"] == "Idempotency-Key"
    r = await api.post(
        "/audit_logs/events/batch", json={"organization_id": "org_no", "events": [event()]}
    )
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
    assert len(await _actions(api, f"organization_id={org_id}&limit=100")) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": event()}, "organization_id"),
        ({"organization_id": 5, "event": event()}, "organization_id"),
        ({"organization_id": "ORG"}, "event"),
        ({"organization_id": "ORG", "event": "invoice.paid"}, "event"),
        ({"organization_id": "ORG", "event": event(action="paid")}, "event.action"),
        ({"organization_id": "ORG", "event": event(occurred_at="noon")}, "event.occurred_at"),
        ({"organization_id": "ORG", "event": event(actor={"id": "u"})}, "event.actor.type"),
        (
            {"organization_id": "ORG", "event": event(targets=[{"id": "1"}])},
            "event.targets[0].type",
        ),
        ({"organization_id": "ORG", "event": event(metadata={"k": "v" * 501})}, "event.metadata"),
        ({"organization_id": "ORG", "event": event(context={"ip": "x"})}, "event.context"),
        ({"organization_id": "ORG", "event": event(extra=1)}, "event.extra"),
        ({"organization_id": "ORG", "event": event(), "actor": {}}, "actor"),
    ],
)
async def test_create_validation(
    api: httpx.AsyncClient, org_id: str, body: dict[str, Any], field: str
) -> None:
    body = {k: (org_id if v == "ORG" else v) for k, v in body.items()}
    r = await api.post("/audit_logs/events", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["message"]
    assert await _actions(api, f"organization_id={org_id}") == ["organization.created"]


async def test_create_for_unknown_organization(api: httpx.AsyncClient) -> None:
    r = await api.post("/audit_logs/events", json={"organization_id": "org_no", "event": event()})
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"


async def test_bad_bodies(api: httpx.AsyncClient, org_id: str) -> None:
    for path in ("/audit_logs/events", "/audit_logs/events/batch", "/audit/events"):
        r = await api.post(path, content=b"{nope", headers=JSON)
        assert r.status_code == 422 and r.json()["code"] == "malformed_body", path
        r = await api.post(path, content=b"[1]", headers=JSON)
        assert r.status_code == 422 and r.json()["code"] == "malformed_body"
        r = await api.post(path, content=b"\xff", headers=JSON)
        assert r.status_code == 422 and r.json()["code"] == "malformed_body"
        r = await api.post(path, content=b"a=b", headers={"content-type": "text/plain"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_content_type"
        r = await api.post(path, content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=JSON)
        assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    r = await api.put(f"/organizations/{org_id}/audit_log_retention", content=b"{", headers=JSON)
    assert r.status_code == 422 and r.json()["code"] == "malformed_body"


# -- query -----------------------------------------------------------------------------------


async def _seed(api: httpx.AsyncClient, org: str) -> None:
    for i in range(5):
        await _emit(
            api,
            org,
            action="invoice.paid" if i % 2 == 0 else "invoice.voided",
            occurred_at=f"2026-11-2{i}T10:00:00Z",
            actor={"type": "user", "id": f"user_{i % 2}"},
            targets=[{"type": "invoice", "id": f"inv_{i}"}, {"type": "team", "id": "t,1"}],
        )


async def test_list_filters(api: httpx.AsyncClient, org_id: str) -> None:
    await _seed(api, org_id)
    other = (await api.post("/organizations", json={"name": "Other"})).json()["id"]
    await _emit(api, other)
    o = f"organization_id={org_id}"

    async def inv(query: str) -> list[str]:
        r = await api.get(f"/audit_logs/events?{o}&{query}")
        assert r.status_code == 200, r.text
        return [e["targets"][0]["id"] for e in r.json()["data"]]

    assert await inv("actions=invoice.paid") == ["inv_4", "inv_2", "inv_0"]  # newest first
    everything = ["inv_4", "inv_3", "inv_2", "inv_1", "inv_0"]
    for query in (
        "actions=invoice.paid,invoice.voided",
        "actions=invoice.paid&actions=invoice.voided",
        "actions[]=invoice.paid&actions[]=invoice.voided",
        "actions%5B%5D=invoice.paid&actions=invoice.voided,",
    ):
        assert await inv(query) == everything, query
    assert await inv("actor_ids=user_1") == ["inv_3", "inv_1"]
    assert await inv("actor_ids=user_0,user_1&actions=invoice.voided") == ["inv_3", "inv_1"]
    assert await inv("target_ids=inv_3&target_ids=inv_0") == ["inv_3", "inv_0"]
    assert await inv("target_types=team&limit=100") == everything
    assert await inv("target_ids[]=t,1") == everything  # [] values are taken whole
    assert await inv("target_ids=t,1") == []  # … plain ones are split at commas
    assert await inv("range_start=2026-11-21T00:00:00Z&range_end=2026-11-23") == ["inv_2", "inv_1"]
    assert await inv("range_start=2026-11-22T11:00:00%2B01:00&actions=invoice.paid") == [
        "inv_4",
        "inv_2",
    ]
    assert await inv("actions=user.signed_in") == []
    r = await api.get(f"/audit/events?{o}&actions=invoice.voided")
    assert [e["targets"][0]["id"] for e in r.json()["data"]] == ["inv_3", "inv_1"]


async def test_list_pages_newest_first(api: httpx.AsyncClient, org_id: str) -> None:
    await _seed(api, org_id)
    q = {"organization_id": org_id, "actions": "invoice.paid,invoice.voided", "limit": 2}
    pages, after = [], None
    while True:
        page = (
            await api.get("/audit_logs/events", params={**q, **({"after": after} if after else {})})
        ).json()
        assert page["object"] == "list" and set(page["list_metadata"]) == {"before", "after"}
        pages.append([e["targets"][0]["id"] for e in page["data"]])
        after = page["list_metadata"]["after"]
        if after is None:
            break
    assert pages == [["inv_4", "inv_3"], ["inv_2", "inv_1"], ["inv_0"]]
    last = (
        await api.get("/audit_logs/events", params={**q, "after": page["data"][0]["id"]})
    ).json()
    assert last["data"] == []
    before = page["list_metadata"]["before"]
    back = (await api.get("/audit_logs/events", params={**q, "before": before})).json()
    assert [e["targets"][0]["id"] for e in back["data"]] == ["inv_2", "inv_1"]
    default = (await api.get("/audit_logs/events", params={"organization_id": org_id})).json()
    assert len(default["data"]) == 6  # limit 10; organization.created + 5


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("", 422, "organization_id"),
        ("organization_id=", 422, "organization_id"),
        ("organization_id=org_nobody", 404, None),
        ("ORG&limit=0", 422, "limit"),
        ("ORG&limit=101", 422, "limit"),
        ("ORG&limit=ten", 422, "limit"),
        ("ORG&order=asc", 422, "order"),
        ("ORG&before=a&after=b", 422, "before"),
        ("ORG&range_start=yesterday", 422, "range_start"),
        ("ORG&range_end=2026-02-30", 422, "range_end"),
        ("ORG&range_start=2026-02-01&range_end=2026-01-01", 422, "range_start"),
        ("ORG&actions=Invoice.Paid", 422, "actions"),
        ("ORG&actions=paid", 422, "actions"),
        ("ORG&actor_ids=" + ",".join(f"u{i}" for i in range(101)), 422, "actor_ids"),
    ],
)
async def test_list_errors(
    api: httpx.AsyncClient, org_id: str, query: str, status: int, field: str | None
) -> None:
    r = await api.get("/audit_logs/events?" + query.replace("ORG", f"organization_id={org_id}"))
    assert r.status_code == status, r.text
    assert r.json()["message"] and r.json().get("field") == field
    if status == 404:
        assert r.json()["code"] == "organization_not_found"


async def test_plus_in_a_query_string_is_explained(api: httpx.AsyncClient, org_id: str) -> None:
    r = await api.get(
        f"/audit_logs/events?organization_id={org_id}&range_start=2026-01-01T00:00:00+01:00"
    )
    assert r.status_code == 422 and "%2B" in r.json()["message"]


async def test_deleted_organization_and_gate_scope_stay_readable(
    api: httpx.AsyncClient, org_id: str
) -> None:
    assert (await api.delete(f"/organizations/{org_id}")).status_code == 204
    assert await _actions(api, f"organization_id={org_id}") == [
        "organization.deleted",
        "organization.created",
    ]
    r = await api.get("/audit_logs/verify", params={"organization_id": org_id})
    assert r.status_code == 200 and r.json()["ok"] is True
    r = await api.post("/audit_logs/events", json={"organization_id": org_id, "event": event()})
    assert r.status_code == 404  # nothing new is written for a deleted organization
    r = await api.get("/audit_logs/events", params={"organization_id": "gate"})
    assert r.status_code == 200 and r.json()["data"] == []


async def test_get_unknown_event(api: httpx.AsyncClient) -> None:
    r = await api.get("/audit_logs/events/audit_event_nope")
    assert r.status_code == 404 and r.json()["code"] == "audit_event_not_found"


# -- export ----------------------------------------------------------------------------------


async def test_export_csv(api: httpx.AsyncClient, org_id: str) -> None:
    tricky = 'a,"b"\nc'
    await _emit(
        api,
        org_id,
        actor={"type": "user", "id": "u,1", "name": 'Bob "B", Jr.'},
        metadata={"note": tricky},
    )
    await _emit(api, org_id, action="invoice.voided")
    r = await api.get(
        "/audit_logs/export",
        params={
            "organization_id": org_id,
            "format": "csv",
            "actions": "invoice.paid,invoice.voided",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="audit_log_') and disposition.endswith(
        '.csv"'
    )
    assert org_id in disposition and r.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert list(rows[0]) == [
        "id",
        "occurred_at",
        "action",
        "actor_type",
        "actor_id",
        "actor_name",
        "targets",
        "location",
        "user_agent",
        "metadata",
        "organization_id",
        "created_at",
    ]
    assert [row["action"] for row in rows] == ["invoice.voided", "invoice.paid"]
    paid = rows[1]
    assert paid["actor_id"] == "u,1" and paid["actor_name"] == 'Bob "B", Jr.'
    assert json.loads(paid["metadata"]) == {"note": tricky}
    assert json.loads(paid["targets"]) == [{"type": "invoice", "id": "inv_1", "name": "Invoice 1"}]
    assert paid["location"] == "203.0.113.7" and paid["occurred_at"] == "2026-11-28T10:00:00.000Z"
    assert '"Bob ""B"", Jr."' in r.text  # RFC 4180 quoting
    empty = await api.get(
        "/audit_logs/export", params={"organization_id": org_id, "format": "csv", "actions": "x.y"}
    )
    assert empty.status_code == 200 and empty.text.count("\n") == 1  # the header only


async def test_export_ndjson(api: httpx.AsyncClient, org_id: str) -> None:
    await _seed(api, org_id)
    r = await api.get(
        "/audit_logs/export",
        params={"organization_id": org_id, "format": "ndjson", "actor_ids": "user_1"},
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["content-disposition"].endswith('.ndjson"')
    assert r.text.endswith("\n")
    lines = [json.loads(line) for line in r.text.splitlines()]
    listed = (
        await api.get(
            "/audit_logs/events", params={"organization_id": org_id, "actor_ids": "user_1"}
        )
    ).json()
    assert lines == listed["data"]
    r = await api.get("/audit_logs/export", params={"organization_id": org_id, "format": "ndjson"})
    assert len(r.text.splitlines()) == 6


async def test_export_streams_in_chunks(gate: SSOGate, org_id: str) -> None:
    """At the ASGI level: headers go out first, then the body in several messages."""
    await gate.audit.emit_many(org_id, [event(occurred_at=None) for _ in range(2500)])
    app = gate.wrap(inner_app())
    messages: list[dict[str, Any]] = []
    done = anyio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays connected until the whole body has arrived
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    query = f"organization_id={org_id}&format=ndjson&actions=invoice.paid".encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/sso-gate/api/audit_logs/export",
        "raw_path": b"/sso-gate/api/audit_logs/export",
        "query_string": query,
        "headers": [(b"host", b"app.test"), (b"authorization", f"Bearer {ADMIN_KEY}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("app.test", 80),
    }
    await app(scope, receive, send)
    assert messages[0]["type"] == "http.response.start" and messages[0]["status"] == 200
    bodies = [m for m in messages[1:] if m["type"] == "http.response.body" and m.get("body")]
    assert len(bodies) == 3  # read and sent 1,000 rows at a time
    assert sum(m["body"].count(b"\n") for m in bodies) == 2500


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("ORG", 422, "format"),
        ("ORG&format=xml", 422, "format"),
        ("ORG&format=CSV", 422, "format"),
        ("format=csv", 422, "organization_id"),
        ("organization_id=org_nobody&format=csv", 404, None),
        ("ORG&format=csv&range_start=soon", 422, "range_start"),
        ("ORG&format=csv&range_start=2026-02-01&range_end=2026-01-01", 422, "range_start"),
        ("ORG&format=ndjson&actions=BAD", 422, "actions"),
        ("ORG&format=ndjson&limit=10", 422, "limit"),
        ("ORG&format=ndjson&after=audit_event_x", 422, "after"),
    ],
)
async def test_export_errors_come_before_the_stream(
    api: httpx.AsyncClient, org_id: str, query: str, status: int, field: str | None
) -> None:
    r = await api.get("/audit_logs/export?" + query.replace("ORG", f"organization_id={org_id}"))
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert "content-disposition" not in r.headers
    assert r.json().get("field") == field and r.json()["message"]


# -- verification ----------------------------------------------------------------------------


async def test_verify_ok_then_tampered(api: httpx.AsyncClient, gate: SSOGate, org_id: str) -> None:
    await _seed(api, org_id)
    r = await api.get("/audit_logs/verify", params={"organization_id": org_id})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["object"] == "audit_log_verification" and report["ok"] is True
    assert report["organization_id"] == org_id and report["problems"] == []
    assert report["checked"] == 6 and report["first_seq"] == 1 and report["last_seq"] == 6

    victim = (
        await api.get(
            "/audit_logs/events", params={"organization_id": org_id, "target_ids": "inv_2"}
        )
    ).json()["data"][0]
    async with gate._rt.transaction() as conn:
        await conn.execute(
            sa.update(audit_events)
            .where(audit_events.c.id == victim["id"])
            .values(metadata={"amount": 0})
        )
    r = await api.get("/audit_logs/verify", params={"organization_id": org_id})
    assert r.status_code == 200
    report = r.json()
    assert report["ok"] is False
    assert [(p["kind"], p["id"]) for p in report["problems"]] == [("edited", victim["id"])]
    assert report["problems"][0]["seq"] == 4 and report["problems"][0]["detail"]


async def test_verify_errors(api: httpx.AsyncClient) -> None:
    r = await api.get("/audit_logs/verify")
    assert r.status_code == 422 and r.json()["field"] == "organization_id"
    r = await api.get("/audit_logs/verify", params={"organization_id": "org_nobody"})
    assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
    r = await api.get("/audit_logs/verify", params={"organization_id": "gate"})
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["checked"] == 0


# -- retention -------------------------------------------------------------------------------


async def test_retention(api: httpx.AsyncClient, org_id: str) -> None:
    path = f"/organizations/{org_id}/audit_log_retention"
    workos = f"/organizations/{org_id}/audit_logs_retention"
    r = await api.get(path)
    assert r.status_code == 200
    assert r.json() == {
        "object": "audit_log_retention",
        "organization_id": org_id,
        "retention_days": None,
        "retention_period_in_days": None,
    }
    r = await api.put(path, json={"retention_days": 30})
    assert r.status_code == 200 and r.json()["retention_days"] == 30
    assert (await api.get(workos)).json()["retention_period_in_days"] == 30
    r = await api.put(workos, json={"retention_period_in_days": 365})
    assert r.status_code == 200 and r.json()["retention_days"] == 365
    assert (await api.get(path)).json()["retention_days"] == 365
    r = await api.put(path, json={"retention_days": None})
    assert r.status_code == 200 and (await api.get(path)).json()["retention_days"] is None
    changes = (
        await api.get(
            "/audit_logs/events",
            params={"organization_id": org_id, "actions": "audit_log.retention_changed"},
        )
    ).json()["data"]
    assert [c["metadata"]["audit_retention_days"] for c in changes] == [None, 365, 30]
    assert changes[0]["actor"]["type"] == "api_key"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "retention_days"),
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": -30}, "retention_days"),
        ({"retention_days": "30"}, "retention_days"),
        ({"retention_days": True}, "retention_days"),
        ({"retention_days": 30.5}, "retention_days"),
        ({"retention_days": 36501}, "retention_days"),
        ({"retention_days": 10**12}, "retention_days"),
        ({"retention_period_in_days": 0}, "retention_period_in_days"),
        ({"retention_days": 30, "retention_period_in_days": 30}, "retention_days"),
        ({"retention_days": 30, "days": 30}, "days"),
    ],
)
async def test_retention_validation(
    api: httpx.AsyncClient, org_id: str, body: dict[str, Any], field: str
) -> None:
    r = await api.put(f"/organizations/{org_id}/audit_log_retention", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and r.json()["message"]
    assert (await api.get(f"/organizations/{org_id}/audit_log_retention")).json()[
        "retention_days"
    ] is None


async def test_retention_of_unknown_organization(api: httpx.AsyncClient) -> None:
    for name in ("audit_log_retention", "audit_logs_retention"):
        r = await api.get(f"/organizations/org_nope/{name}")
        assert r.status_code == 404 and r.json()["code"] == "organization_not_found"
        r = await api.put(f"/organizations/org_nope/{name}", json={"retention_days": 30})
        assert r.status_code == 404 and r.json()["code"] == "organization_not_found"


# -- OpenAPI ---------------------------------------------------------------------------------


async def test_openapi_audit_paths(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for path in AUDIT_ROUTES:
        route = path[1].split("?")[0].replace("org_x", "{id}").replace("audit_event_x", "{id}")
        assert path[0].lower() in paths[route], path
    export = paths["/audit_logs/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert {p["name"] for p in export["parameters"]} == {
        "organization_id",
        "format",
        "actions",
        "actor_ids",
        "target_ids",
        "target_types",
        "range_start",
        "range_end",
    }
    create = paths["/audit_logs/events"]["post"]
    assert create["parameters"][0]["name"] == "Idempotency-Key"
    assert "409" in create["responses"]
    assert schemas["AuditLogEventCreate"]["required"] == ["organization_id", "event"]
    assert set(schemas["AuditLogEventInput"]["required"]) == {"action", "actor"}
    assert schemas["AuditLogVerification"]["properties"]["object"] == {
        "const": "audit_log_verification"
    }
