"""Portal audit log viewer: filters as a bookmarkable GET form, newest-first cursor pages, the
event detail page (scoped to the session's organization), CSV export of the current filter and
friendly 422s for bad filter values."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx
import pytest

from sso_gate.audit_schema import AuditEvent
from sso_gate.services.audit import CSV_COLUMNS
from tests.portal.conftest import PortalEnv

pytestmark = pytest.mark.anyio

PORTAL = "/sso-gate/portal"
ROW = re.compile(r'<tr data-event="(audit_event_\w+)">')


def event(action: str, actor: str, target: str, when: str, **metadata: Any) -> dict[str, Any]:
    return {
        "action": action,
        "occurred_at": when,
        "actor": {"type": "user", "id": actor, "name": actor.replace("_", " ").title()},
        "targets": [{"type": action.split(".")[0], "id": target}],
        "context": {"location": "203.0.113.7", "user_agent": "Mozilla/5.0 (test)"},
        "metadata": metadata,
    }


async def seed(penv: PortalEnv) -> dict[str, AuditEvent]:
    gate = penv.gate
    jan, feb, mar = await gate.audit.emit_many(
        penv.org.id,
        [
            event("invoice.paid", "user_1", "inv_1", "2026-01-10T09:00:00Z", amount=10),
            event("invoice.paid", "user_2", "inv_2", "2026-02-10T12:00:00Z", amount=20),
            event("user.signed_in", "user_1", "user_1", "2026-03-01T08:30:00Z"),
        ],
    )
    (theirs,) = await gate.audit.emit_many(
        penv.other.id, [event("invoice.paid", "user_1", "inv_9", "2026-02-11T00:00:00Z")]
    )
    return {"jan": jan, "feb": feb, "mar": mar, "theirs": theirs}


async def ids(client: httpx.AsyncClient, **params: str) -> list[str]:
    r = await client.get(f"{PORTAL}/audit-logs", params=params)
    assert r.status_code == 200, r.text
    return ROW.findall(r.text)


async def test_filters(penv: PortalEnv) -> None:
    e = await seed(penv)
    async with penv.client() as client:
        page = await penv.open(client, "audit_logs")
        # unfiltered: this organization's events only, newest id first
        everything = ROW.findall(page.text)
        assert e["theirs"].id not in everything
        assert {e["jan"].id, e["feb"].id, e["mar"].id} <= set(everything)
        assert everything == sorted(everything, reverse=True)
        assert await ids(client, action="invoice.paid") == [e["feb"].id, e["jan"].id]
        both = await ids(client, action="invoice.paid, user.signed_in")
        assert set(both) == {e["jan"].id, e["feb"].id, e["mar"].id}
        assert set(await ids(client, actor="user_1")) == {e["jan"].id, e["mar"].id}
        assert await ids(client, target="inv_2") == [e["feb"].id]
        assert await ids(client, target="inv_9") == []  # the other organization's target
        # dates: "to" includes its whole day
        feb = await ids(client, **{"from": "2026-02-01", "to": "2026-02-10"})
        assert feb == [e["feb"].id]
        assert await ids(client, **{"from": "2026-02-11"}) == [
            i for i in everything if i not in (e["jan"].id, e["feb"].id)
        ]
        assert await ids(client, actor="user_1", **{"to": "2026-01-31"}) == [e["jan"].id]
        # the form is refilled, so a filtered view is a bookmarkable URL
        r = await client.get(
            f"{PORTAL}/audit-logs", params={"actor": "user_2", "from": "2026-01-01"}
        )
        assert 'name="actor" value="user_2"' in r.text and 'value="2026-01-01"' in r.text
        assert 'method="get"' in r.text
        assert "No events match" in (await client.get(f"{PORTAL}/audit-logs?actor=nobody")).text


async def test_pagination_newest_first_with_cursor_links(penv: PortalEnv) -> None:
    gate = penv.gate
    seeded = await gate.audit.emit_many(
        penv.org.id,
        [
            event("thing.happened", f"user_{i}", f"t_{i}", "2026-04-01T00:00:00Z")
            for i in range(120)
        ],
    )
    async with penv.client() as client:
        await penv.open(client, "audit_logs")
        first = await client.get(f"{PORTAL}/audit-logs", params={"action": "thing.happened"})
        pages = [first]
        while True:
            older = re.search(r'href="([^"]+)" rel="next"', pages[-1].text)
            if not older:
                break
            href = older.group(1).replace("&amp;", "&")
            assert "action=thing.happened" in href and "after=" in href
            pages.append(await client.get(href))
        seen = [ROW.findall(p.text) for p in pages]
        assert [len(s) for s in seen] == [50, 50, 20]
        flat = [i for s in seen for i in s]
        assert flat == sorted((x.id for x in seeded), reverse=True)
        assert 'rel="prev"' not in first.text
        # "Newer" from the last page gives the middle page back
        newer = re.search(r'href="([^"]+)" rel="prev"', pages[2].text)
        assert newer
        back = await client.get(newer.group(1).replace("&amp;", "&"))
        assert ROW.findall(back.text) == seen[1]


async def test_event_detail_is_scoped_to_the_organization(penv: PortalEnv) -> None:
    e = await seed(penv)
    async with penv.client() as client:
        await penv.open(client, "audit_logs")
        listing = await client.get(f"{PORTAL}/audit-logs", params={"action": "invoice.paid"})
        link = f"{PORTAL}/audit-logs/{e['feb'].id}?action=invoice.paid"
        assert f'href="{link}"' in listing.text
        page = await client.get(link)
        assert page.status_code == 200
        for text in ("invoice.paid", "user_2", "User 2", "inv_2", "203.0.113.7", "amount", "20"):
            assert text in page.text, text
        assert f'href="{PORTAL}/audit-logs?action=invoice.paid"' in page.text  # back, filtered
        for bad in (e["theirs"].id, "audit_event_nope", "x" * 300, "..%2F..%2Fetc"):
            r = await client.get(f"{PORTAL}/audit-logs/{bad}")
            assert r.status_code == 404, bad
            assert "Traceback" not in r.text
        assert (
            "This audit event does not exist."
            in (await client.get(f"{PORTAL}/audit-logs/{e['theirs'].id}")).text
        )


async def test_csv_export_of_the_current_filter(penv: PortalEnv) -> None:
    e = await seed(penv)
    async with penv.client() as client:
        page = await penv.open(client, "audit_logs")
        assert f'href="{PORTAL}/audit-logs/export"' in page.text
        filtered = await client.get(f"{PORTAL}/audit-logs", params={"action": "invoice.paid"})
        assert f'href="{PORTAL}/audit-logs/export?action=invoice.paid"' in filtered.text
        r = await client.get(f"{PORTAL}/audit-logs/export", params={"action": "invoice.paid"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment;") and f"audit-log-{penv.org.id}-" in disposition
        assert r.headers["cache-control"] == "no-store"
        rows = list(csv.reader(io.StringIO(r.text)))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [row[0] for row in rows[1:]] == [e["feb"].id, e["jan"].id]
        assert rows[1][CSV_COLUMNS.index("actor_id")] == "user_2"
        everything = await client.get(f"{PORTAL}/audit-logs/export")
        exported = [row[0] for row in csv.reader(io.StringIO(everything.text))][1:]
        assert e["theirs"].id not in exported and e["mar"].id in exported
        total = await penv.gate.audit.list(penv.org.id, limit=100)
        assert len(exported) == len(total.data)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "“From” must be a date such as 2026-05-31"),
        ({"to": "2026-13-45"}, "“To” must be a date"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "“From” must be on or before “To”."),
        ({"action": "Invoice Paid"}, "is not an action name"),
        ({"actor": ",".join(f"u{i}" for i in range(21))}, "at most 20 values"),
        ({"target": "t" * 300}, "at most 255 characters"),
        ({"after": "audit_event_x'; drop"}, "This page link is not valid"),
        ({"after": "audit_event_a", "before": "audit_event_b"}, "This page link is not valid"),
    ],
)
async def test_bad_filters_are_friendly_422s(
    penv: PortalEnv, params: dict[str, str], message: str
) -> None:
    async with penv.client() as client:
        await penv.open(client, "audit_logs")
        for path in ("/audit-logs", "/audit-logs/export"):
            r = await client.get(f"{PORTAL}{path}", params=params)
            assert r.status_code == 422, (path, r.text[:300])
            assert message in r.text.replace("&#34;", '"')
            assert 'role="alert"' in r.text and 'id="filters"' in r.text
            assert "Traceback" not in r.text


async def test_the_viewer_needs_the_audit_logs_intent(penv: PortalEnv) -> None:
    async with penv.client() as client:
        await penv.open(client, "log_streams")
        assert (await client.get(f"{PORTAL}/audit-logs")).status_code == 403
        assert (await client.get(f"{PORTAL}/audit-logs/export")).status_code == 403
    async with penv.client() as client:
        assert (await client.get(f"{PORTAL}/audit-logs")).status_code == 401
