"""Audit log streams, sans I/O: each destination's configuration and its real payload shape.

* ``https`` — ``POST {url}`` with ``{"events": [audit event, …]}``; optional ``Authorization:
  Bearer <token>``; optional Standard Webhooks signature headers (``signing_secret``).
* ``splunk_hec`` — ``POST {url}/services/collector/event``, ``Authorization: Splunk <token>``,
  the body one HEC event object per line (Splunk's "Format events for HTTP Event Collector"):
  ``{"time": <epoch seconds>, "host", "source", "sourcetype": "_json", "index"?, "event": {…}}``.
  A ``X-Splunk-Request-Channel`` header (a UUID per stream) is always sent, because tokens with
  indexer acknowledgement refuse requests without one.
* ``datadog`` — ``POST https://http-intake.logs.<site>/api/v2/logs`` with ``DD-API-KEY``; the
  body a JSON array of log items ``{"ddsource", "service", "hostname", "ddtags", "message",
  "status"}`` whose ``message`` is the event as a JSON string (Datadog parses it into
  attributes). At most 1,000 items and 5 MB per request (Datadog's documented limits).
* ``syslog`` — RFC 5424 messages, octet-counted (RFC 6587 §3.4.1, and RFC 5425 §4.3 over
  TLS): ``<len> <PRI>1 TIMESTAMP HOSTNAME sso_gate - MSGID [sso_gate@32473 organization_id="…"
  event_id="…"] {json}`` with ``PRI = facility * 8 + 6`` (informational; facility default 13,
  "log audit"), ``MSGID`` the action (cut to 32 characters, RFC 5424 §6.2.7) and the event as
  ASCII-only JSON (``MSG-ANY``, so no BOM). 32473 is the private enterprise number reserved
  for documentation (RFC 5612).

Secrets (``token``, ``signing_secret``, ``api_key``) travel inside ``config`` on the way in;
:func:`split_config` takes them out, so they are stored encrypted and never returned.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from sso_gate.audit_schema import AuditEvent
from sso_gate.exceptions import ValidationError
from sso_gate.webhooks import WebhookVerificationError, sign, signature_header

__all__ = [
    "StreamType",
    "STREAM_TYPES",
    "SECRET_FIELDS",
    "DATADOG_SITES",
    "Payload",
    "split_config",
    "network_targets",
    "secret_hint",
    "encode_events",
    "build_http",
    "syslog_frame",
    "tls_context",
    "event_dict",
]

StreamType = Literal["https", "splunk_hec", "datadog", "syslog"]
STREAM_TYPES: tuple[str, ...] = get_args(StreamType)
#: the config keys that are secrets, per type (stored encrypted, shown as a hint)
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "https": ("token", "signing_secret"),
    "splunk_hec": ("token",),
    "datadog": ("api_key",),
    "syslog": (),
}
_REQUIRED_SECRETS: dict[str, tuple[str, ...]] = {"splunk_hec": ("token",), "datadog": ("api_key",)}
_FIELDS: dict[str, frozenset[str]] = {
    "https": frozenset({"url", "batch_size"}),
    "splunk_hec": frozenset({"url", "index", "source", "sourcetype", "hostname", "batch_size"}),
    "datadog": frozenset({"site", "url", "service", "tags", "hostname", "batch_size"}),
    "syslog": frozenset(
        {"host", "port", "transport", "facility", "hostname", "ca_pem", "batch_size"}
    ),
}
#: Datadog sites and their logs intake hosts (Datadog's "Send logs" API reference)
DATADOG_SITES: frozenset[str] = frozenset(
    {
        "datadoghq.com",
        "us3.datadoghq.com",
        "us5.datadoghq.com",
        "datadoghq.eu",
        "ap1.datadoghq.com",
        "ap2.datadoghq.com",
        "uk1.datadoghq.com",
        "ddog-gov.com",
        "us2.ddog-gov.com",
    }
)
MAX_BATCH = 1000  # Datadog's limit of items per request
_MAX_URL = 2048
_MAX_SECRET = 1024
_MAX_PEM = 64 * 1024
_SD_ID = "sso_gate@32473"
_APP = "sso_gate"
_SEVERITY_INFO = 6


@dataclass(frozen=True, slots=True)
class Payload:
    """One HTTP request to send (the batch body already encoded)."""

    url: str
    headers: dict[str, str]
    body: bytes


def _text(value: object, field: str, *, max_len: int = 200, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be non-empty text", field=field)
    text = value.strip()
    if len(text) > max_len:
        raise ValidationError(f"{field} is longer than {max_len} characters", field=field)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValidationError(f"{field} must not contain control characters", field=field)
    return text


def _printable(value: str) -> str:
    """RFC 5424 PRINTUSASCII (33-126); anything else becomes ``-``."""
    return "".join(c if 33 <= ord(c) <= 126 else "-" for c in value)


def _url(value: object, field: str, *, development: bool) -> str:
    url = _text(value, field, max_len=_MAX_URL, required=True)
    assert url is not None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{url!r} is not an absolute https URL", field=field)
    if parts.username or parts.password:
        raise ValidationError(f"{field} must not contain credentials", field=field)
    if parts.fragment:
        raise ValidationError(f"{field} must not contain a fragment", field=field)
    if parts.scheme == "http" and not development:
        raise ValidationError(
            f"{field} must use https (plain http only with SSO_GATE_ENVIRONMENT=development)",
            field=field,
            code="https_required",
        )
    return url


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{field} must be a whole number from {low} to {high}", field=field)
    return value


def _secret(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be non-empty text", field=field)
    text = value.strip()
    if len(text) > _MAX_SECRET or any(ord(c) < 33 or ord(c) == 127 for c in text):
        # no length or content echoed back: it is a secret
        raise ValidationError(
            f"{field} must be at most {_MAX_SECRET} printable characters without spaces",
            field=field,
        )
    return text


def split_config(
    type_: str,
    config: Mapping[str, Any],
    *,
    development: bool,
    old_secrets: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate ``config`` for ``type_``; returns ``(settings, secrets)``. Errors name the field
    as ``config.<key>``. ``old_secrets`` (an update) fill in secrets that ``config`` omits; a
    secret given as ``None`` is removed."""
    if type_ not in STREAM_TYPES:
        raise ValidationError(
            f"unknown stream type {str(type_)[:40]!r}; one of {', '.join(STREAM_TYPES)}",
            field="type",
        )
    if not isinstance(config, Mapping):
        raise ValidationError("config must be an object", field="config")
    secret_keys = SECRET_FIELDS[type_]
    unknown = sorted(str(k) for k in config if k not in _FIELDS[type_] and k not in secret_keys)
    if unknown:
        allowed = ", ".join(sorted(_FIELDS[type_] | set(secret_keys)))
        raise ValidationError(
            f"unknown {type_} setting {unknown[0][:40]!r}; allowed: {allowed}",
            field=f"config.{unknown[0][:40]}",
        )
    secrets = dict(old_secrets or {})
    for key in secret_keys:
        if key in config:
            if config[key] is None:
                secrets.pop(key, None)
            else:
                secrets[key] = _secret(config[key], f"config.{key}")
    for key in _REQUIRED_SECRETS.get(type_, ()):
        if key not in secrets:
            raise ValidationError(f"config.{key} is required", field=f"config.{key}")
    if "signing_secret" in secrets:
        try:
            sign(secrets["signing_secret"], "msg", 0, b"")
        except WebhookVerificationError:
            raise ValidationError(
                "config.signing_secret must be a whsec_<base64> secret of at least 16 bytes "
                "(sso_gate.webhooks.generate_secret() makes one)",
                field="config.signing_secret",
            ) from None
    out: dict[str, Any] = {}
    c = {k: v for k, v in config.items() if k not in secret_keys and v is not None}
    if "batch_size" in c:
        out["batch_size"] = _int(c["batch_size"], "config.batch_size", 1, MAX_BATCH)
    if "hostname" in c:
        out["hostname"] = _printable(_text(c["hostname"], "config.hostname", max_len=255) or "")
    if type_ == "https":
        out["url"] = _url(c.get("url"), "config.url", development=development)
    elif type_ == "splunk_hec":
        url = _url(c.get("url"), "config.url", development=development).rstrip("/")
        for suffix in ("/services/collector/event", "/services/collector"):
            url = url.removesuffix(suffix)
        out["url"] = url
        for key in ("index", "source", "sourcetype"):
            if key in c:
                out[key] = _text(c[key], f"config.{key}", max_len=200)
    elif type_ == "datadog":
        site = _text(c.get("site", "datadoghq.com"), "config.site", max_len=100)
        if site not in DATADOG_SITES:
            raise ValidationError(
                f"unknown Datadog site {site!r}; one of {', '.join(sorted(DATADOG_SITES))}",
                field="config.site",
            )
        out["site"] = site
        if "url" in c:
            out["url"] = _url(c["url"], "config.url", development=development)
        if "service" in c:
            out["service"] = _text(c["service"], "config.service", max_len=100)
        if "tags" in c:
            tags = c["tags"]
            if not isinstance(tags, list | tuple) or len(tags) > 20:
                raise ValidationError(
                    "config.tags must be a list of at most 20 tags", field="config.tags"
                )
            out["tags"] = [
                _text(t, "config.tags", max_len=200).replace(",", "_")  # type: ignore[union-attr]
                for t in tags
            ]
    else:
        host = _text(c.get("host"), "config.host", max_len=253, required=True)
        assert host is not None
        if any(ch in host for ch in " /@?#[]") or host.startswith("-"):
            raise ValidationError(
                f"config.host {host!r} is not a host name or IP address", field="config.host"
            )
        out["host"] = host
        if "port" not in c:
            raise ValidationError("config.port is required", field="config.port")
        out["port"] = _int(c["port"], "config.port", 1, 65535)
        transport = c.get("transport", "tls")
        if transport not in ("tcp", "tls"):
            raise ValidationError("config.transport must be tcp or tls", field="config.transport")
        if transport == "tcp" and not development and host not in ("localhost", "127.0.0.1", "::1"):
            raise ValidationError(
                "syslog over plain tcp is allowed only to a relay on this machine (localhost) "
                "or with SSO_GATE_ENVIRONMENT=development; use transport tls",
                field="config.transport",
                code="tls_required",
            )
        out["transport"] = transport
        out["facility"] = _int(c.get("facility", 13), "config.facility", 0, 23)
        if "ca_pem" in c:
            if transport != "tls":
                raise ValidationError("config.ca_pem needs transport tls", field="config.ca_pem")
            pem = _pem(c["ca_pem"])
            out["ca_pem"] = pem
    return out, secrets


