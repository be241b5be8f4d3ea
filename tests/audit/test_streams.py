"""Audit log streams, in-process: configuration and validation, secrets, each HTTP type's
payload (through an httpx mock transport), batching in chain order, retries with backoff, the
test send, rewinding, and the retention purge holding undelivered events. Real sockets (HTTP
and syslog receivers on loopback, TLS, outages, two workers): test_streams_live.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sso_gate import SSOGate, ValidationError
from sso_gate.exceptions import NotFoundError, StorageUnavailableError
from sso_gate.services._stream_formats import syslog_frame
from sso_gate.webhooks import ReplayCache, generate_secret, verify
from tests.audit.receivers import SD_PARAM_RE, SYSLOG_RE
from tests.conftest import make_settings, outage_once

pytestmark = pytest.mark.anyio

TOKEN = "hec-7f3a9c2e-1b4d-4e8f-9a6b-c0ffee0d1234"
API_KEY = "dd0123456789abcdef0123456789abcd"
URL = "https://siem.example.com/ingest"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Mock:
    """An httpx handler that records requests and answers ``status`` (or ``respond``)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []
        self.respond: Callable[[httpx.Request], httpx.Response] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.respond is not None:
            return self.respond(request)
        return httpx.Response(self.status, json={"text": "Success", "code": 0})

    def events(self) -> list[dict[str, Any]]:
        out = []
        for r in self.requests:
            out.extend(json.loads(r.content)["events"])
        return out


