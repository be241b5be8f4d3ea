"""Log stream pages of the admin portal (intent ``log_streams``): send the organization's audit
events to its SIEM (``gate.audit_streams``).

* ``GET /log-streams`` — the destinations (where, state, last error) and one "add" form per
  type (HTTPS, Splunk HEC, Datadog, syslog over TCP or TLS), each a ``<details>`` section so
  the page works without JavaScript.
* ``POST /log-streams`` — add; invalid input re-renders the form (422) with a plain message,
  the non-secret values kept and the secrets never echoed back.
* ``POST /log-streams/{id}/test`` — send a test event now and show the outcome.
* ``POST /log-streams/{id}/delete`` — remove.

Secrets (tokens, API keys, signing secrets) are stored encrypted by the service and only their
last four characters are ever shown. Adding and removing are audited by the service
(``audit_stream.created``/``deleted``) with the portal session as actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sso_gate._time import isoformat
from sso_gate.exceptions import NotFoundError, ValidationError
from sso_gate.services._stream_formats import DATADOG_SITES, SECRET_FIELDS
from sso_gate.services.audit_streams import AuditStream, StreamTestResult
from sso_gate.services.portal import PortalSession
from sso_gate.web.portal._base import Portal, PortalPage, guarded

__all__ = ["log_stream_routes", "TYPE_LABELS"]

TYPE_LABELS: dict[str, str] = {
    "https": "HTTPS endpoint",
    "splunk_hec": "Splunk HTTP Event Collector",
    "datadog": "Datadog",
    "syslog": "Syslog (TCP or TLS)",
}
#: the form fields of each type, in form order (secrets included)
_FIELDS: dict[str, tuple[str, ...]] = {
    "https": ("url", "token", "signing_secret"),
    "splunk_hec": ("url", "token", "index", "source", "sourcetype"),
    "datadog": ("site", "api_key", "service", "tags", "url"),
    "syslog": ("host", "port", "transport", "facility", "ca_pem"),
}
_LABELS: dict[str, str] = {
    "url": "URL",
    "token": "Token",
    "signing_secret": "Signing secret",
    "index": "Index",
    "source": "Source",
    "sourcetype": "Source type",
    "site": "Datadog site",
    "api_key": "API key",
    "service": "Service",
    "tags": "Tags",
    "host": "Host",
    "port": "Port",
    "transport": "Transport",
    "facility": "Facility",
    "ca_pem": "CA certificate",
    "batch_size": "Batch size",
}
_TYPE_LABELS_OVERRIDE = {
    ("https", "url"): "Endpoint URL",
    ("https", "token"): "Bearer token",
    ("splunk_hec", "url"): "HEC URL",
    ("splunk_hec", "token"): "HEC token",
    ("datadog", "url"): "Intake URL",
}
_MAX_TEXT = 70_000  # a CA bundle fits; anything longer is refused by the service anyway


def _label(type_: str, key: str) -> str:
    return _TYPE_LABELS_OVERRIDE.get((type_, key), _LABELS.get(key, key))


def _friendly(message: str, type_: str) -> str:
    """A service message with ``config.<key>`` replaced by the form's label."""
    for key in sorted(_LABELS, key=len, reverse=True):
        message = message.replace(f"config.{key}", _label(type_, key))
    return message[:1].upper() + message[1:]


