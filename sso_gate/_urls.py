"""Validation of redirect targets (``return_to``): same-origin only, never from the IdP message."""

from __future__ import annotations

from urllib.parse import urlsplit

from sso_gate.exceptions import SSOFlowError

__all__ = ["safe_return_to"]

_MAX = 2048


def safe_return_to(value: str | None, base_url: str, default: str = "/") -> str:
    """A same-origin path to redirect to after login, or :class:`SSOFlowError`
    (``invalid_return_to``).

    Accepted: a path starting with a single ``/`` (``/dashboard?x=1``), or an absolute URL whose
    scheme, host and port equal ``base_url``'s (returned as a path). Refused: scheme-relative
    (``//evil``), backslash tricks (``/\\evil``), other origins, non-http schemes
    (``javascript:``), control characters and whitespace, anything over 2048 characters.
    """
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > _MAX:
        raise SSOFlowError("return_to is too long", code="invalid_return_to")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value) or "\\" in value:
        raise SSOFlowError(
            "return_to contains control characters, whitespace or backslashes",
            code="invalid_return_to",
        )
    if value.startswith("/"):
        if value.startswith("//"):
            raise SSOFlowError("return_to must be a path on this site", code="invalid_return_to")
        return value
    parts = urlsplit(value)
    base = urlsplit(base_url)
    if (
        parts.scheme in ("http", "https")
        and parts.scheme == base.scheme
        and parts.netloc.lower() == base.netloc.lower()
        and not parts.username
    ):
        path = parts.path or "/"
        if path.startswith("//"):
            raise SSOFlowError("return_to must be a path on this site", code="invalid_return_to")
        return path + (f"?{parts.query}" if parts.query else "")
    raise SSOFlowError(
        "return_to must be a path on this site (other origins and schemes are refused)",
        code="invalid_return_to",
    )