@pytest.fixture
async def make_gate(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    gates: list[SSOGate] = []

    async def factory(mock: Mock | None = None, clock: Any = None, **overrides: Any) -> SSOGate:
        overrides.setdefault("allow_private_urls", True)
        client = httpx.AsyncClient(transport=httpx.MockTransport(mock)) if mock else None
        g = SSOGate(make_settings(database_url, **overrides), http_client=client, clock=clock)
        await g.migrate()
        gates.append(g)
        return g

    yield factory
    for g in gates:
        await g.aclose()


def event(i: int = 0) -> dict[str, Any]:
    return {
        "action": "invoice.paid",
        "actor": {"type": "user", "id": "user_1", "name": "Alice"},
        "targets": [{"type": "invoice", "id": f"inv_{i}"}],
        "context": {"location": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "metadata": {"n": i, "note": 'quote " bracket ] backslash \\'},
    }


async def org_with_events(gate: SSOGate, n: int = 0) -> str:
    org = (await gate.organizations.create("Acme", ["acme.test"])).id
    await gate.audit.chain()
    if n:
        await gate.audit.emit_many(org, [event(i) for i in range(n)])
    return org


def paid(events: list[dict[str, Any]]) -> list[int]:
    return [e["metadata"]["n"] for e in events if e["action"] == "invoice.paid"]


# -- configuration ---------------------------------------------------------------------------


async def test_crud_keeps_secrets_out_of_every_answer(make_gate: Any) -> None:
    gate = await make_gate(Mock())
    org = await org_with_events(gate)
    signing = generate_secret()
    stream = await gate.audit_streams.create(
        org, "https", {"url": URL, "token": TOKEN, "signing_secret": signing}, name="SIEM"
    )
    assert stream.id.startswith("audit_stream_") and stream.state == "active"
    assert stream.config == {"url": URL}
    assert stream.secret_hints == {"token": TOKEN[-4:], "signing_secret": signing[-4:]}
    for text in (json.dumps(stream.to_dict()), repr(stream), str(stream)):
        assert TOKEN not in text and signing not in text
    assert (await gate.audit_streams.get(stream.id)).to_dict() == stream.to_dict()
    page = await gate.audit_streams.list(org)
    assert [s.id for s in page.data] == [stream.id]
    assert (await gate.audit_streams.list("org_other")).data == ()

    # a config change merges: the secrets given before are kept unless replaced or removed
    moved = await gate.audit_streams.update(
        stream.id, {"config": {"url": URL + "/v2"}, "name": "SIEM 2"}
    )
    assert moved.config == {"url": URL + "/v2"} and moved.name == "SIEM 2"
    assert set(moved.secret_hints) == {"token", "signing_secret"}
    dropped = await gate.audit_streams.update(stream.id, {"config": {"signing_secret": None}})
    assert set(dropped.secret_hints) == {"token"}
    off = await gate.audit_streams.update(stream.id, {"enabled": False})
    assert off.state == "disabled"
    with pytest.raises(ValidationError) as err:
        await gate.audit_streams.update(stream.id, {"type": "datadog"})
    assert err.value.field == "type"

    await gate.audit_streams.delete(stream.id)
    with pytest.raises(NotFoundError):
        await gate.audit_streams.get(stream.id)
    with pytest.raises(NotFoundError):
        await gate.audit_streams.create("org_missing", "https", {"url": URL})

    # the changes are audited, without the secrets
    await gate.audit.chain()
    log = (await gate.audit.list(org, limit=100)).data
    actions = [e.action for e in log if e.action.startswith("audit_stream.")]
    assert actions == ["audit_stream.deleted"] + ["audit_stream.updated"] * 3 + [
        "audit_stream.created"
    ]
    dump = json.dumps([e.to_dict() for e in log])
    assert TOKEN not in dump and signing not in dump


PROD = {"environment": "production", "base_url": "https://app.test"}
SYSLOG = {"host": "siem.example.com", "port": 6514}


@pytest.mark.parametrize(
    ("type_", "config", "field", "overrides"),
    [
        ("kafka", {"url": URL}, "type", {}),
        ("https", {}, "config.url", {}),
        ("https", {"url": "ftp://siem.example.com/"}, "config.url", {}),
        ("https", {"url": "http://siem.example.com/"}, "config.url", PROD),
        ("https", {"url": "https://user:pw@siem.example.com/"}, "config.url", {}),
        ("https", {"url": URL, "surprise": 1}, "config.surprise", {}),
        ("https", {"url": URL, "batch_size": 0}, "config.batch_size", {}),
        ("https", {"url": URL, "batch_size": 1001}, "config.batch_size", {}),
        ("https", {"url": URL, "signing_secret": "short"}, "config.signing_secret", {}),
        ("https", {"url": URL, "token": "has space"}, "config.token", {}),
        ("splunk_hec", {"url": "https://splunk.example.com:8088"}, "config.token", {}),
        ("splunk_hec", {"token": TOKEN}, "config.url", {}),
        ("datadog", {}, "config.api_key", {}),
        ("datadog", {"api_key": API_KEY, "site": "example.com"}, "config.site", {}),
        ("datadog", {"api_key": API_KEY, "tags": "env:prod"}, "config.tags", {}),
        ("syslog", {"port": 6514}, "config.host", {}),
        ("syslog", {"host": "siem.example.com"}, "config.port", {}),
        ("syslog", {**SYSLOG, "port": 70000}, "config.port", {}),
        ("syslog", {**SYSLOG, "port": "6514"}, "config.port", {}),
        ("syslog", {**SYSLOG, "facility": 24}, "config.facility", {}),
        ("syslog", {**SYSLOG, "facility": "audit"}, "config.facility", {}),
        ("syslog", {**SYSLOG, "transport": "udp"}, "config.transport", {}),
        ("syslog", {**SYSLOG, "transport": "tcp"}, "config.transport", PROD),
        ("syslog", {**SYSLOG, "ca_pem": "not a certificate"}, "config.ca_pem", {}),
        ("syslog", {**SYSLOG, "host": "siem.example.com/x"}, "config.host", {}),
        # non-public destinations without SSO_GATE_ALLOW_PRIVATE_URLS
        ("https", {"url": "http://127.0.0.1:9000/"}, "config.url", {"allow_private_urls": False}),
        (
            "splunk_hec",
            {"url": "https://192.168.1.10:8088", "token": TOKEN},
            "config.url",
            {"allow_private_urls": False},
        ),
        (
            "datadog",
            {"api_key": API_KEY, "url": "https://10.0.0.5/api/v2/logs"},
            "config.url",
            {"allow_private_urls": False},
        ),
        ("syslog", {**SYSLOG, "host": "10.1.2.3"}, "config.host", {"allow_private_urls": False}),
    ],
)
async def test_bad_configs_are_refused(
    make_gate: Any, type_: str, config: dict[str, Any], field: str, overrides: dict[str, Any]
) -> None:
    gate = await make_gate(Mock(), **overrides)
    org = await org_with_events(gate)
    with pytest.raises(ValidationError) as err:
        await gate.audit_streams.create(org, type_, config)  # type: ignore[arg-type]
    assert err.value.field == field, err.value.message
    for secret in (TOKEN, API_KEY):
        assert secret not in err.value.message


async def test_plain_tcp_syslog_to_a_local_relay_is_allowed_in_production(make_gate: Any) -> None:
    gate = await make_gate(Mock(), **PROD)
    org = await org_with_events(gate)
    s = await gate.audit_streams.create(
        org, "syslog", {"host": "127.0.0.1", "port": 514, "transport": "tcp"}
    )
    assert s.config == {"host": "127.0.0.1", "port": 514, "transport": "tcp", "facility": 13}


# -- payload shapes --------------------------------------------------------------------------


async def test_https_batches_are_json_with_bearer_and_signature(make_gate: Any) -> None:
    mock = Mock()
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    signing = generate_secret()
    await gate.audit_streams.create(
        org, "https", {"url": URL, "token": TOKEN, "signing_secret": signing}
    )
    sent = await gate.audit.emit_many(org, [event(i) for i in range(3)])
    await gate.worker.drain()
    assert len(mock.requests) == 1
    req = mock.requests[0]
    assert req.method == "POST" and str(req.url) == URL
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    body = verify(req.content, req.headers, signing, replay_cache=ReplayCache())
    assert list(body) == ["events"]
    assert [e["action"] for e in body["events"]] == ["audit_stream.created"] + ["invoice.paid"] * 3
    assert body["events"][1:] == [e.to_dict() for e in sent]
    assert set(body["events"][1]) == {
        "object", "id", "organization_id", "action", "occurred_at", "actor", "targets",
        "context", "metadata", "version", "created_at",
    }  # fmt: skip


async def test_splunk_hec_payload(make_gate: Any) -> None:
    mock = Mock()
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    stream = await gate.audit_streams.create(
        org,
        "splunk_hec",
        # a URL that already names the endpoint is reduced to the HEC base URL
        {"url": "https://splunk.example.com:8088/services/collector/event", "token": TOKEN,
         "index": "audit"},
    )  # fmt: skip
    assert stream.config["url"] == "https://splunk.example.com:8088"
    sent = await gate.audit.emit_many(org, [event(i) for i in range(2)])
    await gate.worker.drain()
    (req,) = mock.requests
    assert str(req.url) == "https://splunk.example.com:8088/services/collector/event"
    assert req.headers["authorization"] == f"Splunk {TOKEN}"
    uuid.UUID(req.headers["x-splunk-request-channel"])
    lines = [json.loads(line) for line in req.content.decode().split("\n")]
    assert len(lines) == 3
    for line in lines:
        assert set(line) == {"time", "host", "source", "sourcetype", "index", "event"}
        assert (line["host"], line["source"], line["sourcetype"], line["index"]) == (
            "app.test", "sso_gate", "_json", "audit",
        )  # fmt: skip
        occurred = datetime.fromisoformat(line["event"]["occurred_at"])
        assert line["time"] == pytest.approx(occurred.timestamp(), abs=0.001)
    assert [line["event"] for line in lines[1:]] == [e.to_dict() for e in sent]


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({}, "https://http-intake.logs.datadoghq.com/api/v2/logs"),
        ({"site": "datadoghq.eu"}, "https://http-intake.logs.datadoghq.eu/api/v2/logs"),
        ({"url": "https://dd-proxy.example.com/v2/logs"}, "https://dd-proxy.example.com/v2/logs"),
    ],
)
async def test_datadog_payload(make_gate: Any, config: dict[str, Any], url: str) -> None:
    mock = Mock(202)
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    await gate.audit_streams.create(
        org, "datadog", {"api_key": API_KEY, "service": "billing", "tags": ["env:prod"], **config}
    )
    sent = await gate.audit.emit_many(org, [event(0)])
    await gate.worker.drain()
    (req,) = mock.requests
    assert str(req.url) == url
    assert req.headers["dd-api-key"] == API_KEY
    assert req.headers["content-type"] == "application/json"
    items = json.loads(req.content)
    assert isinstance(items, list) and len(items) == 2
    item = items[1]
    assert item["ddsource"] == "sso_gate" and item["service"] == "billing"
    assert item["hostname"] == "app.test" and item["status"] == "info"
    assert item["ddtags"] == f"organization_id:{org},action:invoice.paid,env:prod"
    assert json.loads(item["message"]) == sent[0].to_dict()


