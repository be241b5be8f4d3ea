"""Webhook endpoints, the sequencer, delivery, retries, disabling, rotation, redelivery, the
Events API and retention — in-process, with an httpx mock receiver (real-process tests live in
tests/e2e/test_webhooks_processes.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from sso_gate import SSOGate, ValidationError
from sso_gate.exceptions import NotFoundError, StorageUnavailableError
from sso_gate.services.delivery import DeliveryWorker
from sso_gate.store.tables import events as events_table
from sso_gate.store.tables import webhook_attempts, webhook_deliveries
from sso_gate.webhooks import ReplayCache, verify
from tests.conftest import make_settings, outage_once

pytestmark = pytest.mark.anyio

URL = "https://hooks.example.com/sso"


class Receiver:
    """Answers ``fail_first`` requests with 503, then 200; records what arrived."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first = fail_first
        self.status = status
        self.requests: list[httpx.Request] = []
        self.accepted: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) <= self.fail_first:
            return httpx.Response(self.status, text="try later " + "x" * 1000)
        self.accepted.append(request)
        return httpx.Response(200, text="ok")


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def make_gate(
    database_url: str,
) -> AsyncIterator[Callable[..., Any]]:
    gates: list[SSOGate] = []

    async def factory(rcv: Receiver, **overrides: Any) -> SSOGate:
        overrides.setdefault("allow_private_urls", True)
        overrides.setdefault("webhook_retry_schedule", (0.0, 0.0, 0.0))
        client = httpx.AsyncClient(transport=httpx.MockTransport(rcv))
        g = SSOGate(make_settings(database_url, **overrides), http_client=client)
        await g.migrate()
        gates.append(g)
        return g

    yield factory
    for g in gates:
        await g.aclose()


# -- endpoints -------------------------------------------------------------------------------


async def test_create_returns_the_secret_once(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    endpoint, secret = await gate.webhooks.create(URL, ["dsync.*", "organization.created"])
    assert secret.startswith("whsec_")
    assert endpoint.events == ("dsync.*", "organization.created")
    assert endpoint.enabled and endpoint.secret_hint == secret[-4:]
    data = json.dumps((await gate.webhooks.get(endpoint.id)).to_dict())
    assert secret not in data and secret[6:] not in data
    assert secret not in repr(endpoint)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://hooks.example.com/x", "invalid_request"),
        ("not a url", "invalid_request"),
        ("https://user:pw@hooks.example.com/x", "invalid_request"),
        ("https://hooks.example.com/x#frag", "invalid_request"),
        ("https://" + "a" * 2050 + ".com/", "invalid_request"),
    ],
)
async def test_bad_urls_are_refused(
    make_gate: Any, receiver: Receiver, url: str, code: str
) -> None:
    gate = await make_gate(receiver)
    with pytest.raises(ValidationError) as err:
        await gate.webhooks.create(url, ["*"])
    assert err.value.code == code and err.value.field == "url"


async def test_http_is_refused_outside_development(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver, environment="production", base_url="https://app.test")
    with pytest.raises(ValidationError) as err:
        await gate.webhooks.create("http://hooks.example.com/x", ["*"])
    assert err.value.code == "https_required"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://10.0.0.5/x",
        "https://169.254.169.254/latest",
        "https://[::1]/",
    ],
)
async def test_private_addresses_are_refused(make_gate: Any, receiver: Receiver, url: str) -> None:
    gate = await make_gate(receiver, allow_private_urls=False)
    with pytest.raises(ValidationError) as err:
        await gate.webhooks.create(url, ["*"])
    assert err.value.code == "private_address"
    assert "SSO_GATE_ALLOW_PRIVATE_URLS" in err.value.message


@pytest.mark.parametrize(
    "events", [[], ["dsync.user.exploded"], ["nope.*"], "", [""], [42], ["dsync.user.created", "x"]]
)
async def test_unknown_event_names_are_refused(
    make_gate: Any, receiver: Receiver, events: Any
) -> None:
    gate = await make_gate(receiver)
    with pytest.raises(ValidationError) as err:
        await gate.webhooks.create(URL, events)
    assert err.value.field == "events"


