"""Clock helpers: timezone-aware UTC everywhere; the clock is injectable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sso_gate.exceptions import ValidationError

__all__ = ["Clock", "utcnow", "isoformat", "parse_timestamp"]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(value: datetime) -> str:
    """ISO-8601 with milliseconds and ``Z``, like WorkOS (``2026-11-28T19:44:19.123Z``); the
    year always has four digits (``strftime("%Y")`` writes year 228 as ``228``)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    return text + "Z"


def parse_timestamp(value: str, field: str) -> datetime:
    """An ISO-8601 date or date-time from an API caller; without an offset it is taken as UTC.

    Raises :class:`~sso_gate.exceptions.ValidationError` naming ``field``.
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    hint = ""
    if " " in text:
        # "+01:00" in a query string that was not URL-encoded arrives as " 01:00"
        hint = " (in a query string write the offset as Z or encode + as %2B)"
    raise ValidationError(
        f"{field} must be an ISO-8601 date-time such as 2024-05-01T12:00:00Z, got "
        f"{value[:64]!r}{hint}",
        field=field,
    )