def test_syslog_frame_is_rfc5424_octet_counted() -> None:
    ev = {
        "id": "audit_event_01",
        "organization_id": 'org_"x]',
        "action": "a" * 40 + ".changed",
        "occurred_at": "2026-11-28T10:00:00.123Z",
        "metadata": {"text": "é"},
    }
    frame = syslog_frame(ev, facility=4, hostname="app.test")
    length, _, msg = frame.partition(b" ")
    assert int(length) == len(msg)
    m = SYSLOG_RE.match(msg)
    assert m is not None, msg
    assert m["pri"] == b"38" and m["version"] == b"1"  # auth (4) * 8 + informational (6)
    assert m["ts"] == b"2026-11-28T10:00:00.123Z" and m["host"] == b"app.test"
    assert m["app"] == b"sso_gate" and m["procid"] == b"-" and m["msgid"] == b"a" * 32
    assert m["sdid"] == b"sso_gate@32473"
    params = dict(SD_PARAM_RE.findall(m["params"]))
    assert params == {b"organization_id": b'org_\\"x\\]', b"event_id": b"audit_event_01"}
    assert msg.isascii() and json.loads(m["msg"]) == ev  # ASCII JSON: MSG-ANY, no BOM


# -- delivery --------------------------------------------------------------------------------


