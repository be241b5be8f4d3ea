"""Audit log streams against real receivers on 127.0.0.1: an HTTP server for the https, Splunk
HEC and Datadog formats, syslog over TCP and TLS (a self-signed certificate made here) parsed
as octet-counted RFC 5424 frames; a receiver that is down for a while, a receiver that resets
the connection, and two workers on PostgreSQL that must never send a batch twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sso_gate import SSOGate
from sso_gate.services import audit_streams as streams_module
from tests.audit.receivers import (
    SD_PARAM_RE,
    SYSLOG_RE,
    HTTPReceiver,
    SyslogReceiver,
    self_signed,
)
from tests.audit.test_streams import Clock, event, org_with_events, paid
from tests.conftest import POSTGRES_URL, make_settings

pytestmark = pytest.mark.anyio

TOKEN = "tok-0123456789abcdef-live"


@pytest.fixture
async def make_gate(database_url: str) -> AsyncIterator[Callable[..., Any]]:
    gates: list[SSOGate] = []

    async def factory(clock: Any = None, **overrides: Any) -> SSOGate:
        overrides.setdefault("allow_private_urls", True)
        overrides.setdefault("webhook_timeout", 5.0)
        g = SSOGate(make_settings(database_url, **overrides), clock=clock)
        await g.migrate()
        g.audit_streams.syslog_linger = 0.5
        gates.append(g)
        return g

    yield factory
    for g in gates:
        await g.aclose()


@pytest.fixture
async def http_receiver() -> AsyncIterator[HTTPReceiver]:
    r = HTTPReceiver()
    await r.start()
    yield r
    await r.stop()


def accepted_events(receiver: HTTPReceiver) -> list[dict[str, Any]]:
    return [e for req in receiver.accepted for e in json.loads(req.body)["events"]]


def parse_syslog(msg: bytes) -> tuple[dict[str, bytes], dict[bytes, bytes], dict[str, Any]]:
    m = SYSLOG_RE.match(msg)
    assert m is not None, msg[:200]
    return m.groupdict(), dict(SD_PARAM_RE.findall(m["params"])), json.loads(m["msg"])


# -- each format over a real socket ----------------------------------------------------------


async def test_https_over_a_socket(make_gate: Any, http_receiver: HTTPReceiver) -> None:
    gate = await make_gate()
    org = await org_with_events(gate)
    await gate.audit_streams.create(
        org, "https", {"url": http_receiver.url + "/audit?src=gate", "token": TOKEN}
    )
    sent = await gate.audit.emit_many(org, [event(i) for i in range(5)])
    await gate.worker.drain()
    (req,) = http_receiver.accepted
    assert req.method == "POST" and req.path == "/audit?src=gate"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == "sso-gate-audit-streams/1"
    body = json.loads(req.body)
    assert list(body) == ["events"] and body["events"][1:] == [e.to_dict() for e in sent]


async def test_splunk_hec_over_a_socket(make_gate: Any, http_receiver: HTTPReceiver) -> None:
    gate = await make_gate()
    org = await org_with_events(gate)
    await gate.audit_streams.create(
        org, "splunk_hec", {"url": http_receiver.url, "token": TOKEN, "sourcetype": "sso:audit"}
    )
    sent = await gate.audit.emit_many(org, [event(i) for i in range(3)])
    await gate.worker.drain()
    (req,) = http_receiver.accepted
    assert req.method == "POST" and req.path == "/services/collector/event"
    assert req.headers["authorization"] == f"Splunk {TOKEN}"
    lines = req.body.decode().split("\n")
    assert len(lines) == 4
    for raw in lines:
        obj = json.loads(raw)  # each line one JSON object
        assert isinstance(obj, dict)
        assert isinstance(obj["time"], float) and obj["source"] == "sso_gate"
        assert obj["sourcetype"] == "sso:audit" and "index" not in obj
        assert obj["host"] == "app.test" and isinstance(obj["event"], dict)
    assert [json.loads(raw)["event"] for raw in lines[1:]] == [e.to_dict() for e in sent]


async def test_datadog_over_a_socket(make_gate: Any, http_receiver: HTTPReceiver) -> None:
    http_receiver.status = lambda req: 202  # what the intake answers
    gate = await make_gate()
    org = await org_with_events(gate)
    stream = await gate.audit_streams.create(
        org, "datadog", {"api_key": TOKEN, "url": http_receiver.url + "/api/v2/logs"}
    )
    sent = await gate.audit.emit_many(org, [event(i) for i in range(3)])
    await gate.worker.drain()
    (req,) = http_receiver.accepted
    assert req.path == "/api/v2/logs" and req.headers["dd-api-key"] == TOKEN
    assert req.headers["content-type"] == "application/json"
    items = json.loads(req.body)
    assert isinstance(items, list) and len(items) == 4
    for item in items:
        assert item["ddsource"] == "sso_gate" and item["service"] == "sso_gate"
        assert item["ddtags"].startswith(f"organization_id:{org},action:")
        assert isinstance(item["message"], str)
    assert [json.loads(i["message"]) for i in items[1:]] == [e.to_dict() for e in sent]
    assert (await gate.audit_streams.get(stream.id)).lag == 0


@pytest.mark.parametrize("transport", ["tcp", "tls"])
async def test_syslog_over_a_socket(make_gate: Any, tmp_path: Path, transport: str) -> None:
    cert = self_signed(tmp_path)
    receiver = SyslogReceiver(cert.server_context() if transport == "tls" else None)
    await receiver.start()
    try:
        gate = await make_gate()
        org = await org_with_events(gate)
        config: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": receiver.port,
            "transport": transport,
        }
        if transport == "tls":
            config["ca_pem"] = cert.cert_pem
        else:
            config["facility"] = 10  # authpriv
        stream = await gate.audit_streams.create(org, "syslog", config)
        sent = await gate.audit.emit_many(org, [event(i) for i in range(150)])
        await gate.worker.drain()
        assert receiver.connections == 2  # 151 events: a batch of 100, then 51
        parsed = [parse_syslog(m) for m in receiver.messages]
        assert [p[2] for p in parsed[1:]] == [e.to_dict() for e in sent]
        for header, params, ev in parsed:
            pri = 110 if transport == "tls" else 86  # facility * 8 + 6 (informational)
            assert int(header["pri"]) == pri and header["version"] == b"1"
            assert header["app"] == b"sso_gate" and header["host"] == b"app.test"
            assert header["msgid"] == ev["action"].encode()
            assert header["ts"] == ev["occurred_at"].encode()
            assert header["sdid"] == b"sso_gate@32473"
            assert params == {b"organization_id": org.encode(), b"event_id": ev["id"].encode()}
        s = await gate.audit_streams.get(stream.id)
        assert s.lag == 0 and s.consecutive_failures == 0
        result = await gate.audit_streams.test(stream.id)
        assert result.success and result.status_code is None
        assert parse_syslog(receiver.messages[-1])[2]["action"] == "audit_stream.tested"
    finally:
        await receiver.stop()


async def test_syslog_tls_refuses_an_untrusted_server(make_gate: Any, tmp_path: Path) -> None:
    receiver = SyslogReceiver(self_signed(tmp_path, "server").server_context())
    await receiver.start()
    try:
        gate = await make_gate()
        org = await org_with_events(gate)
        other_ca = self_signed(tmp_path, "other").cert_pem
        stream = await gate.audit_streams.create(
            org, "syslog", {"host": "127.0.0.1", "port": receiver.port, "ca_pem": other_ca}
        )
        await gate.audit.emit_many(org, [event(0)])
        assert await gate.worker.run_once() == 1
        s = await gate.audit_streams.get(stream.id)
        assert s.consecutive_failures == 1 and s.cursor == stream.cursor
        assert s.last_error is not None and "certificate is not trusted" in s.last_error
        assert receiver.messages == []
    finally:
        await receiver.stop()


async def test_syslog_reset_connection_is_sent_again(make_gate: Any) -> None:
    receiver = SyslogReceiver()
    receiver.reset_next = 1
    await receiver.start()
    try:
        clock = Clock()
        gate = await make_gate(clock)
        org = await org_with_events(gate)
        stream = await gate.audit_streams.create(
            org, "syslog", {"host": "127.0.0.1", "port": receiver.port, "transport": "tcp"}
        )
        await gate.audit.emit_many(org, [event(i) for i in range(20)])
        assert await gate.worker.run_once() == 1
        s = await gate.audit_streams.get(stream.id)
        assert s.last_error == "the receiver reset the connection"
        assert receiver.messages == []
        clock.advance(10)
        await gate.worker.drain()
        assert paid([parse_syslog(m)[2] for m in receiver.messages]) == list(range(20))
    finally:
        await receiver.stop()


# -- outages and concurrency -----------------------------------------------------------------


async def test_destinations_down_for_a_while_lose_nothing(make_gate: Any) -> None:
    http, syslog = HTTPReceiver(), SyslogReceiver()
    for r in (http, syslog):
        await r.start()
        await r.stop()  # the port is known, nobody listens: down
    clock = Clock()
    gate = await make_gate(clock)
    org = await org_with_events(gate)
    hec = await gate.audit_streams.create(org, "splunk_hec", {"url": http.url, "token": TOKEN})
    sys_ = await gate.audit_streams.create(
        org, "syslog", {"host": "127.0.0.1", "port": syslog.port, "transport": "tcp"}
    )
    n = 0
    for _ in range(6):  # events keep coming while the destinations are down
        await gate.audit.emit_many(org, [event(n + i) for i in range(40)])
        n += 40
        await gate.worker.run_once()
        clock.advance(90)
    for s in (hec, sys_):
        down = await gate.audit_streams.get(s.id)
        assert down.consecutive_failures >= 3 and down.cursor == s.cursor
        assert down.lag is not None and down.lag >= n
    http.fail_first = 1  # back, but the first answer is a 503
    await http.start()
    await syslog.start()
    for _ in range(20):
        clock.advance(3700)  # past any backoff
        await gate.worker.drain()
    got_hec = [json.loads(line)["event"] for r in http.accepted for line in r.body.split(b"\n")]
    got_sys = [parse_syslog(m)[2] for m in syslog.messages]
    for got in (got_hec, got_sys):
        assert paid(got) == list(range(n))  # everything, in order, once
        assert len({e["id"] for e in got}) == len(got)
    assert len(http.requests) == len(http.accepted) + 1
    for s in (hec, sys_):
        up = await gate.audit_streams.get(s.id)
        assert (up.lag, up.consecutive_failures, up.last_error) == (0, 0, None)
    await http.stop()
    await syslog.stop()


@pytest.mark.skipif(POSTGRES_URL is None, reason="SSO_GATE_TEST_POSTGRES_URL is not set")
async def test_two_workers_on_postgresql_never_send_a_batch_twice(
    make_gate: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("one worker at a time on SQLite (a lease); this is the PostgreSQL case")
    monkeypatch.setattr(streams_module, "_CLAIM_BATCH", 2)  # so that both workers get work
    receiver = HTTPReceiver(delay=0.01)
    await receiver.start()
    try:
        g1 = await make_gate()
        g2 = await make_gate()
        org = await org_with_events(g1)
        ids = [
            (await g1.audit_streams.create(org, "https", {"url": f"{receiver.url}/s{i}",
                                                          "batch_size": 25})).id
            for i in range(4)
        ]  # fmt: skip
        batches = {"w1": 0, "w2": 0}
        done = asyncio.Event()

        async def work(gate: SSOGate, name: str) -> None:
            while not done.is_set():
                n = await gate.audit_streams.deliver_due()
                batches[name] += n
                await gate.audit.chain()
                if not n:
                    await asyncio.sleep(0.005)

        async def produce() -> None:
            for chunk in range(10):
                await g2.audit.emit_many(org, [event(chunk * 30 + i) for i in range(30)])
                await asyncio.sleep(0.02)
            while True:
                await g1.audit.chain()
                lags = [(await g1.audit_streams.get(i)).lag for i in ids]
                if all(lag == 0 for lag in lags):
                    break
                await asyncio.sleep(0.05)
            done.set()

        await asyncio.wait_for(
            asyncio.gather(work(g1, "w1"), work(g2, "w2"), produce()), timeout=90
        )
        for i in range(4):
            evs = [
                e
                for r in receiver.accepted
                if r.path == f"/s{i}"
                for e in json.loads(r.body)["events"]
            ]
            assert paid(evs) == list(range(300))
            assert len({e["id"] for e in evs}) == len(evs), "an event was sent twice"
        assert len(receiver.requests) == len(receiver.accepted)
        assert batches["w1"] > 0 and batches["w2"] > 0, batches
    finally:
        await receiver.stop()
