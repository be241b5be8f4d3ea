"""SAML endpoints per connection: SP metadata, ACS, and the same-site completion step.

Why a completion step: the ACS POST comes cross-site from the IdP, so browsers do not send our
``SameSite=Lax`` flow cookie with it. The ACS verifies the response, parks the verified result
under a single-use token and redirects (303) to ``…/complete``; that top-level GET does carry the
Lax cookie, so the browser binding (InResponseTo of *this* browser's flow) is checked there before
any session exists. No ``SameSite=None`` cookie is needed.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sso_gate._crypto import constant_time_equals
from sso_gate.exceptions import (
    NotFoundError,
    PayloadTooLargeError,
    SSOFlowError,
    SSOGateError,
    ValidationError,
)
from sso_gate.models import Profile
from sso_gate.saml.metadata import sp_metadata
from sso_gate.web.portal._sso_test import finish_saml_test
from sso_gate.web.responses import error_response, wants_json
from sso_gate.web.routes import finish_login, flow_binding

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["saml_routes"]

_DONE_TTL = 120


async def _read_form(request: Request, limit: int) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLargeError(f"the SAML POST is larger than {limit} bytes")
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        raise ValidationError(
            "the ACS expects an HTTP-POST binding form (application/x-www-form-urlencoded)",
            code="invalid_content_type",
        )
    try:
        return dict(parse_qsl(body.decode("ascii"), max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("the SAML POST form is malformed", code="malformed_body") from None


def saml_routes(gate: SSOGate) -> list[BaseRoute]:
    s = gate.settings

    async def metadata(request: Request) -> Response:
        try:
            connection = await gate.connections.get_cached(request.path_params["connection_id"])
            if connection.saml is None:
                raise NotFoundError("not a SAML connection", code="connection_not_found")
        except SSOGateError as exc:
            return error_response(exc, True)
        urls = gate.connections.saml_urls(connection.id)
        xml = sp_metadata(
            entity_id=connection.saml.sp_entity_id,
            acs_url=urls["acs_url"],
            slo_url=urls["slo_url"],
            certificate_pem_value=connection.saml.sp_certificate,
            authn_requests_signed=connection.saml.sign_requests,
        )
        return Response(xml, media_type="application/samlmetadata+xml")

    async def acs(request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        as_json = wants_json(request.headers)
        try:
            form = await _read_form(request, s.max_saml_response * 2 + 8192)
            tested = await finish_saml_test(gate, connection_id, form)
            if tested is not None:  # a test sign-in from the admin portal: no session
                return tested
            result = await gate.saml.complete(connection_id, form)
            if result.binding_hash is None:
                # IdP-initiated (enabled for this connection): nothing to bind; fixed landing page.
                return await finish_login(gate, request, result.profile, result.return_to)
            token = secrets.token_urlsafe(32)
            parked = {
                "profile": result.profile.to_dict(),
                "return_to": result.return_to,
                "binding_hash": result.binding_hash,
                "connection_id": connection_id,
            }
            await gate.onetime.put(f"saml_done:{token}", json.dumps(parked), _DONE_TTL)
            url = f"{s.prefix}/sso/saml/{connection_id}/complete?token={token}"
            return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})
        except SSOGateError as exc:
            return error_response(exc, as_json, retry_link=s.login_path)

    async def complete(request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        as_json = wants_json(request.headers)
        try:
            token = request.query_params.get("token", "")
            raw = await gate.onetime.take(f"saml_done:{token}") if 0 < len(token) < 100 else None
            if raw is None:
                raise SSOFlowError(
                    "this sign-in result is unknown, expired or was already used",
                    code="invalid_state",
                )
            parked = json.loads(raw)
            if parked["connection_id"] != connection_id:
                raise SSOFlowError("wrong connection for this sign-in", code="connection_mismatch")
            binding = flow_binding(gate, request.scope)
            if binding is None or not constant_time_equals(binding, parked["binding_hash"]):
                raise SSOFlowError(
                    "this sign-in was started in another browser (flow cookie missing or "
                    "different)",
                    code="browser_mismatch",
                )
            profile = Profile.from_dict(parked["profile"])
            return await finish_login(gate, request, profile, parked["return_to"])
        except SSOGateError as exc:
            return error_response(exc, as_json, retry_link=s.login_path)

    async def slo(request: Request) -> Response:
        try:
            result = await gate.saml.handle_slo(
                request.path_params["connection_id"], request.scope.get("query_string", b"")
            )
        except SSOGateError as exc:
            return error_response(exc, wants_json(request.headers))
        return RedirectResponse(result.redirect_to, 303, headers={"Cache-Control": "no-store"})

    return [
        Route("/sso/saml/{connection_id}/slo", slo, methods=["GET"]),
        Route("/sso/saml/{connection_id}/metadata", metadata, methods=["GET"]),
        Route("/sso/saml/{connection_id}/acs", acs, methods=["POST"]),
        Route("/sso/saml/{connection_id}/complete", complete, methods=["GET"]),
    ]