async def test_batches_follow_chain_order(make_gate: Any) -> None:
    mock = Mock()
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    await gate.audit_streams.create(org, "https", {"url": URL})
    small = await gate.audit_streams.create(org, "https", {"url": URL + "/small", "batch_size": 30})
    for chunk in range(5):
        await gate.audit.emit_many(org, [event(chunk * 50 + i) for i in range(50)])
    await gate.worker.drain()
    by_url: dict[str, list[int]] = {}
    sizes: dict[str, list[int]] = {}
    for r in mock.requests:
        evs = json.loads(r.content)["events"]
        by_url.setdefault(str(r.url), []).extend(paid(evs))
        sizes.setdefault(str(r.url), []).append(len(evs))
    assert by_url[URL] == by_url[URL + "/small"] == list(range(250))
    assert max(sizes[URL]) == 100 and max(sizes[URL + "/small"]) == 30
    after = await gate.audit_streams.get(small.id)
    assert after.lag == 0 and after.cursor > 250 and after.last_success_at is not None


async def test_failures_back_off_and_nothing_is_lost(make_gate: Any) -> None:
    clock = Clock()
    mock = Mock(503)
    gate = await make_gate(mock, clock=clock)
    org = await org_with_events(gate)
    stream = await gate.audit_streams.create(org, "https", {"url": URL})
    await gate.audit.emit_many(org, [event(i) for i in range(5)])
    delays = []
    for failures in range(1, 5):
        assert await gate.worker.run_once() == 1
        s = await gate.audit_streams.get(stream.id)
        assert s.consecutive_failures == failures and s.state == "failing"
        assert s.last_error is not None and s.last_error.startswith("HTTP 503")
        assert s.cursor == stream.cursor
        assert s.next_attempt_at is not None
        delays.append((s.next_attempt_at - clock.now).total_seconds())
        assert await gate.worker.run_once() == 0  # not due yet
        clock.advance(delays[-1] + 0.01)
    for n, delay in enumerate(delays):  # 5 s doubling, ±20 % jitter
        assert 5 * 2**n * 0.8 <= delay <= 5 * 2**n * 1.2
    assert gate.audit_streams._backoff(30) <= 3600 * 1.2
    mock.status = 200
    await gate.worker.drain()
    s = await gate.audit_streams.get(stream.id)
    assert (s.consecutive_failures, s.last_error, s.lag, s.state) == (0, None, 0, "active")
    assert paid(json.loads(mock.requests[-1].content)["events"]) == list(range(5))


