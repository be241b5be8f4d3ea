"""Portal log streams: add each destination type, send a test event to a real receiver on
loopback and see the outcome, remove; secrets never shown again; friendly 422s; CSRF; another
organization's streams out of reach; changes audited with the portal session as actor."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.audit.receivers import SYSLOG_RE, HTTPReceiver, SyslogReceiver
from tests.portal.conftest import PortalEnv

pytestmark = pytest.mark.anyio

PORTAL = "/sso-gate/portal"
STREAM = re.compile(r'data-stream="(audit_stream_\w+)"')
SECRET = "hec-7f3a9c2e-1b4d-4e8f-9a6b-c0ffee0d1234"


@pytest.fixture
async def receiver() -> AsyncIterator[HTTPReceiver]:
    r = HTTPReceiver()
    await r.start()
    yield r
    await r.stop()


async def add(
    penv: PortalEnv, client: httpx.AsyncClient, page: httpx.Response, **fields: str
) -> tuple[str, httpx.Response]:
    r = await penv.post(client, "/log-streams", page, **fields)
    assert r.status_code == 303, r.text
    listing = await client.get(r.headers["location"])
    assert listing.status_code == 200
    (stream_id,) = STREAM.findall(listing.text)
    return stream_id, listing


async def test_https_add_test_remove(penv: PortalEnv, receiver: HTTPReceiver) -> None:
    gate = penv.gate
    async with penv.client() as client:
        page = await penv.open(client, "log_streams")
        assert "No destinations yet." in page.text
        stream_id, listing = await add(
            penv,
            client,
            page,
            type="https",
            name="Our SIEM",
            url=f"{receiver.url}/ingest",
            token=SECRET,
            start="now",
        )
        assert "Added the HTTPS endpoint destination" in listing.text
        assert "Our SIEM" in listing.text and f"{receiver.url}/ingest" in listing.text
        assert SECRET not in listing.text and SECRET[-4:] in listing.text  # a hint only

        r = await penv.post(client, f"/log-streams/{stream_id}/test", listing)
        assert r.status_code == 200
        assert 'data-test="success"' in r.text and "HTTP 200" in r.text
        (sent,) = receiver.requests
        assert sent.path == "/ingest" and sent.headers["authorization"] == f"Bearer {SECRET}"
        (tested,) = json.loads(sent.body)["events"]
        assert (
            tested["action"] == "audit_stream.tested" and tested["organization_id"] == penv.org.id
        )
        assert SECRET not in r.text

        receiver.status = lambda req: 500
        r = await penv.post(client, f"/log-streams/{stream_id}/test", listing)
        assert r.status_code == 200
        assert 'data-test="failure"' in r.text and "HTTP 500" in r.text
        await receiver.stop()
        r = await penv.post(client, f"/log-streams/{stream_id}/test", listing)
        assert 'data-test="failure"' in r.text and 'role="alert"' in r.text

        r = await penv.post(client, f"/log-streams/{stream_id}/delete", listing)
        assert r.status_code == 303
        after = await client.get(r.headers["location"])
        assert "Removed the HTTPS endpoint destination" in after.text
        assert stream_id not in after.text
    assert (await gate.audit_streams.list(penv.org.id)).data == ()
    for action in ("audit_stream.created", "audit_stream.deleted"):
        (entry,) = (await gate.audit.list(penv.org.id, actions=[action])).data
        assert entry.actor["type"] == "portal_session", action
        assert entry.targets[0]["id"] == stream_id


async def test_splunk_and_datadog_send_their_own_shapes(
    penv: PortalEnv, receiver: HTTPReceiver
) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "log_streams")
        splunk, listing = await add(
            penv,
            client,
            page,
            type="splunk_hec",
            url=receiver.url,
            token=SECRET,
            index="security",
            sourcetype="_json",
        )
        assert "Splunk HTTP Event Collector" in listing.text and "security" in listing.text
        r = await penv.post(client, f"/log-streams/{splunk}/test", listing)
        assert 'data-test="success"' in r.text
        hec = receiver.requests[-1]
        assert hec.path == "/services/collector/event"
        assert hec.headers["authorization"] == f"Splunk {SECRET}"
        assert json.loads(hec.body)["index"] == "security"

        api_key = "dd0123456789abcdef0123456789abcd"
        r = await penv.post(
            client,
            "/log-streams",
            page,
            type="datadog",
            site="datadoghq.eu",
            api_key=api_key,
            service="sso-gate",
            tags="env:test, team:sec",
            url=f"{receiver.url}/api/v2/logs",
        )
        assert r.status_code == 303, r.text
        listing = await client.get(r.headers["location"])
        datadog = next(i for i in STREAM.findall(listing.text) if i != splunk)
        assert api_key not in listing.text and SECRET not in listing.text
        r = await penv.post(client, f"/log-streams/{datadog}/test", listing)
        assert 'data-test="success"' in r.text
        dd = receiver.requests[-1]
        assert dd.headers["dd-api-key"] == api_key
        (item,) = json.loads(dd.body)
        assert item["service"] == "sso-gate" and "env:test" in item["ddtags"]
    stream = await penv.gate.audit_streams.get(datadog)
    assert stream.config["tags"] == ["env:test", "team:sec"]


async def test_syslog_over_tcp(penv: PortalEnv) -> None:
    syslog = SyslogReceiver()
    await syslog.start()
    try:
        async with penv.client() as client:
            page = await penv.open(client, "log_streams")
            stream_id, listing = await add(
                penv,
                client,
                page,
                type="syslog",
                host="127.0.0.1",
                port=str(syslog.port),
                transport="tcp",
                facility="10",
            )
            assert f"127.0.0.1:{syslog.port} (TCP)" in listing.text
            r = await penv.post(client, f"/log-streams/{stream_id}/test", listing)
            assert 'data-test="success"' in r.text, r.text
            for _ in range(100):
                if syslog.messages:
                    break
                await asyncio.sleep(0.02)
            (message,) = syslog.messages
            match = SYSLOG_RE.match(message)
            assert match and match.group("pri") == str(10 * 8 + 6).encode()
            assert b"audit_stream.tested" in message
    finally:
        await syslog.stop()


T = {"token": SECRET}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "https", "url": "not a url", **T}, "is not an absolute https URL"),
        ({"type": "https", "url": "", **T}, "Endpoint URL is required"),
        ({"type": "https", "url": "https://siem.test/x", "signing_secret": "abc"}, "whsec_"),
        ({"type": "splunk_hec", "url": "https://splunk.test:8088"}, "HEC token is required"),
        (
            {"type": "datadog", "site": "datadoghq.moon", "api_key": SECRET},
            "unknown Datadog site",
        ),
        ({"type": "datadog", "site": "datadoghq.com"}, "API key is required"),
        ({"type": "syslog", "host": "syslog.test", "port": "abc"}, "Port must be a whole number"),
        ({"type": "syslog", "host": "syslog.test", "port": "70000"}, "from 1 to 65535"),
        ({"type": "syslog", "host": "", "port": "514"}, "Host is required"),
        (
            {"type": "syslog", "host": "s.test", "port": "6514", "ca_pem": "nope"},
            "CA certificate must be PEM certificate text",
        ),
        ({"type": "ftp", **T}, "Choose a type of destination."),
        (
            {"type": "https", "url": "https://x.test/", "start": "yesterday", **T},
            "Choose which events",
        ),
    ],
)
async def test_invalid_input_is_a_friendly_422(
    penv: PortalEnv, fields: dict[str, str], message: str
) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "log_streams")
        r = await penv.post(client, "/log-streams", page, **fields)
        assert r.status_code == 422, r.text[:500]
        text = r.text.replace("&#39;", "'")
        assert message.lower() in text.lower(), text[text.find("form-error") - 200 :][:600]
        assert "config." not in text and "Traceback" not in text
        assert SECRET not in r.text  # secrets are not echoed back into the form
        if fields["type"] != "ftp":
            assert '<details class="card" open>' in r.text
    assert (await penv.gate.audit_streams.list(penv.org.id)).data == ()


async def test_non_secret_values_are_kept_after_an_error(penv: PortalEnv) -> None:
    async with penv.client() as client:
        page = await penv.open(client, "log_streams")
        r = await penv.post(
            client,
            "/log-streams",
            page,
            type="splunk_hec",
            name="Main Splunk",
            url="ftp://splunk.test",
            token=SECRET,
            index="sec",
        )
        assert r.status_code == 422
        assert 'value="Main Splunk"' in r.text and 'value="ftp://splunk.test"' in r.text
        assert 'value="sec"' in r.text and SECRET not in r.text


async def test_csrf_and_other_organizations(penv: PortalEnv, receiver: HTTPReceiver) -> None:
    gate = penv.gate
    theirs = await gate.audit_streams.create(penv.other.id, "https", {"url": receiver.url})
    async with penv.client() as client:
        page = await penv.open(client, "log_streams")
        assert theirs.id not in page.text
        data = {"type": "https", "url": f"{receiver.url}/x"}
        assert (await client.post(f"{PORTAL}/log-streams", data=data)).status_code == 403
        r = await client.post(f"{PORTAL}/log-streams", data={**data, "csrf": "0" * 64})
        assert r.status_code == 403
        assert (await gate.audit_streams.list(penv.org.id)).data == ()
        mine, listing = await add(penv, client, page, **data)
        for action in ("test", "delete"):
            r = await client.post(f"{PORTAL}/log-streams/{mine}/{action}", data={})
            assert r.status_code == 403
            r = await penv.post(client, f"/log-streams/{theirs.id}/{action}", listing)
            assert r.status_code == 404 and "This log stream does not exist." in r.text
        assert receiver.requests == []
    assert (await gate.audit_streams.get(theirs.id)).id == theirs.id
    assert (await gate.audit_streams.get(mine)).id == mine
    async with penv.client() as client:
        await penv.open(client, "audit_logs")
        assert (await client.get(f"{PORTAL}/log-streams")).status_code == 403