def _pem(value: object) -> str:
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
        raise ValidationError("config.ca_pem must be PEM certificate text", field="config.ca_pem")
    if len(value) > _MAX_PEM:
        raise ValidationError("config.ca_pem is larger than 64 KiB", field="config.ca_pem")
    try:
        tls_context(value)
    except (ssl.SSLError, ValueError):
        raise ValidationError(
            "config.ca_pem holds no valid certificate", field="config.ca_pem"
        ) from None
    return value


def network_targets(type_: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(url, field)`` pairs whose host must resolve to public addresses (the SSRF guard)."""
    if type_ in ("https", "splunk_hec") or (type_ == "datadog" and "url" in config):
        return [(config["url"], "config.url")]
    if type_ == "syslog":
        host = config["host"]
        netloc = f"[{host}]" if ":" in host else host
        return [(f"https://{netloc}:{config['port']}/", "config.host")]
    return []  # a Datadog site: a known public intake


def secret_hint(secret: str) -> str:
    """The last 4 characters of a secret long enough that they reveal little."""
    return secret[-4:] if len(secret) >= 12 else ""


def tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """Certificate and host name verified against ``ca_pem`` or the system store; TLS ≥ 1.2
    (RFC 9662 updates RFC 5425 to require it)."""
    ctx = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# -- payloads ------------------------------------------------------------------------------------


def event_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored ``audit_events`` row as the WorkOS audit event object (``AuditEvent.to_dict``)."""
    return AuditEvent(
        id=row["id"],
        organization_id=row["organization_id"],
        action=row["action"],
        occurred_at=row["occurred_at"],
        actor=row["actor"],
        targets=tuple(row["targets"]),
        context=row["context"],
        metadata=row["metadata"],
        version=row["version"],
        created_at=row["created_at"],
    ).to_dict()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _epoch(event: Mapping[str, Any]) -> float:
    return round(datetime.fromisoformat(event["occurred_at"]).timestamp(), 3)


def _escape_sd(value: str) -> str:
    """RFC 5424 §6.3.3: escape ``"``, ``\\`` and ``]`` in a PARAM-VALUE."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_frame(event: Mapping[str, Any], *, facility: int, hostname: str) -> bytes:
    """One octet-counted RFC 5424 message for ``event`` (its ``to_dict()`` form)."""
    msgid = _printable(event["action"])[:32] or "-"
    sd = (
        f'[{_SD_ID} organization_id="{_escape_sd(event["organization_id"])}" '
        f'event_id="{_escape_sd(event["id"])}"]'
    )
    msg = (
        f"<{facility * 8 + _SEVERITY_INFO}>1 {event['occurred_at']} {hostname or '-'} {_APP} - "
        f"{msgid} {sd} {_json(event)}"
    ).encode()
    return str(len(msg)).encode() + b" " + msg


def encode_events(
    type_: str, config: Mapping[str, Any], events: Sequence[Mapping[str, Any]], hostname: str
) -> list[bytes]:
    """Each event encoded on its own, in the destination's format (joined by :func:`build_http`,
    or written one after the other for syslog)."""
    host = config.get("hostname") or hostname
    if type_ == "https":
        return [_json(e).encode() for e in events]
    if type_ == "splunk_hec":
        extra = {"index": config["index"]} if config.get("index") else {}
        return [
            _json(
                {
                    "time": _epoch(e),
                    "host": host,
                    "source": config.get("source") or _APP,
                    "sourcetype": config.get("sourcetype") or "_json",
                    **extra,
                    "event": e,
                }
            ).encode()
            for e in events
        ]
    if type_ == "datadog":
        tags = ",".join(config.get("tags") or [])
        return [
            _json(
                {
                    "ddsource": _APP,
                    "service": config.get("service") or _APP,
                    "hostname": host,
                    "ddtags": f"organization_id:{e['organization_id']},action:{e['action']}"
                    + (f",{tags}" if tags else ""),
                    "status": "info",
                    "message": _json(e),
                }
            ).encode()
            for e in events
        ]
    return [syslog_frame(e, facility=config["facility"], hostname=_printable(host)) for e in events]


def build_http(
    type_: str,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    pieces: Sequence[bytes],
    *,
    stream_id: str,
    message_id: str,
) -> Payload:
    """The request for a batch of :func:`encode_events` pieces (``https``, ``splunk_hec``,
    ``datadog``)."""
    headers = {"content-type": "application/json"}
    if type_ == "https":
        body = b'{"events":[' + b",".join(pieces) + b"]}"
        if "token" in secrets:
            headers["authorization"] = f"Bearer {secrets['token']}"
        if "signing_secret" in secrets:
            ts = int(time.time())
            headers["webhook-id"] = message_id
            headers["webhook-timestamp"] = str(ts)
            headers["webhook-signature"] = signature_header(
                [secrets["signing_secret"]], message_id, ts, body
            )
        return Payload(config["url"], headers, body)
    if type_ == "splunk_hec":
        headers["authorization"] = f"Splunk {secrets['token']}"
        headers["x-splunk-request-channel"] = str(uuid.uuid5(uuid.NAMESPACE_URL, stream_id))
        return Payload(config["url"] + "/services/collector/event", headers, b"\n".join(pieces))
    if type_ == "datadog":
        headers["dd-api-key"] = secrets["api_key"]
        url = config.get("url") or f"https://http-intake.logs.{config['site']}/api/v2/logs"
        return Payload(url, headers, b"[" + b",".join(pieces) + b"]")
    raise ValueError(f"{type_} is not an HTTP stream type")
