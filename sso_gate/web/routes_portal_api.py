"""Portal links and domain verification in the management API (``{prefix}/api``).

* ``POST /portal/links`` ``{"organization_id", "intent", "return_url"?}`` → 201 with the
  one-time ``link`` (valid 5 minutes, single use); WorkOS's ``POST /portal/generate_link``
  (``{"organization", "intent", "return_url"?}`` → ``{"link"}``) is the same operation.
* ``POST /organizations/{id}/domain_verifications`` ``{"domain"}`` → the domain, ``pending``,
  with the TXT record to publish; ``POST /organizations/{id}/domain_verifications/{domain}/verify``
  checks DNS now; ``PUT /organizations/{id}/domain_verification_policy``
  ``{"require_verified_domains": true|false}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sso_gate.exceptions import ValidationError
from sso_gate.services.portal import INTENTS
from sso_gate.web.responses import json_response
from sso_gate.web.routes_api import _json_body, _str

if TYPE_CHECKING:
    from sso_gate.gate import SSOGate

__all__ = ["portal_api_routes"]

Handler = Callable[[Request], Awaitable[Response]]


def _only(data: dict[str, object], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationError(
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(allowed)}",
            field=unknown[0],
        )


def portal_api_routes(gate: SSOGate, guard: Callable[[Handler], Handler]) -> list[BaseRoute]:
    s = gate.settings

    async def create_link(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, ("organization_id", "intent", "return_url"))
        intent = _str(data, "intent")
        if intent not in INTENTS:
            raise ValidationError(f"intent must be one of {', '.join(INTENTS)}", field="intent")
        link = await gate.portal.create_link(
            _str(data, "organization_id"), intent, return_url=_str(data, "return_url", False)
        )
        return json_response(link.to_dict(), 201)

    async def generate_link(request: Request) -> Response:
        """WorkOS ``POST /portal/generate_link``."""
        data = await _json_body(request, s.max_api_body)
        _only(data, ("organization", "intent", "return_url", "success_url"))
        intent = _str(data, "intent")
        if intent not in INTENTS:
            raise ValidationError(f"intent must be one of {', '.join(INTENTS)}", field="intent")
        link = await gate.portal.create_link(
            _str(data, "organization"), intent, return_url=_str(data, "return_url", False)
        )
        return json_response({"link": link.link})

    async def add_verification(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, ("domain",))
        domain = await gate.domains.add(request.path_params["id"], _str(data, "domain"))
        return json_response(domain.to_dict(), 201)

    async def verify(request: Request) -> Response:
        domain = await gate.domains.verify(request.path_params["id"], request.path_params["domain"])
        return json_response(domain.to_dict())

    async def policy(request: Request) -> Response:
        data = await _json_body(request, s.max_api_body)
        _only(data, ("require_verified_domains",))
        value = data.get("require_verified_domains")
        if not isinstance(value, bool):
            raise ValidationError(
                "require_verified_domains must be true or false", field="require_verified_domains"
            )
        org = await gate.domains.set_require_verified(request.path_params["id"], value)
        return json_response(org.to_dict())

    return [
        Route("/portal/links", guard(create_link), methods=["POST"]),
        Route("/portal/generate_link", guard(generate_link), methods=["POST"]),
        Route(
            "/organizations/{id}/domain_verifications", guard(add_verification), methods=["POST"]
        ),
        Route(
            "/organizations/{id}/domain_verifications/{domain}/verify",
            guard(verify),
            methods=["POST"],
        ),
        Route("/organizations/{id}/domain_verification_policy", guard(policy), methods=["PUT"]),
    ]
