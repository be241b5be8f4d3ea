"""The receiver-side helper ``sso_gate.webhooks.verify``: every way to defeat it fails."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

import sso_gate
from sso_gate.audit_schema import AUDIT_ONLY_ACTIONS
from sso_gate.models import EVENT_NAMES
from sso_gate.webhooks import (
    ReplayCache,
    WebhookVerificationError,
    generate_secret,
    sign,
    signature_header,
    verify,
)

NOW = 1_800_000_000
BODY = json.dumps({"id": "event_1", "event": "dsync.user.created", "data": {}}).encode()


def headers(secret: str, *, ts: int = NOW, msg_id: str = "event_1", body: bytes = BODY) -> dict:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def check(body: bytes, hdrs: dict, secret: str, **kw: object) -> object:
    kw.setdefault("replay_cache", ReplayCache())
    kw.setdefault("now", NOW)
    return verify(body, hdrs, secret, **kw)  # type: ignore[arg-type]


def test_a_good_message_verifies_and_parses() -> None:
    secret = generate_secret()
    assert check(BODY, headers(secret), secret)["event"] == "dsync.user.created"  # type: ignore[index]
    # header names are case-insensitive; str payloads are accepted
    upper = {k.title(): v for k, v in headers(secret).items()}
    assert check(BODY.decode(), upper, secret)


def test_known_vector() -> None:
    """The Standard Webhooks reference vector (standard-webhooks spec, 'Verifying' example)."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    payload = b'{"test": 2432232314}'
    sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, payload)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),  # body changed
        lambda h, b: ({**h, "webhook-id": "event_2"}, b),  # id changed
        lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b),  # timestamp changed
        lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
        lambda h, b: ({**h, "webhook-signature": ""}, b),
    ],
)
def test_tampering_is_refused(tamper: object) -> None:
    secret = generate_secret()
    hdrs, body = tamper(headers(secret), BODY)  # type: ignore[operator]
    with pytest.raises(WebhookVerificationError) as err:
        check(body, hdrs, secret)
    assert err.value.code in ("bad_signature", "missing_header")


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="no webhook signature matches"):
        check(BODY, headers(generate_secret()), generate_secret())


@pytest.mark.parametrize("skew", [-301, 301, -10_000])
def test_stale_or_future_timestamps_are_refused(skew: int) -> None:
    secret = generate_secret()
    with pytest.raises(WebhookVerificationError) as err:
        check(BODY, headers(secret, ts=NOW + skew), secret)
    assert err.value.code == "stale_timestamp"


def test_tolerance_is_configurable() -> None:
    secret = generate_secret()
    assert check(BODY, headers(secret, ts=NOW - 500), secret, tolerance=600)


def test_replays_are_refused_but_fresh_retries_pass() -> None:
    secret = generate_secret()
    cache = ReplayCache()
    first = headers(secret)
    check(BODY, first, secret, replay_cache=cache)
    with pytest.raises(WebhookVerificationError) as err:
        check(BODY, first, secret, replay_cache=cache)
    assert err.value.code == "replayed"
    # the gate's retry of the same event is signed with a new timestamp: accepted
    check(BODY, headers(secret, ts=NOW + 5), secret, replay_cache=cache, now=NOW + 5)


def test_replay_cache_forgets_after_its_ttl() -> None:
    cache = ReplayCache(ttl=10)
    assert cache.check_and_add("a", "1", now=0)
    assert not cache.check_and_add("a", "1", now=5)
    assert cache.check_and_add("a", "1", now=11)


def test_rotation_either_secret_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    hdrs = {
        "webhook-id": "event_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": signature_header([new, old], "event_1", NOW, BODY),
    }
    assert check(BODY, hdrs, old)
    assert check(BODY, hdrs, new)
    assert check(BODY, hdrs, [generate_secret(), old])


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers(missing: str) -> None:
    secret = generate_secret()
    hdrs = headers(secret)
    del hdrs[missing]
    with pytest.raises(WebhookVerificationError) as err:
        check(BODY, hdrs, secret)
    assert err.value.code == "missing_header" and missing in err.value.message


def test_bad_timestamp_secret_and_body() -> None:
    secret = generate_secret()
    with pytest.raises(WebhookVerificationError) as err:
        check(BODY, {**headers(secret), "webhook-timestamp": "yesterday"}, secret)
    assert err.value.code == "bad_timestamp"
    for bad in ("whsec_!!!", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(WebhookVerificationError) as err:
            check(BODY, headers(secret), bad)
        assert err.value.code == "bad_secret"
    body = b"not json"
    with pytest.raises(WebhookVerificationError) as err:
        check(body, headers(secret, body=body), secret)
    assert err.value.code == "bad_payload"


def test_errors_never_contain_the_secret() -> None:
    secret = generate_secret()
    for hdrs in (headers(generate_secret()), {**headers(secret), "webhook-timestamp": "1"}):
        with pytest.raises(WebhookVerificationError) as err:
            check(BODY, hdrs, secret)
        assert secret not in str(err.value) and secret[6:] not in repr(err.value)


def test_every_emitted_event_name_is_registered() -> None:
    """Webhook subscriptions are validated against EVENT_NAMES: the code must not emit a name
    that is missing there (or subscribers could never ask for it)."""
    root = Path(sso_gate.__file__).parent
    pattern = re.compile(
        r'"((?:authentication|connection|dsync|organization|organization_domain|session|'
        r'webhook_endpoint)\.[a-z_.]+)"'
    )
    emitted: set[str] = set()
    for path in root.rglob("*.py"):
        if path.name == "models.py":
            continue
        emitted.update(pattern.findall(path.read_text()))
    emitted = {e for e in emitted if not e.endswith((".html", ".py", ".css", ".js"))}
    assert emitted, "the scan found nothing"
    assert emitted - EVENT_NAMES - AUDIT_ONLY_ACTIONS == set()
