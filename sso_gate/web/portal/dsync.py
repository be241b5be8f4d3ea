"""Directory sync pages of the admin portal (intent ``dsync``).

* ``GET /dsync`` — the organization's directories (counts, state) and the provider choice.
* ``GET /dsync/new?provider=…`` — what connecting that provider involves, and the create form
  (Google Workspace has no SCIM push: the page says so and suggests another route).
* ``POST /dsync`` — creates the directory, then redirects to its page with a one-time
  ``reveal`` code; ``POST /dsync/{id}/rotate`` does the same with a new token.
* ``GET /dsync/{id}`` — SCIM base URL, provider-specific numbered steps, user/group counts and
  the recent provisioning requests; with a valid ``reveal`` code, the token (once).

**The token is shown exactly once.** After creation or rotation it is sealed (AES-GCM) with a
key derived from a random code that only travels in the redirect URL, and the sealed value is
put in the gate's one-time store (``SSO_GATE_REDIS_URL`` across instances) for five minutes,
bound to the portal session and the directory. The first GET with the code takes it out; a
reload, another session or a later visit finds nothing. Post/redirect/get means reloading the
page never creates a second directory or rotates again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sso_gate._time import isoformat
from sso_gate.exceptions import NotFoundError, SSOGateError, ValidationError
from sso_gate.models import Directory
from sso_gate.services.directories import ROTATION_GRACE, ProvisioningRequest
from sso_gate.services.portal import PortalSession
from sso_gate.web.portal._base import Portal, PortalPage, guarded

__all__ = ["dsync_routes", "PROVIDERS", "Provider"]

_REVEAL_TTL = 300.0
_RECENT = 50


@dataclass(frozen=True, slots=True)
class Provider:
    """A directory provider the IT admin can choose; ``type`` is the directory type
    (``sso_gate.models.DIRECTORY_TYPES``), None when the provider cannot push over SCIM."""

    key: str
    label: str
    type: str | None


PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        Provider("okta", "Okta", "okta scim v2.0"),
        Provider("entra", "Microsoft Entra ID", "azure scim v2.0"),
        Provider("google", "Google Workspace", None),
        Provider("onelogin", "OneLogin", "onelogin scim v2.0"),
        Provider("jumpcloud", "JumpCloud", "jump cloud scim v2.0"),
        Provider("pingone", "PingOne", "pingfederate scim v2.0"),
        Provider("generic", "Another SCIM 2.0 provider", "generic scim v2.0"),
    )
}
_BY_TYPE = {p.type: p for p in PROVIDERS.values() if p.type}
_BY_TYPE["jumpcloud scim v2.0"] = PROVIDERS["jumpcloud"]

#: plain-language descriptions of logged SCIM requests, by (method, resource, has id)
_OPERATIONS = {
    ("POST", "Users", False): "Create user",
    ("PUT", "Users", True): "Replace user",
    ("PATCH", "Users", True): "Update user",
    ("DELETE", "Users", True): "Delete user",
    ("GET", "Users", False): "List users",
    ("GET", "Users", True): "Read user",
    ("POST", "Groups", False): "Create group",
    ("PUT", "Groups", True): "Replace group",
    ("PATCH", "Groups", True): "Update group",
    ("DELETE", "Groups", True): "Delete group",
    ("GET", "Groups", False): "List groups",
    ("GET", "Groups", True): "Read group",
}


def provider_of(directory: Directory) -> Provider:
    return _BY_TYPE.get(directory.type, PROVIDERS["generic"])


def _when(value: datetime) -> dict[str, str]:
    return {"iso": isoformat(value), "text": value.strftime("%Y-%m-%d %H:%M:%S UTC")}


def _request_view(req: ProvisioningRequest, base_path: str) -> dict[str, Any]:
    path = req.path
    if path.startswith(base_path):
        path = path[len(base_path) :] or "/"
    parts = [p for p in path.split("?")[0].split("/") if p]
    label = ""
    if parts and parts[0] in ("Users", "Groups"):
        label = _OPERATIONS.get((req.method, parts[0], len(parts) > 1), "")
    return {
        "when": _when(req.created_at),
        "method": req.method,
        "path": path,
        "label": label,
        "status": req.status,
        "ok": req.status < 400,
        "error": req.error or "",
    }


# -- the one-time reveal ---------------------------------------------------------------------


def _reveal_keys(code: str) -> tuple[str, bytes]:
    digest = hashlib.sha256(b"sso_gate.portal.reveal.id\x00" + code.encode()).hexdigest()
    key = hashlib.sha256(b"sso_gate.portal.reveal.key\x00" + code.encode()).digest()
    return "portal_reveal:" + digest, key


async def _stash(
    portal: Portal, session: PortalSession, directory_id: str, kind: str, token: str
) -> str:
    """Seal ``token`` for one later GET by this session; returns the code for the URL."""
    code = secrets.token_urlsafe(32)
    store_key, key = _reveal_keys(code)
    nonce = os.urandom(12)
    plain = json.dumps({"token": token, "kind": kind}).encode()
    sealed = AESGCM(key).encrypt(nonce, plain, f"{session.id}\x00{directory_id}".encode())
    await portal.gate.onetime.put(
        store_key, base64.urlsafe_b64encode(nonce + sealed).decode(), _REVEAL_TTL
    )
    return code


async def _reveal(
    portal: Portal, session: PortalSession, directory_id: str, code: str
) -> dict[str, str] | None:
    if not code or len(code) > 100:
        return None
    store_key, key = _reveal_keys(code)
    value = await portal.gate.onetime.take(store_key)
    if value is None:
        return None
    try:
        blob = base64.urlsafe_b64decode(value.encode())
        plain = AESGCM(key).decrypt(
            blob[:12], blob[12:], f"{session.id}\x00{directory_id}".encode()
        )
        data = json.loads(plain)
    except (InvalidTag, ValueError):
        return None
    return {"token": str(data["token"]), "kind": str(data["kind"])}


# -- routes ----------------------------------------------------------------------------------


def dsync_routes(portal: Portal) -> list[BaseRoute]:
    gate = portal.gate
    grace_hours = int(ROTATION_GRACE.total_seconds() // 3600)

    async def own_directory(session: PortalSession, directory_id: str) -> Directory:
        """The directory if it belongs to the session's organization; else a 404 page (the
        same answer for another organization's directory and a missing one)."""
        try:
            directory = await gate.directories.get(directory_id)
        except NotFoundError:
            directory = None
        if directory is None or directory.organization_id != session.organization_id:
            raise PortalPage(404, "Directory not found", "This directory does not exist.")
        return directory

    async def index(request: Request) -> Response:
        session = await portal.session(request, "dsync")
        page = await gate.directories.list(organization_id=session.organization_id, limit=100)
        directories = []
        for d in page.data:
            counts = await gate.directories.counts(d.id)
            directories.append({"directory": d, "provider": provider_of(d), "counts": counts})
        return portal.render(
            request,
            "dsync_index.html",
            session,
            title="Directory sync",
            directories=directories,
            providers=list(PROVIDERS.values()),
        )

    async def new_page(
        request: Request,
        session: PortalSession,
        provider_key: str,
        *,
        error: str = "",
        name: str = "",
        status: int = 200,
    ) -> Response:
        provider = PROVIDERS.get(provider_key)
        if provider is None:
            raise PortalPage(
                404,
                "Unknown provider",
                "Choose your identity provider from the list on the Directory sync page.",
            )
        return portal.render(
            request,
            "dsync_new.html",
            session,
            status=status,
            title=f"Connect {provider.label}",
            provider=provider,
            form_error=error,
            form_name=name,
        )

    async def new(request: Request) -> Response:
        session = await portal.session(request, "dsync")
        return await new_page(request, session, request.query_params.get("provider", ""))

    async def create(request: Request) -> Response:
        session = await portal.session(request, "dsync")
        data = await portal.form(request, session)
        key = data.get("provider", "")
        name = data.get("name", "").strip()
        provider = PROVIDERS.get(key)
        if provider is None or provider.type is None:
            message = (
                "Google Workspace cannot send users over SCIM; see the options below."
                if provider is not None
                else "Choose your identity provider."
            )
            if provider is None:
                key = "generic"
            return await new_page(request, session, key, error=message, name=name, status=422)
        try:
            directory, token = await gate.directories.create(
                session.organization_id,
                type=provider.type,
                name=name or f"{session.organization_name} {provider.label}"[:200],
            )
        except ValidationError as exc:
            message = (
                "The name must be 1 to 200 characters." if exc.field == "name" else exc.message
            )
            return await new_page(request, session, key, error=message, name=name, status=422)
        code = await _stash(portal, session, directory.id, "created", token)
        return portal.redirect(request, f"/dsync/{directory.id}?reveal={code}", session)

    async def show(request: Request) -> Response:
        session = await portal.session(request, "dsync")
        directory = await own_directory(session, request.path_params["directory_id"])
        revealed = None
        code = request.query_params.get("reveal", "")
        if code:
            revealed = await _reveal(portal, session, directory.id, code)
        base_url = gate.directories.scim_base_url(directory.id)
        base_path = gate.settings.prefix + f"/scim/v2/{directory.id}"
        requests = await gate.directories.recent_requests(directory.id, limit=_RECENT)
        return portal.render(
            request,
            "dsync_directory.html",
            session,
            title=directory.name,
            directory=directory,
            provider=provider_of(directory),
            base_url=base_url,
            counts=await gate.directories.counts(directory.id),
            requests=[_request_view(r, base_path) for r in requests],
            recent_limit=_RECENT,
            revealed=revealed,
            reveal_expired=bool(code) and revealed is None,
            grace_hours=grace_hours,
        )

    async def rotate(request: Request) -> Response:
        session = await portal.session(request, "dsync")
        await portal.form(request, session)
        directory = await own_directory(session, request.path_params["directory_id"])
        try:
            token = await gate.directories.rotate_token(directory.id)
        except SSOGateError as exc:
            raise PortalPage(exc.http_status, "The token was not rotated", exc.message) from None
        code = await _stash(portal, session, directory.id, "rotated", token)
        return portal.redirect(request, f"/dsync/{directory.id}?reveal={code}", session)

    return [
        Route("/dsync", guarded(portal, index), methods=["GET"]),
        Route("/dsync", guarded(portal, create), methods=["POST"]),
        Route("/dsync/new", guarded(portal, new), methods=["GET"]),
        Route("/dsync/{directory_id}", guarded(portal, show), methods=["GET"]),
        Route("/dsync/{directory_id}/rotate", guarded(portal, rotate), methods=["POST"]),
    ]
