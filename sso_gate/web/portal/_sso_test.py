"""“Test connection” in the portal: a real sign-in through the IdP whose outcome is shown to the
IT admin (a login trace, as SSOReady shows one) instead of starting an app session.

* **Start** — ``GET /portal/sso/{id}/test?t=…``. A link with a one-time token, not a form:
  the portal's CSP ``form-action 'self'`` also covers the redirects after a form POST, so a POST
  answered with a 303 to the IdP is blocked by browsers (checked in Chromium). The usual flow
  begins with ``test=True`` (allowed on draft and inactive connections) and two one-time keys are
  written: the test record, bound to the portal session, and a marker from the flow's key (the
  SAML AuthnRequest ID, the OIDC ``state``) to the test id.
* **Finish** — the ACS and the OIDC callback call :func:`finish_saml_test` /
  :func:`finish_oidc_test` first. When the marker exists, the response is verified with
  ``test=True`` — every check of a real sign-in runs, but no app session is created and
  ``on_login`` is not called — and the outcome (the profile, or the error with the expected and
  received values) goes into the test record; the browser lands on
  ``/portal/sso/test/{id}``, shown only to the portal session that started the test.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sso_gate._time import isoformat, utcnow
from sso_gate.exceptions import SSOGateError, ValidationError
from sso_gate.models import Connection, Profile
from sso_gate.saml.metadata import load_certificate
from sso_gate.saml.response import decode_saml_response
from sso_gate.saml.trace import ResponseTrace, trace_response
from sso_gate.services.portal import PortalSession
from sso_gate.web.middleware import read_cookie
from sso_gate.web.responses import FLOW_COOKIE, cookie_name, set_cookie_header

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = [
    "new_test_link",
    "start_test",
    "finish_saml_test",
    "finish_oidc_test",
    "load_test",
]

_LINK, _TEST, _FLOW = "portal_sso_test_link:", "portal_sso_test:", "portal_sso_test_flow:"
_LINK_TTL = 900
_IRT = re.compile(rb'InResponseTo="([^"]{1,256})"')
_NO_STORE = {"cache-control": "no-store", "referrer-policy": "no-referrer"}


def _ttl(gate: SSOGate) -> int:
    return max(gate.settings.flow_ttl, gate.settings.portal_session_lifetime)


def _result_url(gate: SSOGate, test_id: str) -> str:
    return f"{gate.settings.prefix}/portal/sso/test/{test_id}"


async def new_test_link(gate: SSOGate, session: PortalSession, connection_id: str) -> str:
    """A one-time token for the "Test sign-in" link of one connection and portal session."""
    token = secrets.token_urlsafe(32)
    owner = {"session_id": session.id, "organization_id": session.organization_id}
    await gate.onetime.put(
        _LINK + token, json.dumps({**owner, "connection_id": connection_id}), _LINK_TTL
    )
    return token


async def _save(gate: SSOGate, record: dict[str, Any]) -> None:
    await gate.onetime.put(_TEST + record["id"], json.dumps(record), _ttl(gate))


async def load_test(gate: SSOGate, test_id: str, session: PortalSession) -> dict[str, Any] | None:
    """The test record, only for the portal session that started it (None otherwise)."""
    if not 0 < len(test_id) < 100:
        return None
    raw = await gate.onetime.take(_TEST + test_id)
    if raw is None:
        return None
    record: dict[str, Any] = json.loads(raw)
    await _save(gate, record)  # taken to read it: put back, so the page can be reloaded
    if (record["session_id"], record["organization_id"]) != (
        session.id,
        session.organization_id,
    ):
        return None
    return record


async def start_test(
    gate: SSOGate, scope: Any, session: PortalSession, connection: Connection, token: str
) -> Response | None:
    """Redirect to the IdP for a test sign-in; None when the link token is not valid here."""
    raw = await gate.onetime.take(_LINK + token) if 0 < len(token) < 100 else None
    link = json.loads(raw) if raw else None
    if link != {
        "session_id": session.id,
        "organization_id": session.organization_id,
        "connection_id": connection.id,
    }:
        return None
    s = gate.settings
    flow_name = cookie_name(s, FLOW_COOKIE)
    flow_value = read_cookie(scope["headers"], flow_name.encode())
    if not flow_value or len(flow_value) != 43:
        flow_value = secrets.token_urlsafe(32)
    binding = hashlib.sha256(flow_value.encode()).hexdigest()  # as routes.flow_binding
    record: dict[str, Any] = {
        "id": secrets.token_urlsafe(24),
        "session_id": session.id,
        "organization_id": session.organization_id,
        "connection_id": connection.id,
        "protocol": connection.protocol,
        "status": "pending",
        "started_at": isoformat(utcnow()),
    }
    response: Response
    try:
        if connection.saml is not None:
            start = await gate.saml.begin(
                connection, return_to="/", binding_hash=binding, test=True
            )
            key, record["request_id"] = f"saml:{start.request_id}", start.request_id
            response = (
                HTMLResponse(start.value, headers=_NO_STORE)
                if start.kind == "post"
                else RedirectResponse(start.value, 303, headers=_NO_STORE)
            )
        else:
            url = await gate.sso.begin(connection, return_to="/", binding_hash=binding, test=True)
            key = "oidc:" + parse_qs(urlsplit(url).query)["state"][0]
            response = RedirectResponse(url, 303, headers=_NO_STORE)
    except SSOGateError as exc:
        await _finish(gate, record, connection, None, exc, stage="start")
        return RedirectResponse(_result_url(gate, record["id"]), 303, headers=_NO_STORE)
    await _save(gate, record)
    await gate.onetime.put(_FLOW + key, record["id"], s.flow_ttl)
    response.raw_headers.append(set_cookie_header(s, flow_name, flow_value, s.flow_ttl))
    return response


async def _record_of(gate: SSOGate, marker: str) -> dict[str, Any] | None:
    test_id = await gate.onetime.take(_FLOW + marker)
    raw = await gate.onetime.take(_TEST + test_id) if test_id else None
    return json.loads(raw) if raw else None


async def _finish(
    gate: SSOGate,
    record: dict[str, Any],
    connection: Connection | None,
    profile: Profile | None,
    error: SSOGateError | None,
    *,
    stage: str = "response",
    trace: ResponseTrace | None = None,
) -> Response:
    record["finished_at"] = isoformat(utcnow())
    record["status"] = "succeeded" if error is None else "failed"
    record["stage"] = stage
    record["profile"] = profile.to_dict() if profile is not None else None
    record["error"] = (
        None
        if error is None
        else {
            "code": error.code,
            "message": error.message,
            "field": error.field if isinstance(error, ValidationError) else None,
        }
    )
    record["trace"] = trace.to_dict() if trace is not None else None
    code = error.code if error is not None else None
    if connection is not None and connection.saml is not None:
        record["checks"] = _saml_checks(gate, connection, record, trace, code)
    elif connection is not None and connection.oidc is not None:
        record["checks"] = _oidc_checks(gate, connection, profile, error)
    await _save(gate, record)
    return RedirectResponse(_result_url(gate, record["id"]), 303, headers=_NO_STORE)


async def _run(
    gate: SSOGate,
    record: dict[str, Any],
    connection_id: str,
    outcome: Awaitable[Any],
    trace: ResponseTrace | None = None,
) -> Response:
    connection: Connection | None = None
    try:
        connection = await gate.connections.get_cached(connection_id)
        result = await outcome
    except SSOGateError as exc:
        return await _finish(gate, record, connection, None, exc, trace=trace)
    profile = result[0] if isinstance(result, tuple) else result.profile
    return await _finish(gate, record, connection, profile, None, trace=trace)


async def finish_saml_test(
    gate: SSOGate, connection_id: str, form: dict[str, str]
) -> Response | None:
    """At the ACS: finish a portal test sign-in (None: not a test, carry on as usual)."""
    value = form.get("SAMLResponse", "")
    try:
        match = _IRT.search(decode_saml_response(value, gate.settings.max_saml_response))
    except SSOGateError:
        return None
    if match is None:
        return None
    record = await _record_of(gate, "saml:" + match.group(1).decode("ascii", "replace"))
    if record is None:
        return None
    trace = trace_response(value, gate.settings.max_saml_response)
    outcome = gate.saml.complete(connection_id, form, test=True)
    return await _run(gate, record, connection_id, outcome, trace)


async def finish_oidc_test(
    gate: SSOGate, scope: Any, connection_id: str, params: dict[str, str]
) -> Response | None:
    """At the OIDC callback: finish a portal test sign-in (None: not a test)."""
    state = params.get("state")
    if not state or len(state) > 200:
        return None
    record = await _record_of(gate, "oidc:" + state)
    if record is None:
        return None
    value = read_cookie(scope["headers"], cookie_name(gate.settings, FLOW_COOKIE).encode())
    binding = None if value is None else hashlib.sha256(value.encode()).hexdigest()
    outcome = gate.sso.complete_oidc(connection_id, params, binding, test=True)
    return await _run(gate, record, connection_id, outcome)


# -- the login trace: expected vs received ---------------------------------------------------

_SAML_FAILED = {
    "wrong_issuer": "issuer",
    "wrong_destination": "destination",
    "missing_destination": "destination",
    "wrong_recipient": "recipient",
    "wrong_audience": "audience",
    "missing_audience": "audience",
    "in_response_to_mismatch": "in_response_to",
    "unknown_in_response_to": "in_response_to",
    "invalid_signature": "certificate",
    "digest_mismatch": "certificate",
    "unsigned": "certificate",
    "weak_algorithm": "certificate",
    "saml_status_error": "status",
}


def _short(fingerprint: str) -> str:
    return fingerprint[:16] + "…"


def _check(key: str, name: str, expected: str, received: str | None, ok: bool) -> dict[str, Any]:
    return {"key": key, "name": name, "expected": expected, "received": received, "ok": ok}


def _saml_checks(
    gate: SSOGate,
    connection: Connection,
    record: dict[str, Any],
    trace: ResponseTrace | None,
    code: str | None,
) -> list[dict[str, Any]]:
    saml = connection.saml
    assert saml is not None
    if trace is None or trace.error:
        return []
    acs = gate.connections.saml_urls(connection.id)["acs_url"]
    pins = [load_certificate(p).fingerprint(hashes.SHA256()).hex() for p in saml.idp_certificates]
    signed_by = trace.certificate_sha256
    checks = [
        _check(
            "status",
            "Status",
            "Success",
            (trace.status or "").rsplit(":", 1)[-1] or None,
            (trace.status or "").endswith(":Success"),
        ),
        _check("issuer", "Issuer (IdP entity ID)", saml.idp_entity_id, trace.issuer, True),
        _check("destination", "Destination", acs, trace.destination, True),
        _check("recipient", "Recipient", acs, trace.recipient, True),
        _check(
            "audience",
            "Audience (SP entity ID)",
            saml.sp_entity_id,
            ", ".join(trace.audiences) or None,
            True,
        ),
        _check(
            "in_response_to",
            "InResponseTo (our request)",
            record.get("request_id", ""),
            trace.in_response_to,
            True,
        ),
        _check(
            "certificate",
            "Signing certificate (SHA-256)",
            ", ".join(_short(p) for p in pins),
            _short(signed_by) if signed_by else None,
            signed_by in pins if signed_by else True,
        ),
    ]
    for c in checks:
        if c["key"] in ("issuer", "recipient", "audience", "in_response_to"):
            c["ok"] = c["received"] == c["expected"] or (
                c["key"] == "audience" and saml.sp_entity_id in trace.audiences
            )
        elif c["key"] == "destination":
            c["ok"] = c["received"] in (None, acs)
    failed = _SAML_FAILED.get(code or "")
    for c in checks:
        if c["key"] == failed:
            c["ok"] = False
    return checks


_OIDC_RECEIVED = {
    "invalid_issuer": ("issuer", re.compile(r"ID token issuer (.+?) is not the connection")),
    "invalid_iss_parameter": ("issuer", re.compile(r"response iss (.+?) is not the connection")),
    "invalid_audience": ("audience", re.compile(r"ID token audience (.+?) does not include")),
    "untrusted_audience": ("audience", re.compile(r"does not trust: (.+)$")),
}


def _oidc_checks(
    gate: SSOGate, connection: Connection, profile: Profile | None, error: SSOGateError | None
) -> list[dict[str, Any]]:
    oidc = connection.oidc
    assert oidc is not None
    claims = profile.raw_attributes if profile is not None else {}
    received: dict[str, str | None] = {
        "issuer": str(claims["iss"]) if "iss" in claims else None,
        "audience": str(claims["aud"]) if "aud" in claims else None,
    }
    failed = None
    if error is not None and error.code in _OIDC_RECEIVED:
        failed, pattern = _OIDC_RECEIVED[error.code]
        match = pattern.search(error.message)
        received[failed] = match.group(1) if match else None
    checks = [
        _check("issuer", "Issuer", oidc.issuer, received["issuer"], failed != "issuer"),
        _check(
            "audience",
            "Audience (client ID)",
            oidc.client_id,
            received["audience"],
            failed != "audience",
        ),
        _check(
            "redirect_uri", "Redirect URI", gate.connections.redirect_uri(connection.id), None, True
        ),
    ]
    return checks