def _whole(value: str, key: str, type_: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise ValidationError(f"{_label(type_, key)} must be a whole number from {low} to {high}")
    return number


def form_config(type_: str, data: dict[str, str]) -> dict[str, Any]:
    """The stream config from the add form of ``type_`` (empty fields left out)."""
    config: dict[str, Any] = {}
    for key in _FIELDS[type_]:
        value = data.get(key, "").strip()
        if not value:
            continue
        if len(value) > _MAX_TEXT:
            raise ValidationError(f"{_label(type_, key)} is too long")
        if key == "port":
            config[key] = _whole(value, key, type_, 1, 65535)
        elif key == "facility":
            config[key] = _whole(value, key, type_, 0, 23)
        elif key == "tags":
            config[key] = [t.strip() for t in value.split(",") if t.strip()]
        else:
            config[key] = value
    return config


def _when(value: datetime | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"iso": isoformat(value), "text": value.strftime("%Y-%m-%d %H:%M:%S UTC")}


def _view(stream: AuditStream) -> dict[str, Any]:
    c = stream.config
    if stream.type == "syslog":
        destination = f"{c['host']}:{c['port']} ({str(c.get('transport', 'tls')).upper()})"
    elif stream.type == "datadog":
        destination = c.get("url") or f"Datadog ({c.get('site', 'datadoghq.com')})"
    else:
        destination = str(c.get("url", ""))
    details = [
        (_label(stream.type, k), str(c[k])) for k in ("index", "sourcetype", "service") if k in c
    ]
    secrets = [(_label(stream.type, k), hint) for k, hint in sorted(stream.secret_hints.items())]
    return {
        "id": stream.id,
        "name": stream.name or TYPE_LABELS[stream.type],
        "type_label": TYPE_LABELS[stream.type],
        "destination": destination,
        "details": details,
        "secrets": secrets,
        "state": stream.state,
        "last_error": stream.last_error or "",
        "last_success": _when(stream.last_success_at),
        "lag": stream.lag,
    }


def log_stream_routes(portal: Portal) -> list[BaseRoute]:
    gate = portal.gate
    sites = sorted(DATADOG_SITES)

    async def own_stream(session: PortalSession, stream_id: str) -> AuditStream:
        try:
            stream = await gate.audit_streams.get(stream_id)
        except NotFoundError:
            stream = None
        if stream is None or stream.organization_id != session.organization_id:
            raise PortalPage(404, "Destination not found", "This log stream does not exist.")
        return stream

    async def page(
        request: Request,
        session: PortalSession,
        *,
        status: int = 200,
        form_type: str = "",
        form: dict[str, str] | None = None,
        form_error: str = "",
        tested: tuple[str, StreamTestResult] | None = None,
    ) -> Response:
        result = await gate.audit_streams.list(session.organization_id, limit=100)
        test_view = None
        if tested is not None:
            stream_id, outcome = tested
            test_view = {
                "stream_id": stream_id,
                "success": outcome.success,
                "status_code": outcome.status_code,
                "latency_ms": round(outcome.latency_ms),
                "error": outcome.error or "",
            }
        return portal.render(
            request,
            "log_streams.html",
            session,
            status=status,
            title="Log streams",
            streams=[_view(s) for s in result.data],
            types=TYPE_LABELS,
            fields=_FIELDS,
            secret_fields=SECRET_FIELDS,
            label=_label,
            sites=sites,
            form_type=form_type,
            form=form or {},
            form_error=form_error,
            tested=test_view,
        )

    async def index(request: Request) -> Response:
        session = await portal.session(request, "log_streams")
        return await page(request, session)

    async def add(request: Request) -> Response:
        session = await portal.session(request, "log_streams")
        data = await portal.form(request, session)
        type_ = data.get("type", "")
        if type_ not in TYPE_LABELS:
            return await page(
                request, session, status=422, form_error="Choose a type of destination."
            )
        # secrets are never sent back to the browser, even to refill the form
        keep = {k: v for k, v in data.items() if k not in SECRET_FIELDS[type_]}
        start = data.get("start", "now")
        try:
            if start not in ("now", "beginning"):
                raise ValidationError("Choose which events to send")
            name = data.get("name", "").strip() or None
            await gate.audit_streams.create(
                session.organization_id,
                type_,  # type: ignore[arg-type]  # checked against TYPE_LABELS above
                form_config(type_, data),
                name=name,
                start="beginning" if start == "beginning" else "now",
            )
        except ValidationError as exc:
            return await page(
                request,
                session,
                status=422,
                form_type=type_,
                form=keep,
                form_error=_friendly(exc.message, type_),
            )
        return portal.redirect(
            request, "/log-streams", session, done=f"Added the {TYPE_LABELS[type_]} destination"
        )

    async def test(request: Request) -> Response:
        session = await portal.session(request, "log_streams")
        await portal.form(request, session)
        stream = await own_stream(session, request.path_params["stream_id"])
        outcome = await gate.audit_streams.test(stream.id)
        return await page(request, session, tested=(stream.id, outcome))

    async def remove(request: Request) -> Response:
        session = await portal.session(request, "log_streams")
        await portal.form(request, session)
        stream = await own_stream(session, request.path_params["stream_id"])
        await gate.audit_streams.delete(stream.id)
        # the flash names the type, not the admin's free-text name (it travels in the URL)
        done = f"Removed the {TYPE_LABELS[stream.type]} destination"
        return portal.redirect(request, "/log-streams", session, done=done)

    return [
        Route("/log-streams", guarded(portal, index), methods=["GET"]),
        Route("/log-streams", guarded(portal, add), methods=["POST"]),
        Route("/log-streams/{stream_id}/test", guarded(portal, test), methods=["POST"]),
        Route("/log-streams/{stream_id}/delete", guarded(portal, remove), methods=["POST"]),
    ]