async def test_update_and_delete(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    endpoint, _ = await gate.webhooks.create(URL, ["*"])
    changed = await gate.webhooks.update(
        endpoint.id, {"url": URL + "/v2", "events": ["connection.*"], "description": "ops"}
    )
    assert changed.url == URL + "/v2" and changed.events == ("connection.*",)
    with pytest.raises(ValidationError):
        await gate.webhooks.update(endpoint.id, {"secret": "x"})
    with pytest.raises(ValidationError):
        await gate.webhooks.update(endpoint.id, {"enabled": "yes"})
    await gate.webhooks.delete(endpoint.id)
    with pytest.raises(NotFoundError):
        await gate.webhooks.get(endpoint.id)


# -- delivery --------------------------------------------------------------------------------


async def test_events_are_delivered_signed(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    _, secret = await gate.webhooks.create(URL, ["organization.*"])
    org = await gate.organizations.create("Acme", ["acme.test"])
    await gate.worker.drain()
    assert len(receiver.accepted) == 1  # "organization.*" does not match organization_domain.*
    request = receiver.accepted[0]
    body = verify(request.content, dict(request.headers), secret, replay_cache=ReplayCache())
    assert body["event"] == "organization.created"
    assert body["organization_id"] == org.id
    assert request.headers["webhook-id"] == body["id"]
    assert body["data"]["id"] == org.id
    assert set(body) == {"id", "event", "data", "organization_id", "created_at"}


async def test_subscription_filters(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    other = await gate.organizations.create("Other")
    await gate.webhooks.create(URL, ["organization.updated"], organization_id=other.id)
    org = await gate.organizations.create("Acme")
    await gate.organizations.update(org.id, name="Acme 2")
    await gate.organizations.update(other.id, name="Other 2")
    await gate.worker.drain()
    assert [json.loads(r.content)["organization_id"] for r in receiver.accepted] == [other.id]


async def test_failed_attempts_are_retried_and_recorded(make_gate: Any) -> None:
    receiver = Receiver(fail_first=2)
    gate = await make_gate(receiver)
    endpoint, secret = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    assert len(receiver.requests) == 3 and len(receiver.accepted) == 1
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # stable across retries
    stamps = [r.headers["webhook-timestamp"] for r in receiver.requests]
    for r in receiver.requests:  # every attempt is signed afresh and verifies
        verify(r.content, dict(r.headers), secret, replay_cache=None)
    deliveries = await gate.webhooks.list_deliveries(endpoint.id)
    (delivery,) = deliveries.data
    assert delivery.status == "succeeded" and delivery.attempts == 3
    attempts = await gate.webhooks.list_attempts(endpoint.id, delivery_id=delivery.id, limit=10)
    outcomes = sorted((a.attempt, a.succeeded, a.status_code) for a in attempts.data)
    assert outcomes == [(1, False, 503), (2, False, 503), (3, True, 200)]
    first = next(a for a in attempts.data if a.attempt == 1)
    assert first.response_excerpt is not None and len(first.response_excerpt) <= 500
    assert first.error == "HTTP 503" and first.latency_ms >= 0
    assert len(stamps) == 3


async def test_retries_exhausted_marks_failed(make_gate: Any) -> None:
    receiver = Receiver(fail_first=100)
    gate = await make_gate(receiver, webhook_retry_schedule=(0.0, 0.0))
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    assert len(receiver.requests) == 3  # first attempt + two retries
    (delivery,) = (await gate.webhooks.list_deliveries(endpoint.id)).data
    assert delivery.status == "failed" and delivery.last_status_code == 503


async def test_retry_waits_for_its_schedule(make_gate: Any) -> None:
    receiver = Receiver(fail_first=1)
    gate = await make_gate(receiver, webhook_retry_schedule=(3600.0,))
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    assert len(receiver.requests) == 1
    (delivery,) = (await gate.webhooks.list_deliveries(endpoint.id)).data
    assert delivery.status == "pending" and delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert 3600 * 0.9 - 1 <= wait <= 3600 * 1.1 + 1  # the schedule, with ±10 % jitter


async def test_unreachable_receiver_is_a_recorded_failure(make_gate: Any) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    gate = await make_gate(refuse, webhook_retry_schedule=(3600.0,))  # type: ignore[arg-type]
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    (attempt,) = (await gate.webhooks.list_attempts(endpoint.id)).data
    assert not attempt.succeeded and attempt.status_code is None
    assert attempt.error == "connection refused or host unreachable"


async def test_persistently_failing_endpoint_is_disabled_then_reenabled(make_gate: Any) -> None:
    receiver = Receiver(fail_first=5)
    gate = await make_gate(
        receiver,
        webhook_retry_schedule=(0.0,) * 10,
        webhook_disable_after_failures=3,
        webhook_disable_after=0,
    )
    seen: list[str] = []
    gate.on("webhook_endpoint.*")(lambda ev: seen.append(ev.event))
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    disabled = await gate.webhooks.get(endpoint.id)
    assert not disabled.enabled and "failed attempts in a row" in (disabled.disabled_reason or "")
    assert seen == ["webhook_endpoint.disabled"]
    assert len(receiver.requests) == 3
    # events while disabled are not queued for it; nothing is lost for the pending one
    enabled = await gate.webhooks.set_enabled(endpoint.id, True)
    assert enabled.enabled and enabled.consecutive_failures == 0
    await gate.worker.drain()
    assert len(receiver.accepted) == 1
    assert seen == ["webhook_endpoint.disabled", "webhook_endpoint.enabled"]


async def test_secret_rotation_signs_with_both_during_grace(
    make_gate: Any, receiver: Receiver
) -> None:
    gate = await make_gate(receiver)
    endpoint, old = await gate.webhooks.create(URL, ["organization.created"])
    new = await gate.webhooks.rotate_secret(endpoint.id, grace=3600)
    assert new != old and new.startswith("whsec_")
    assert (await gate.webhooks.get(endpoint.id)).secret_rotating_until is not None
    await gate.organizations.create("Acme")
    await gate.worker.drain()
    (request,) = receiver.accepted
    assert len(request.headers["webhook-signature"].split()) == 2
    verify(request.content, dict(request.headers), old, replay_cache=None)
    verify(request.content, dict(request.headers), new, replay_cache=None)
    # without grace only the new secret signs
    newest = await gate.webhooks.rotate_secret(endpoint.id, grace=0)
    await gate.organizations.create("Initech")
    await gate.worker.drain()
    last = receiver.accepted[-1]
    verify(last.content, dict(last.headers), newest, replay_cache=None)
    with pytest.raises(Exception, match="signature"):
        verify(last.content, dict(last.headers), new, replay_cache=None)


async def test_redeliver_one_event_and_a_range(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("A")
    await gate.organizations.create("B")
    await gate.worker.drain()
    first_id = receiver.accepted[0].headers["webhook-id"]
    assert await gate.webhooks.redeliver(endpoint.id, event_id=first_id) == 1
    await gate.worker.drain()
    assert receiver.accepted[-1].headers["webhook-id"] == first_id
    now = gate._rt.clock()
    queued = await gate.webhooks.redeliver(endpoint.id, since=now - timedelta(hours=1))
    assert queued == 2
    await gate.worker.drain()
    assert len(receiver.accepted) == 5
    with pytest.raises(ValidationError):
        await gate.webhooks.redeliver(endpoint.id)
    with pytest.raises(NotFoundError):
        await gate.webhooks.redeliver(endpoint.id, event_id="event_nope")
    with pytest.raises(ValidationError):
        await gate.webhooks.redeliver(endpoint.id, since=now, until=now - timedelta(days=1))


async def test_each_attempt_number_is_recorded_once(make_gate: Any) -> None:
    receiver = Receiver(fail_first=1)
    gate = await make_gate(receiver)
    await gate.webhooks.create(URL, ["*"])
    for name in "ABCDE":
        await gate.organizations.create(name)
    await gate.worker.drain()
    async with gate._rt.read() as conn:
        rows = (
            await conn.execute(
                sa.select(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt)
            )
        ).all()
    assert len(rows) == len(set(rows)) == len(receiver.requests)


# -- a database outage part-way through a pass ----------------------------------------------


@pytest.mark.parametrize(
    ("step", "commits"),
    [
        ("_claim", False),
        ("_claim", True),
        ("_send_all", False),
        ("_record", False),
        ("_record", True),
    ],
)
async def test_a_pass_the_database_interrupts_is_settled_by_the_next(
    make_gate: Any, receiver: Receiver, step: str, commits: bool
) -> None:
    """Whichever step an outage hits, the next pass finishes the work without waiting for the
    claim's lease and without sending an event twice; attempt numbers stay 1, 2, ..."""
    gate = await make_gate(receiver)
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    outage_once(gate.worker, step, commits=commits)
    with pytest.raises(StorageUnavailableError):
        await gate.worker.run_once()
    sent_before = len(receiver.requests)
    await gate.worker.drain()  # no clock moves: a stranded lease would leave it pending
    assert len(receiver.requests) == 1 == len(receiver.accepted)
    assert sent_before == (1 if step == "_record" else 0)
    (delivery,) = (await gate.webhooks.list_deliveries(endpoint.id)).data
    assert delivery.status == "succeeded" and delivery.attempts == 1
    (attempt,) = (await gate.webhooks.list_attempts(endpoint.id)).data
    assert attempt.attempt == 1 and attempt.succeeded


async def test_settling_an_outage_keeps_its_claim_or_loses_it(
    make_gate: Any, receiver: Receiver
) -> None:
    """An attempt sent before the outage is recorded only while its delivery is still the
    worker's: once the lease ran out and another worker claimed it, that one records it."""
    gate = await make_gate(receiver)
    endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    outage_once(gate.worker, "_record", commits=False)
    with pytest.raises(StorageUnavailableError):
        await gate.worker.run_once()
    async with gate._rt.transaction() as conn:  # the lease ran out; another worker claimed it
        await conn.execute(sa.update(webhook_deliveries).values(claim="claim_other"))
    await gate.worker.drain()
    assert len(receiver.requests) == 1
    assert not (await gate.webhooks.list_attempts(endpoint.id)).data
    (delivery,) = (await gate.webhooks.list_deliveries(endpoint.id)).data
    assert delivery.status == "pending"  # the other worker's, to record or to let lapse


async def test_a_record_that_cannot_be_settled_does_not_wedge_the_worker(
    make_gate: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """If settling fails for a reason other than the database (a bug), the worker logs it and
    goes on: those deliveries are left to their lease, the others are delivered."""
    gate = await make_gate(receiver)
    await gate.webhooks.create(URL, ["organization.created"])
    await gate.organizations.create("Acme")
    worker = gate.worker
    outage_once(worker, "_record", commits=False)
    with pytest.raises(StorageUnavailableError):
        await worker.run_once()
    real = worker._record

    async def broken(results: Any, *, again: bool = False) -> None:
        if again:
            raise RuntimeError("a bug")
        await real(results, again=again)

    worker._record = broken  # type: ignore[method-assign]
    await gate.organizations.create("Initech")
    await worker.drain()
    assert [json.loads(r.content)["data"]["name"] for r in receiver.requests] == [
        "Acme",
        "Initech",
    ]
    assert "could not record 1 attempts of an interrupted pass" in caplog.text


# -- SQLite: one worker ---------------------------------------------------------------------


async def test_sqlite_allows_a_single_worker(sqlite_url: str) -> None:
    receiver = Receiver()
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    settings = make_settings(sqlite_url, allow_private_urls=True)
    gate = SSOGate(settings, http_client=client)
    await gate.migrate()
    try:
        await gate.webhooks.create(URL, ["organization.created"])
        second = DeliveryWorker(gate._rt, gate.events, gate.webhooks, name="second", http=client)
        assert await gate.worker.run_once() == 0  # takes the lease (nothing due yet)
        await gate.organizations.create("Acme")
        assert await second.run_once() == 0  # stands by
        assert receiver.requests == []
        assert await gate.worker.run_once() == 1
        await gate.worker.aclose()  # releases the lease: the second one may take over
        await gate.organizations.create("Initech")
        assert await second.run_once() == 1
    finally:
        await gate.aclose()


# -- Events API ------------------------------------------------------------------------------


async def test_event_feed_is_ordered_and_resumable(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    for name in ("A", "B", "C"):
        await gate.organizations.create(name)
    page = await gate.events.list(limit=2)
    assert [e.data["name"] for e in page.data] == ["A", "B"]
    rest = await gate.events.list(after=page.after, limit=10)
    assert [e.data["name"] for e in rest.data] == ["C"]
    empty = await gate.events.list(after=rest.after)
    assert empty.data == () and empty.after == rest.after
    await gate.organizations.create("D")
    (d,) = (await gate.events.list(after=rest.after)).data
    assert d.data["name"] == "D"


async def test_feed_follows_commit_order_not_id_order(make_gate: Any, receiver: Receiver) -> None:
    """An event whose id is older but which commits later still reaches a consumer whose
    cursor is already past that id (the sequencer numbers by commit)."""
    gate = await make_gate(receiver)
    await gate.organizations.create("A")
    page = await gate.events.list()
    early = gate._rt.clock() - timedelta(seconds=5)
    async with gate._rt.transaction() as conn:
        await conn.execute(
            sa.insert(events_table).values(
                id="event_00000000000000000000000000",  # sorts before every real id
                event="organization.updated",
                organization_id=None,
                data={"late": True},
                created_at=early,
            )
        )
    (late,) = (await gate.events.list(after=page.after)).data
    assert late.data == {"late": True}


async def test_feed_filters_and_errors(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver)
    acme = await gate.organizations.create("Acme")
    await gate.organizations.add_domain(acme.id, "acme.test")
    await gate.organizations.create("Other")
    by_org = await gate.events.list(organization_id=acme.id)
    assert {e.organization_id for e in by_org.data} == {acme.id}
    by_name = await gate.events.list(events=["organization_domain.created"])
    assert [e.event for e in by_name.data] == ["organization_domain.created"]
    now = gate._rt.clock()
    assert (await gate.events.list(range_start=now + timedelta(minutes=1))).data == ()
    with pytest.raises(ValidationError) as err:
        await gate.events.list(after="event_unknown")
    assert err.value.code == "invalid_cursor"
    with pytest.raises(ValidationError):
        await gate.events.list(events=["nope"])
    with pytest.raises(ValidationError):
        await gate.events.list(limit=0)
    with pytest.raises(ValidationError):
        await gate.events.list(range_start=now, range_end=now - timedelta(days=1))


async def test_retention_purges_old_events(make_gate: Any, receiver: Receiver) -> None:
    gate = await make_gate(receiver, event_retention_days=30)
    await gate.webhooks.create(URL, ["*"])
    await gate.organizations.create("Old")
    await gate.worker.drain()
    async with gate._rt.transaction() as conn:
        await conn.execute(
            sa.update(events_table).values(created_at=gate._rt.clock() - timedelta(days=31))
        )
    await gate.organizations.create("New")
    assert await gate.events.purge() == 1
    assert [e.data["name"] for e in (await gate.events.list()).data] == ["New"]


async def test_a_trickling_receiver_is_cut_at_the_timeout(database_url: str) -> None:
    """httpx times out per read; the worker puts one deadline on the whole exchange, so a
    receiver dribbling bytes cannot outlast the claim's lease."""
    import asyncio
    import time

    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            for _ in range(100):
                await asyncio.sleep(0.1)
                yield b"."

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle())

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    gate = SSOGate(
        make_settings(
            database_url,
            allow_private_urls=True,
            webhook_timeout=0.5,
            webhook_retry_schedule=(3600.0,),
        ),
        http_client=client,
    )
    await gate.migrate()
    try:
        endpoint, _ = await gate.webhooks.create(URL, ["organization.created"])
        await gate.organizations.create("Acme")
        t0 = time.monotonic()
        await gate.worker.drain()
        assert time.monotonic() - t0 < 5
        (attempt,) = (await gate.webhooks.list_attempts(endpoint.id)).data
        assert not attempt.succeeded and attempt.error == "no answer within 0.5 s"
    finally:
        await gate.aclose()
