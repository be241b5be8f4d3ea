"""The delivery worker: sequences events, delivers webhooks, retries, disables, purges.

Runs inside the app (started by the ASGI lifespan, ``SSO_GATE_WORKER=inline``, the default) or
as ``sso-gate worker`` processes. One pass (:meth:`DeliveryWorker.run_once`):

1. **sequence** committed events and fan them out to deliveries (``_outbox.sequence``);
2. **claim** due deliveries in one short transaction — ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so any number of workers and instances never claim the same delivery; the claim
   numbers the attempt and pushes ``next_attempt_at`` past the HTTP timeout (a lease: if the
   worker dies, the delivery is retried when the lease runs out);
3. **send** them concurrently (``SSO_GATE_WEBHOOK_CONCURRENCY``), signed per Standard Webhooks,
   through the worker's own HTTP/1.1 client (``_webhook_http``), or through httpx when a
   client is injected or the environment names a proxy;
4. **record** every attempt (status, latency, response excerpt) and the next retry in one
   transaction; an update only applies while the worker still holds the claim;
5. when the database fails part-way through a pass, the worker keeps what it knows and
   settles it first on the next pass, so an outage neither strands deliveries behind their
   lease nor sends them twice: attempts it sent but could not record are recorded (those whose
   record did commit, its answer lost, are recognised and skipped), and deliveries it claimed
   (or may have claimed: a COMMIT whose answer was lost) but did not send are released, due at
   once with their attempt count restored. Only a worker that dies leaves its deliveries to the
   lease (and then a receiver may see an attempt twice: delivery is at least once);
6. **stream** audit logs: one batch per due log stream (``audit_streams``, same claim scheme).

On SQLite a single worker is enforced with a lease row (``worker_leases``): a second worker
stands by until the first one stops or its lease expires.

Retry schedule (``SSO_GATE_WEBHOOK_RETRY_SCHEDULE``, seconds after each failed attempt, ±10 %
jitter): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts over about 27 hours, then the
delivery is ``failed``. An endpoint is disabled (event ``webhook_endpoint.disabled``) once it has
failed ``SSO_GATE_WEBHOOK_DISABLE_AFTER_FAILURES`` attempts in a row (default 20) over at least
``SSO_GATE_WEBHOOK_DISABLE_AFTER`` seconds (default 5 days). Re-enabling resumes its pending
deliveries; events that happened while it was disabled can be redelivered by time range.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate._time import isoformat
from sso_gate.exceptions import StorageUnavailableError
from sso_gate.services._interrupted import Interrupted
from sso_gate.services._runtime import Runtime
from sso_gate.services._webhook_http import PostError, WebhookHTTP, proxies_configured
from sso_gate.services.audit import AuditService
from sso_gate.services.audit_streams import AuditStreamsService
from sso_gate.services.events import EventsService
from sso_gate.services.housekeeping import Housekeeping
from sso_gate.services.webhooks import WebhooksService, endpoint_from_row, signing_secrets
from sso_gate.store.tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    worker_leases,
)
from sso_gate.webhooks import signature_header

__all__ = ["DeliveryWorker"]

log = logging.getLogger("sso_gate.worker")

_CLAIM_BATCH = 200
_LEASE_SECONDS = 30.0
_PURGE_EVERY = 3600.0
_EXCERPT = 500
_USER_AGENT = "sso-gate-webhooks/1"
# Connections per httpx client (the worker's httpx path). httpcore's pool does work
# proportional to its connections on every state change of every request (and, for idle
# connections, to their square): one pool of 32 costs ~3 ms of CPU per request on a 2 vCPU VM,
# 8 pools of 4 ~1 ms. So the worker keeps
# ceil(SSO_GATE_WEBHOOK_CONCURRENCY / 4) clients and gives each at most 4 requests at a time.
_POOL = 4


@dataclass(slots=True)
class _Job:
    delivery_id: str
    endpoint_id: str
    event_id: str
    attempt: int
    claim: str


@dataclass(slots=True)
class _Result:
    job: _Job
    started_at: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: float
    excerpt: str | None
    error: str | None


class DeliveryWorker:
    """Delivers webhooks; see the module docstring. ``name`` identifies it in attempt rows."""

    def __init__(
        self,
        rt: Runtime,
        events_service: EventsService,
        webhooks: WebhooksService,
        *,
        name: str | None = None,
        http: httpx.AsyncClient | None = None,
        audit: AuditService | None = None,
        streams: AuditStreamsService | None = None,
    ) -> None:
        self._rt = rt
        self._events = events_service
        self._webhooks = webhooks
        self._audit = audit
        self._streams = streams
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}:{new_id('w')[-6:]}"
        self._http = http
        self._clients: list[httpx.AsyncClient] = []
        # the worker's own HTTP/1.1 client (see _webhook_http); httpx when a client is injected
        # or the environment names a proxy
        self._own: WebhookHTTP | None = None
        if http is None and not proxies_configured():
            self._own = WebhookHTTP(
                user_agent=_USER_AGENT, max_idle=rt.settings.webhook_concurrency
            )
        self._wake = asyncio.Event()
        self._last_purge = float("-inf")  # the first pass purges (monotonic time may be < 1 h)
        self.housekeeping = Housekeeping(rt)
        self._is_sqlite = rt.engine.dialect.name == "sqlite"
        self._has_lease = False
        self._interrupted: Interrupted[_Result] = Interrupted("attempts")  # step 5
        events_service.committed_listeners.append(self.wake)

    def wake(self) -> None:
        """Run the next pass now (called after a commit that wrote events)."""
        self._wake.set()

    @property
    def http(self) -> httpx.AsyncClient:
        """The injected client, or the first of the worker's own (see :meth:`clients`)."""
        return self.clients()[0]

    def clients(self) -> list[httpx.AsyncClient]:
        """The HTTP clients deliveries go through: the injected one, or the worker's own
        connection pools, ``_POOL`` connections each, ``SSO_GATE_WEBHOOK_CONCURRENCY`` in all."""
        if self._http is not None:
            return [self._http]
        if not self._clients:
            n = self._rt.settings.webhook_concurrency
            for start in range(0, n, _POOL):
                size = min(_POOL, n - start)
                self._clients.append(
                    httpx.AsyncClient(
                        follow_redirects=False,
                        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                        headers={"user-agent": _USER_AGENT},
                    )
                )
        return self._clients

    async def aclose(self) -> None:
        if self._has_lease:
            await self._release_lease()
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()
        if self._own is not None:
            await self._own.aclose()

    # -- loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set. Database outages are logged and retried."""
        poll = self._rt.settings.worker_poll_interval
        try:
            while not stop.is_set():
                try:
                    busy = await self.run_once()
                except StorageUnavailableError as exc:
                    log.warning("webhook worker: %s; retrying", exc.message)
                    busy = 0
                except Exception:
                    log.exception("webhook worker pass failed; retrying")
                    busy = 0
                if busy:
                    continue
                self._wake.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                try:
                    await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
        finally:
            await self.aclose()

    async def run_once(self) -> int:
        """One pass; returns how many deliveries and audit stream batches were attempted
        (0 = idle)."""
        if self._is_sqlite and not await self._hold_lease():
            return 0
        await self._events.sequence()
        if self._audit is not None:
            await self._audit.chain()
        now_mono = time.monotonic()
        if now_mono - self._last_purge > _PURGE_EVERY:
            self._last_purge = now_mono
            purged = await self._events.purge()
            if purged:
                log.info("purged %d events older than the retention period", purged)
            if self._audit is not None:
                purged = await self._audit.purge()
                if purged:
                    log.info("purged %d audit events older than their retention", purged)
            swept = await self.housekeeping.purge()
            if any(swept.values()):
                log.info("purged expired rows: %s", swept)
        await self._interrupted.settle(self._record_again, self._release)
        claim = self._interrupted.claim()
        jobs = await self._claim(claim)
        results = await self._send_all(jobs) if jobs else []
        await self._interrupted.record(claim, results, self._record)
        batches = await self._streams.deliver_due() if self._streams is not None else 0
        return len(jobs) + batches

    async def drain(self, *, max_passes: int = 1000) -> None:
        """Run passes until nothing is due (tests, ``sso-gate worker --once``)."""
        for _ in range(max_passes):
            if not await self.run_once():
                return

    # -- SQLite single-worker lease -----------------------------------------------------------

    async def _hold_lease(self) -> bool:
        now = self._rt.clock()
        until = now + timedelta(seconds=_LEASE_SECONDS)
        got = False
        async with self._rt.transaction() as conn:
            result = await conn.execute(
                sa.update(worker_leases)
                .where(
                    worker_leases.c.name == "delivery",
                    sa.or_(
                        worker_leases.c.holder == self.name,
                        worker_leases.c.expires_at < now,
                    ),
                )
                .values(holder=self.name, expires_at=until)
            )
            got = bool(result.rowcount)
            if not got:
                exists = (
                    await conn.execute(
                        sa.select(worker_leases.c.holder).where(worker_leases.c.name == "delivery")
                    )
                ).first()
                if exists is None:
                    await conn.execute(
                        sa.insert(worker_leases).values(
                            name="delivery", holder=self.name, expires_at=until
                        )
                    )
                    got = True
        if got and not self._has_lease:
            log.info("webhook worker %s holds the SQLite delivery lease", self.name)
        elif not got and self._has_lease:
            log.warning("webhook worker %s lost the delivery lease", self.name)
        self._has_lease = got
        return got

    async def _release_lease(self) -> None:
        try:
            async with self._rt.transaction() as conn:
                await conn.execute(
                    sa.update(worker_leases)
                    .where(worker_leases.c.name == "delivery", worker_leases.c.holder == self.name)
                    .values(expires_at=self._rt.clock() - timedelta(seconds=1))
                )
        except StorageUnavailableError:
            pass
        self._has_lease = False

    # -- claim, send, record -------------------------------------------------------------------

    async def _release(self, claims: Sequence[str]) -> None:
        """Make the deliveries of claims an interrupted pass did not send due at once, their
        attempt count restored (module docstring, step 5)."""
        d = webhook_deliveries
        async with self._rt.transaction() as conn:
            released = await conn.execute(
                sa.update(d)
                .where(d.c.claim.in_(claims), d.c.status == "pending")
                .values(attempts=d.c.attempts - 1, next_attempt_at=self._rt.clock(), claim=None)
            )
        if released.rowcount:
            log.info("released %d deliveries an interrupted pass claimed", released.rowcount)

    async def _record_again(self, results: Sequence[_Result]) -> None:
        await self._record(results, again=True)

    async def _claim(self, claim: str) -> list[_Job]:
        now = self._rt.clock()
        d, ep = webhook_deliveries, webhook_endpoints
        lease = now + timedelta(seconds=self._rt.settings.webhook_timeout + _LEASE_SECONDS)
        async with self._rt.transaction() as conn:
            stmt = (
                sa.select(d.c.id, d.c.endpoint_id, d.c.event_id, d.c.attempts)
                .join(ep, ep.c.id == d.c.endpoint_id)
                .where(d.c.status == "pending", d.c.next_attempt_at <= now, ep.c.enabled.is_(True))
                .order_by(d.c.next_attempt_at)
                .limit(_CLAIM_BATCH)
                .with_for_update(of=d, skip_locked=True)
            )
            rows = (await conn.execute(stmt)).all()
            if not rows:
                return []
            await conn.execute(
                sa.update(d)
                .where(d.c.id.in_([r.id for r in rows]))
                .values(
                    attempts=d.c.attempts + 1, next_attempt_at=lease, claim=claim, updated_at=now
                )
            )
        return [_Job(r.id, r.endpoint_id, r.event_id, r.attempts + 1, claim) for r in rows]

    async def _send_all(self, jobs: Sequence[_Job]) -> list[_Result]:
        now = self._rt.clock()
        async with self._rt.read() as conn:
            ev_rows = (
                await conn.execute(
                    sa.select(events).where(events.c.id.in_({j.event_id for j in jobs}))
                )
            ).all()
            ep_rows = (
                await conn.execute(
                    sa.select(webhook_endpoints).where(
                        webhook_endpoints.c.id.in_({j.endpoint_id for j in jobs})
                    )
                )
            ).all()
        bodies = {r.id: _body(r._mapping) for r in ev_rows}
        endpoints = {r.id: r._mapping for r in ep_rows}
        secrets = {eid: signing_secrets(self._rt.box, row, now) for eid, row in endpoints.items()}
        clients: list[httpx.AsyncClient | None] = [None] if self._own else [*self.clients()]
        results: list[_Result | None] = [None] * len(jobs)
        todo = iter(range(len(jobs)))

        async def lane(client: httpx.AsyncClient | None) -> None:
            # ``concurrency`` lanes take the jobs in order; each client serves at most
            # ``_POOL`` lanes, so no request waits inside a pool.
            for i in todo:
                job = jobs[i]
                body = bodies.get(job.event_id)
                endpoint = endpoints.get(job.endpoint_id)
                if body is None or endpoint is None:  # purged or deleted meanwhile
                    result = _Result(job, now, False, None, 0.0, None, "event or endpoint gone")
                else:
                    result = await self._send(
                        client, job, endpoint["url"], body, secrets[job.endpoint_id]
                    )
                results[i] = result

        lanes = min(self._rt.settings.webhook_concurrency, len(jobs))
        await asyncio.gather(*(lane(clients[k % len(clients)]) for k in range(lanes)))
        return [r for r in results if r is not None]

    async def _send(
        self,
        client: httpx.AsyncClient | None,
        job: _Job,
        url: str,
        body: bytes,
        secrets: list[str],
    ) -> _Result:
        """One attempt: through the worker's own client (``client`` None) or httpx."""
        started = self._rt.clock()
        ts = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": job.event_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": signature_header(secrets, job.event_id, ts, body),
        }
        t0 = time.perf_counter()
        timeout = self._rt.settings.webhook_timeout

        async def post() -> tuple[int, bytes]:
            assert client is not None
            async with client.stream(
                "POST", url, content=body, headers=headers, timeout=timeout
            ) as resp:
                excerpt = b""
                async for chunk in resp.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= _EXCERPT:
                        break
                return resp.status_code, excerpt

        own = self._own if client is None else None
        try:
            # one deadline for the whole exchange: httpx's timeout applies per read, so a
            # receiver trickling bytes could otherwise outlast the claim's lease and a second
            # worker would deliver the same attempt again
            if own is not None:
                status, excerpt = await asyncio.wait_for(
                    own.post(url, headers, body, limit=_EXCERPT), timeout
                )
            else:
                status, excerpt = await asyncio.wait_for(post(), timeout)
        except PostError as exc:
            return _Result(job, started, False, None, _ms(t0), None, str(exc))
        except (httpx.TimeoutException, TimeoutError):
            return _Result(
                job, started, False, None, _ms(t0), None,
                f"no answer within {self._rt.settings.webhook_timeout:g} s",
            )  # fmt: skip
        except httpx.HTTPError as exc:
            return _Result(job, started, False, None, _ms(t0), None, _describe(exc))
        text = excerpt[:_EXCERPT].decode("utf-8", "replace") or None
        ok = 200 <= status < 300
        error = None if ok else f"HTTP {status}"
        return _Result(job, started, ok, status, _ms(t0), text, error)

    async def _record(self, results: Sequence[_Result], *, again: bool = False) -> None:
        """Record ``results`` in one transaction. ``again``: a retry of a record whose outcome
        is unknown; the results it already wrote (their claim is gone) are skipped."""
        if again:
            d = webhook_deliveries
            async with self._rt.read() as conn:
                held = {
                    (r.id, r.claim)
                    for r in await conn.execute(
                        sa.select(d.c.id, d.c.claim).where(
                            d.c.id.in_([r.job.delivery_id for r in results])
                        )
                    )
                }
            results = [r for r in results if (r.job.delivery_id, r.job.claim) in held]
            if not results:
                return
        now = self._rt.clock()
        schedule = self._rt.settings.webhook_retry_schedule
        d = webhook_deliveries
        attempts = [
            {
                "id": new_id("wha"),
                "delivery_id": r.job.delivery_id,
                "endpoint_id": r.job.endpoint_id,
                "event_id": r.job.event_id,
                "attempt": r.job.attempt,
                "worker": self.name[:64],
                "started_at": r.started_at,
                "succeeded": r.succeeded,
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "response_excerpt": r.excerpt,
                "error": r.error,
            }
            for r in results
        ]
        updates: list[dict[str, Any]] = []
        for r in results:
            if r.succeeded:
                status, nxt = "succeeded", None
            elif r.job.attempt > len(schedule):
                status, nxt = "failed", None
            else:
                delay = schedule[r.job.attempt - 1] * random.uniform(0.9, 1.1)  # noqa: S311
                status, nxt = "pending", now + timedelta(seconds=delay)
            updates.append(
                {
                    "b_id": r.job.delivery_id,
                    "b_claim": r.job.claim,
                    "b_status": status,
                    "b_next": nxt,
                    "b_code": r.status_code,
                    "b_error": r.error,
                    "b_now": now,
                }
            )
        evs = []
        async with self._rt.transaction() as conn:
            await conn.execute(sa.insert(webhook_attempts), attempts)
            await conn.execute(
                sa.update(d)
                .where(d.c.id == sa.bindparam("b_id"), d.c.claim == sa.bindparam("b_claim"))
                .values(
                    status=sa.bindparam("b_status"),
                    next_attempt_at=sa.bindparam("b_next"),
                    claim=None,
                    last_status_code=sa.bindparam("b_code"),
                    last_error=sa.bindparam("b_error"),
                    updated_at=sa.bindparam("b_now"),
                ),
                updates,
            )
            evs = await self._endpoint_health(conn, results, now)
        metrics = self._rt.metrics  # once recorded: a record that is retried counts once
        for r, u in zip(results, updates, strict=True):
            status = u["b_status"]
            metrics.webhook_delivery(
                "retrying" if status == "pending" else status, r.latency_ms / 1000
            )
        await self._events.dispatch(evs)

    async def _endpoint_health(
        self, conn: AsyncConnection, results: Sequence[_Result], now: datetime
    ) -> list[Any]:
        """Reset the failure streak of endpoints that answered; extend it for the others and
        disable those that failed long enough."""
        ep = webhook_endpoints
        ok: set[str] = set()
        failures: dict[str, int] = {}
        for r in results:
            if r.succeeded:
                ok.add(r.job.endpoint_id)
            else:
                failures[r.job.endpoint_id] = failures.get(r.job.endpoint_id, 0) + 1
        if ok:
            await conn.execute(
                sa.update(ep)
                .where(ep.c.id.in_(ok), ep.c.consecutive_failures != 0)
                .values(consecutive_failures=0, failing_since=None)
            )
        evs = []
        settings = self._rt.settings
        for endpoint_id, n in failures.items():
            if endpoint_id in ok:
                continue
            await conn.execute(
                sa.update(ep)
                .where(ep.c.id == endpoint_id)
                .values(
                    consecutive_failures=ep.c.consecutive_failures + n,
                    failing_since=sa.func.coalesce(ep.c.failing_since, now),
                )
            )
            row = (await conn.execute(sa.select(ep).where(ep.c.id == endpoint_id))).first()
            if row is None or not row.enabled:
                continue
            since = row.failing_since or now
            if (
                row.consecutive_failures >= settings.webhook_disable_after_failures
                and (now - since).total_seconds() >= settings.webhook_disable_after
            ):
                reason = (
                    f"disabled after {row.consecutive_failures} failed attempts in a row "
                    f"since {isoformat(since)}"
                )
                await conn.execute(
                    sa.update(ep)
                    .where(ep.c.id == endpoint_id)
                    .values(enabled=False, disabled_reason=reason, updated_at=now)
                )
                fresh = (await conn.execute(sa.select(ep).where(ep.c.id == endpoint_id))).first()
                assert fresh is not None
                endpoint = endpoint_from_row(fresh._mapping, now)
                log.warning("webhook endpoint %s %s", endpoint_id, reason)
                evs.append(
                    await self._events.record(
                        conn,
                        "webhook_endpoint.disabled",
                        {"webhook_endpoint": endpoint.to_dict(), "reason": reason},
                        row.organization_id,
                    )
                )
        return evs


def _body(row: Any) -> bytes:
    """The delivered JSON: the event envelope (DESIGN §1), as the Events API returns it."""
    return json.dumps(
        {
            "id": row["id"],
            "event": row["event"],
            "data": row["data"],
            "organization_id": row["organization_id"],
            "created_at": isoformat(row["created_at"]),
        },
        separators=(",", ":"),
    ).encode()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the receiver closed the connection or broke HTTP"
    return f"request failed ({type(exc).__name__})"