@pytest.mark.parametrize(
    ("step", "commits"),
    [
        ("_claim", False),
        ("_claim", True),
        ("_deliver", False),
        ("_finish", False),
        ("_finish", True),
    ],
)
async def test_a_pass_the_database_interrupts_is_settled_by_the_next(
    make_gate: Any, step: str, commits: bool
) -> None:
    """Whichever step an outage hits (before it writes, or after its COMMIT with the answer
    lost), the next pass finishes the work without waiting for the lease and without sending a
    batch twice."""
    mock = Mock()
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    stream = await gate.audit_streams.create(org, "https", {"url": URL})
    await gate.audit.emit_many(org, [event(i) for i in range(5)])
    await gate.audit.chain()
    outage_once(gate.audit_streams, step, commits=commits)
    with pytest.raises(StorageUnavailableError):
        await gate.worker.run_once()
    await gate.worker.drain()  # no clock moves: a stranded lease would hold the stream
    assert len(mock.requests) == 1 and paid(mock.events()) == list(range(5))
    s = await gate.audit_streams.get(stream.id)
    assert (s.lag, s.consecutive_failures, s.state) == (0, 0, "active")


async def test_errors_never_show_a_secret(make_gate: Any) -> None:
    mock = Mock()
    mock.respond = lambda r: httpx.Response(401, text=f"bad credentials {r.headers['dd-api-key']}")
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    stream = await gate.audit_streams.create(org, "datadog", {"api_key": API_KEY})
    await gate.worker.run_once()
    s = await gate.audit_streams.get(stream.id)
    assert s.last_error == "HTTP 401: bad credentials ***"
    result = await gate.audit_streams.test(stream.id)
    assert result.error == "HTTP 401: bad credentials ***"
    assert API_KEY not in json.dumps(s.to_dict()) + repr(s) + json.dumps(result.to_dict())


async def test_test_sends_one_synthetic_event(make_gate: Any) -> None:
    mock = Mock()
    gate = await make_gate(mock)
    org = await org_with_events(gate)
    stream = await gate.audit_streams.create(org, "https", {"url": URL}, enabled=False)
    result = await gate.audit_streams.test(stream.id)
    assert result.success and result.status_code == 200 and result.error is None
    assert result.latency_ms >= 0
    (ev,) = mock.events()
    assert ev["action"] == "audit_stream.tested" and ev["id"].startswith("audit_event_test_")
    assert ev["targets"] == [{"type": "audit_log_stream", "id": stream.id}]
    assert (await gate.audit_streams.get(stream.id)).cursor == stream.cursor
    mock.status = 500
    failed = await gate.audit_streams.test(stream.id)
    assert not failed.success and failed.status_code == 500 and failed.error is not None
    with pytest.raises(NotFoundError):
        await gate.audit_streams.test("audit_stream_missing")


