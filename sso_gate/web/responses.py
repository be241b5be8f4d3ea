"""Turning results and errors into responses; cookies."""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response

from sso_gate.exceptions import RateLimitedError, SSOGateError
from sso_gate.settings import Settings

__all__ = [
    "wants_json",
    "error_response",
    "json_response",
    "cookie_name",
    "set_cookie_header",
    "clear_cookie_header",
    "FLOW_COOKIE",
]

FLOW_COOKIE = "sso_gate_flow"


def wants_json(headers: Any) -> bool:
    """True for API/XHR callers (JSON body, XHR header, or an Accept without HTML)."""
    if headers.get("x-requested-with", "").lower() == "xmlhttprequest":
        return True
    ctype = headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return True
    accept = headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        data, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})}
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}}</style></head>
<body><h1>{title}</h1><p id="message">{message}</p><p>Error code: <code id="code">{code}</code></p>
{extra}</body></html>"""


def error_response(exc: SSOGateError, as_json: bool, *, retry_link: str | None = None) -> Response:
    """A clear error (JSON or a small HTML page); never a stack trace."""
    headers = {"Cache-Control": "no-store"}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    if as_json:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)
    title = "Sign-in failed" if exc.http_status < 500 else "Service unavailable"
    if isinstance(exc, RateLimitedError):
        title = "Too many requests"
    extra = f'<p><a href="{html.escape(retry_link)}">Try again</a></p>' if retry_link else ""
    body = _PAGE.format(
        title=title, message=html.escape(exc.message), code=html.escape(exc.code), extra=extra
    )
    return HTMLResponse(body, status_code=exc.http_status, headers=headers)


def cookie_name(settings: Settings, base: str) -> str:
    """``__Host-`` prefix on https (Secure, Path=/, no Domain): a subdomain cannot plant it."""
    return f"__Host-{base}" if settings.is_https else base


def set_cookie_header(
    settings: Settings, name: str, value: str, max_age: int, *, samesite: str = "Lax"
) -> tuple[bytes, bytes]:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", f"SameSite={samesite}"]
    if settings.is_https or samesite == "None":
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


def clear_cookie_header(settings: Settings, name: str) -> tuple[bytes, bytes]:
    parts = [f"{name}=", "Path=/", "Max-Age=0", "HttpOnly", "SameSite=Lax"]
    if settings.is_https:
        parts.append("Secure")
    return b"set-cookie", "; ".join(parts).encode("latin-1")


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
