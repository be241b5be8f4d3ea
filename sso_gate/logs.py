"""Structured logs: request ids and a JSON formatter (``SSO_GATE_LOG_FORMAT=json``).

The gate sets :data:`request_id` while it serves one of its own routes (the caller's
``X-Request-ID`` when it is a sane token, else a new one; echoed in the response), so every
record logged meanwhile — by the gate or by the app's hooks — carries it.

:class:`JSONFormatter` writes one JSON object per record: ``time``, ``level``, ``logger``,
``message``, ``request_id`` and, when present, ``exception`` and the gate's access-log fields.
It never serializes the record's ``args`` or arbitrary extras; what the message says is the
gate's business, and no gate log line carries a secret (``tests/test_no_secrets_in_logs.py``).
Use it for the whole process too, e.g. in a uvicorn ``--log-config`` file::

    formatters:
      json: {"()": sso_gate.logs.JSONFormatter}
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

__all__ = [
    "JSONFormatter",
    "RequestIdFilter",
    "configure_logging",
    "new_request_id",
    "request_id",
    "sane_request_id",
]

request_id: ContextVar[str | None] = ContextVar("sso_gate_request_id", default=None)

# What an incoming X-Request-ID may be: a token (uuid, hex, ULID, base64url, "Root=1-…"),
# nothing that could forge a log line, a header or a JSON field.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")
# Extra attributes of a record that the formatter emits (the gate's access log sets them).
_FIELDS = ("method", "route", "status", "duration_ms")


def new_request_id() -> str:
    return secrets.token_hex(16)


def sane_request_id(value: bytes | None) -> str | None:
    """``value`` as a request id if it is a plain token of at most 128 characters."""
    if value is None or len(value) > 128:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _SANE.fullmatch(text) else None


class RequestIdFilter(logging.Filter):
    """Stamps ``record.request_id`` where the record is made, for handlers that format it
    elsewhere (a ``QueueHandler``'s listener thread does not see the context variable)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None) or request_id.get()
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": rid,
        }
        for name in _FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str | int | float):
                out[name] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _GateHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (recognized to stay idempotent)."""


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """With ``json``: the ``sso_gate`` loggers write JSON lines to stderr at ``level`` (and no
    longer propagate, so they are not printed twice). With ``text``: nothing is changed; the
    app's logging configuration applies. Calling it again replaces the previous handler."""
    logger = logging.getLogger("sso_gate")
    for handler in [h for h in logger.handlers if isinstance(h, _GateHandler)]:
        logger.removeHandler(handler)
        logger.propagate = True
    if log_format != "json":
        return
    handler = _GateHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