async def test_start_disable_enable_and_rewind(make_gate: Any) -> None:
    mock = Mock()
    gate = await make_gate(mock)
    org = await org_with_events(gate, 3)
    await gate.audit.chain()
    now = await gate.audit_streams.create(org, "https", {"url": URL + "/now"})
    everything = await gate.audit_streams.create(
        org, "https", {"url": URL + "/all"}, start="beginning"
    )
    assert everything.cursor == 0 and now.cursor > 3
    off = await gate.audit_streams.create(org, "https", {"url": URL + "/off"}, enabled=False)
    await gate.worker.drain()

    def got(path: str) -> list[int]:
        return paid(
            [
                e
                for r in mock.requests
                if str(r.url) == URL + path
                for e in json.loads(r.content)["events"]
            ]
        )

    assert got("/now") == [] and got("/all") == [0, 1, 2] and got("/off") == []
    await gate.audit.emit_many(org, [event(3)])
    await gate.worker.drain()
    assert got("/now") == [3] and got("/off") == []
    await gate.audit_streams.update(off.id, {"enabled": True})
    await gate.worker.drain()
    assert got("/off") == [3]  # from where it was created, not from the beginning
    await gate.audit_streams.update(now.id, {"cursor": 0})
    await gate.worker.drain()
    assert got("/now") == [3, 0, 1, 2, 3]
    head = (await gate.audit_streams.get(now.id)).cursor
    for bad in (-1, head + 1, "0", True):
        with pytest.raises(ValidationError) as err:
            await gate.audit_streams.update(now.id, {"cursor": bad})
        assert err.value.field == "cursor"


async def test_purge_keeps_what_enabled_streams_have_not_delivered(make_gate: Any) -> None:
    clock = Clock()
    mock = Mock(503)
    gate = await make_gate(mock, clock=clock)
    org = await org_with_events(gate)
    await gate.audit.set_retention(org, 1)
    stream = await gate.audit_streams.create(org, "https", {"url": URL})
    idle = await gate.audit_streams.create(org, "https", {"url": URL + "/idle"}, enabled=False)
    await gate.audit.emit_many(org, [event(i) for i in range(10)])
    await gate.worker.run_once()  # chains; the destination fails
    clock.advance(2 * 86400)
    await gate.audit.purge()
    kept = (await gate.audit.list(org, actions=["invoice.paid"], limit=100)).data
    assert len(kept) == 10  # held for the stream, though older than the retention
    mock.status, mock.requests = 200, []
    clock.advance(3600)
    await gate.worker.drain()
    assert paid(mock.events()) == list(range(10))
    cursor = (await gate.audit_streams.get(stream.id)).cursor
    assert (await gate.audit_streams.get(idle.id)).cursor < cursor  # disabled: holds nothing
    await gate.audit.purge()
    assert (await gate.audit.list(org, actions=["invoice.paid"], limit=100)).data == ()
    report = await gate.audit.verify(org)
    assert report.ok, report.to_dict()


async def test_fixing_the_config_retries_at_once(make_gate: Any) -> None:
    clock = Clock()
    mock = Mock()
    mock.respond = lambda r: httpx.Response(200 if r.url.path == "/fixed" else 404)
    gate = await make_gate(mock, clock=clock)
    org = await org_with_events(gate, 2)
    stream = await gate.audit_streams.create(
        org, "https", {"url": URL, "token": TOKEN}, start="beginning"
    )
    await gate.worker.run_once()
    assert (await gate.audit_streams.get(stream.id)).last_error == "HTTP 404"
    assert await gate.worker.run_once() == 0  # backing off
    fixed = await gate.audit_streams.update(
        stream.id, {"config": {"url": "https://siem.example.com/fixed"}}
    )
    assert fixed.consecutive_failures == 0 and fixed.secret_hints == {"token": TOKEN[-4:]}
    await gate.worker.drain()
    assert mock.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert paid(json.loads(mock.requests[-1].content)["events"]) == [0, 1]
    assert (await gate.audit_streams.get(stream.id)).state == "active"


async def test_gate_wide_audit_log_can_be_streamed(make_gate: Any) -> None:
    mock = Mock()
    gate = await make_gate(mock)
    stream = await gate.audit_streams.create("gate", "https", {"url": URL})
    await gate.webhooks.create("https://hooks.example.com/x")  # audited in the "gate" scope
    await gate.worker.drain()
    actions = [e["action"] for e in mock.events()]
    assert actions[0] == "audit_stream.created" and len(actions) >= 2
    assert {e["organization_id"] for e in mock.events()} == {"gate"}
    assert (await gate.audit_streams.get(stream.id)).lag == 0
