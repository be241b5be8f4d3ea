"""Webhook signatures (the Standard Webhooks scheme) and the receiver-side :func:`verify`.

Every delivery carries three headers::

    webhook-id: event_01J…             (the event id: stable across retries, de-duplicate on it)
    webhook-timestamp: 1732800000      (Unix seconds of this attempt)
    webhook-signature: v1,<base64>     (HMAC-SHA256 over "{id}.{timestamp}.{body}")

The HMAC key is the base64 part of the ``whsec_…`` secret. While a secret is being rotated the
header holds one ``v1,…`` signature per live secret, separated by spaces; a receiver that knows
either secret accepts the message.

A receiver verifies with::

    from sso_gate.webhooks import verify
    event = verify(body, request.headers, secret)   # raises WebhookVerificationError

:func:`verify` refuses a bad or missing signature, a timestamp outside ``tolerance`` (default
5 minutes, either direction) and a **replay**: the same ``webhook-id`` + ``webhook-timestamp``
seen before by the same :class:`ReplayCache`. A genuine retry by the gate is signed afresh with a
new timestamp, so it is accepted (de-duplicate retries on ``webhook-id`` in your own storage).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from sso_gate.exceptions import SSOGateError

__all__ = [
    "WebhookVerificationError",
    "ReplayCache",
    "generate_secret",
    "sign",
    "signature_header",
    "verify",
]

_PREFIX = "whsec_"


class WebhookVerificationError(SSOGateError):
    """A webhook failed verification; ``code`` says why (``bad_signature``, ``stale_timestamp``,
    ``replayed``, ``missing_header``, ``bad_secret``, ``bad_payload``)."""

    code = "webhook_verification_failed"
    http_status = 400


def generate_secret() -> str:
    """A new signing secret ``whsec_<base64 of 32 random bytes>``."""
    return _PREFIX + base64.b64encode(os.urandom(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError(
            "the webhook secret is not a whsec_<base64> value", code="bad_secret"
        ) from None
    if len(key) < 16:
        raise WebhookVerificationError("the webhook secret is too short", code="bad_secret")
    return key


def sign(secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{msg_id}.{timestamp}.{payload}``."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + payload, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(secrets: Iterable[str], msg_id: str, timestamp: int, payload: bytes) -> str:
    """The ``webhook-signature`` value: one signature per live secret (rotation)."""
    return " ".join(sign(s, msg_id, timestamp, payload) for s in secrets)


class ReplayCache:
    """Remembers ``(webhook-id, webhook-timestamp)`` pairs for ``ttl`` seconds (bounded size).

    Share one cache per receiver process; for several receiver processes, de-duplicate on
    ``webhook-id`` in your database instead.
    """

    def __init__(self, ttl: float = 600.0, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def check_and_add(self, msg_id: str, timestamp: str, now: float) -> bool:
        """True the first time a pair is seen; False for a replay."""
        key = (msg_id, timestamp)
        with self._lock:
            while self._seen:
                oldest_key, expires = next(iter(self._seen.items()))
                if expires > now and len(self._seen) < self.max_entries:
                    break
                del self._seen[oldest_key]
            if key in self._seen:
                return False
            self._seen[key] = now + self.ttl
            return True


_default_cache = ReplayCache()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        # plain dicts are case-sensitive; HTTP header names are not
        lowered = {k.lower(): v for k, v in headers.items()}
        value = lowered.get(name)
    if not value:
        raise WebhookVerificationError(f"the {name} header is missing", code="missing_header")
    return value


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str | Iterable[str],
    *,
    tolerance: float = 300.0,
    replay_cache: ReplayCache | None = _default_cache,
    now: float | None = None,
) -> Any:
    """Check a delivery and return its parsed JSON body.

    ``secret``: the endpoint's ``whsec_…`` secret, or several (during a rotation on your side).
    ``replay_cache``: pass ``None`` to skip replay detection (only if you de-duplicate yourself).
    Raises :class:`WebhookVerificationError`.
    """
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    msg_id = _header(headers, "webhook-id")
    ts_raw = _header(headers, "webhook-timestamp")
    sig_header = _header(headers, "webhook-signature")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise WebhookVerificationError(
            "the webhook-timestamp header is not a Unix timestamp", code="bad_timestamp"
        ) from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError(
            f"the webhook timestamp is {abs(current - ts):.0f} s away from now "
            f"(tolerance {tolerance:g} s)",
            code="stale_timestamp",
        )
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [sign(s, msg_id, ts, body).encode() for s in secrets]
    given = [p.encode() for p in sig_header.split() if p.startswith("v1,")]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise WebhookVerificationError(
            "no webhook signature matches the secret", code="bad_signature"
        )
    if replay_cache is not None and not replay_cache.check_and_add(msg_id, ts_raw, current):
        raise WebhookVerificationError(
            f"webhook {msg_id} with this timestamp was already received", code="replayed"
        )
    try:
        return json.loads(body)
    except ValueError:
        raise WebhookVerificationError("the webhook body is not JSON", code="bad_payload") from None
