"""Single sign-on pages of the admin portal (intent ``sso``).

* ``GET /sso`` — the organization's connections and the provider choice (Okta, Entra ID, …,
  each with the protocols it offers).
* ``POST /sso/new`` — creates a **draft** connection, so that its ACS URL, SP entity ID, SP
  metadata URL or OIDC redirect URI (which contain the connection id) exist before the admin
  configures the IdP; then ``GET /sso/{id}`` shows the provider's numbered steps with those
  values and copy buttons, and the form for the IdP's side.
* ``POST /sso/{id}/metadata`` (SAML: metadata URL, file upload or pasted XML) and
  ``POST /sso/{id}/oidc`` (issuer, client id, secret — checked against the discovery document
  first; the secret is never shown again) — errors in plain language, the technical message
  underneath.
* ``GET /sso/{id}/test?t=…`` — a test sign-in (see ``_sso_test.py``); its result at
  ``GET /sso/test/{test_id}``.
* ``POST /sso/{id}/activate|deactivate|delete``; certificate renewal: ``POST /sso/{id}/certificate``
  (a new PEM, kept beside the current ones) and ``POST /sso/{id}/refresh`` (metadata URL).

Every change goes through ``gate.connections``, which records the events and audit entries;
the portal session is the audit actor (set by ``Portal.session``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sso_gate.exceptions import NotFoundError, SSOGateError, ValidationError
from sso_gate.models import Connection
from sso_gate.saml.metadata import load_certificate
from sso_gate.services.portal import PortalSession
from sso_gate.web.portal._base import Portal, PortalPage, guarded
from sso_gate.web.portal._guides import NAME_ID_EMAIL, PROVIDERS, Guide, provider_of
from sso_gate.web.portal._sso_errors import explain
from sso_gate.web.portal._sso_test import load_test, new_test_link, start_test

__all__ = ["sso_routes"]

_MAX_UPLOAD = 2 * 1024 * 1024  # as sso_gate.services._saml_setup.MAX_METADATA_BYTES
_MAX_BODY = _MAX_UPLOAD + 64 * 1024
_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
_PROTOCOL_LABEL = {"saml": "SAML", "oidc": "OpenID Connect"}


def _guide(connection: Connection) -> tuple[str, Guide | None]:
    """The provider's display name and guide of a connection."""
    found = provider_of(connection.connection_type)
    if found is None:
        return connection.connection_type, None
    provider, protocol = found
    guide: Guide = getattr(provider, protocol)
    return provider.name, guide


def _values(portal: Portal, connection: Connection) -> dict[str, str]:
    """The values the IdP administrator enters (the ``$name`` of the guides)."""
    gate = portal.gate
    if connection.saml is not None:
        urls = gate.connections.saml_urls(connection.id)
        settings = {
            "audience": connection.saml.sp_entity_id,
            "nameIdentifierFormat": NAME_ID_EMAIL,
            "nameIdentifierProbes": [_CLAIMS + "emailaddress"],
        }
        return {
            "acs_url": urls["acs_url"],
            "sp_entity_id": connection.saml.sp_entity_id,
            "sp_metadata_url": urls["sp_metadata_url"],
            "acs_url_regex": "^" + re.escape(urls["acs_url"]) + "$",
            "auth0_settings": json.dumps(settings, indent=2),
        }
    assert connection.oidc is not None
    return {
        "redirect_uri": gate.connections.redirect_uri(connection.id),
        "scopes": " ".join(connection.oidc.scopes),
    }


def _steps(guide: Guide, values: dict[str, str], product: str) -> list[dict[str, Any]]:
    def text(value: str) -> str:
        return value.replace("{product}", product)

    steps = []
    for n, step in enumerate(guide.steps, 1):
        fields = [
            {
                "id": f"v{n}-{i}",
                "label": f.label,
                "value": values[f.value[1:]] if f.value.startswith("$") else text(f.value),
                "multiline": f.value == "$auth0_settings",
            }
            for i, f in enumerate(step.fields, 1)
        ]
        attributes = [
            {"id": f"a{n}-{i}", "field": field, "name": name, "source": source}
            for i, (field, name, source) in enumerate(step.attributes, 1)
        ]
        steps.append(
            {"text": text(step.text), "fields": fields, "attributes": attributes, "note": step.note}
        )
    return steps


def _certificates(connection: Connection, now: datetime) -> list[dict[str, Any]]:
    out = []
    assert connection.saml is not None
    for pem in connection.saml.idp_certificates:
        cert = load_certificate(pem)
        expires = cert.not_valid_after_utc
        days = (expires - now).days
        out.append(
            {
                "subject": cert.subject.rfc4514_string() or "(no subject)",
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "expires": expires,
                "days": days,
                "state": "expired" if expires <= now else "expiring" if days <= 30 else "valid",
            }
        )
    return out


def _has_idp(connection: Connection) -> bool:
    if connection.saml is not None:
        return bool(connection.saml.idp_certificates)
    return connection.oidc is not None and bool(connection.oidc.issuer)


def sso_routes(portal: Portal) -> list[BaseRoute]:
    gate = portal.gate

    async def own_connection(session: PortalSession, connection_id: str) -> Connection:
        """The connection if it belongs to the session's organization; else a 404 page (the
        same page whether it exists elsewhere or not at all)."""
        try:
            connection = await gate.connections.get(connection_id)
        except NotFoundError:
            connection = None
        if connection is None or connection.organization_id != session.organization_id:
            raise PortalPage(404, "Connection not found", "There is no such connection here.")
        return connection

    async def form(
        request: Request, session: PortalSession
    ) -> tuple[dict[str, str], dict[str, bytes]]:
        """The form fields after the CSRF check, and the uploaded files' contents (at most
        2 MiB + 1 byte each); oversize or broken bodies are a plain 413 page."""
        if int(request.headers.get("content-length") or 0) > _MAX_BODY:
            raise PortalPage(413, "Too large", "The file is too large to be SAML metadata.")
        try:
            raw = await request.form()
        except (MultiPartException, HTTPException):
            raise PortalPage(
                413, "Too large", "The form could not be read: a value is too large."
            ) from None
        try:
            data = await portal.form(request, session)
            files = {
                name: await value.read(_MAX_UPLOAD + 1)
                for name, value in raw.multi_items()
                if isinstance(value, UploadFile) and value.filename
            }
        finally:
            await raw.close()
        return data, files

    # -- overview and provider choice ----------------------------------------------------------

    async def index(request: Request) -> Response:
        session = await portal.session(request, "sso")
        page = await gate.connections.list(organization_id=session.organization_id, limit=100)
        connections = [
            {"connection": c, "provider": _guide(c)[0], "protocol": _PROTOCOL_LABEL[c.protocol]}
            for c in page.data
        ]
        return portal.render(
            request,
            "sso.html",
            session,
            title="Single sign-on",
            connections=connections,
            providers=list(PROVIDERS.values()),
            protocol_label=_PROTOCOL_LABEL,
        )

    async def create(request: Request) -> Response:
        session = await portal.session(request, "sso")
        data, _ = await form(request, session)
        key, _, protocol = data.get("setup", "").partition(":")
        provider = PROVIDERS.get(key)
        guide: Guide | None = getattr(provider, protocol, None) if provider else None
        if provider is None or guide is None or protocol not in ("saml", "oidc"):
            raise PortalPage(422, "Choose a provider", "Choose one of the listed providers.")
        name = f"{provider.name} ({_PROTOCOL_LABEL[protocol]})"
        if protocol == "saml":
            connection = await gate.connections.create_saml(
                session.organization_id,
                connection_type=guide.connection_type,
                name=name,
                state="draft",
            )
        else:
            connection = await gate.connections.create_oidc(
                session.organization_id,
                issuer="",
                client_id="",
                client_secret="",
                connection_type=guide.connection_type,
                name=name,
                state="draft",
            )
        return portal.redirect(request, f"/sso/{connection.id}", session)

    # -- one connection ------------------------------------------------------------------------

    async def render_connection(
        request: Request,
        session: PortalSession,
        connection: Connection,
        *,
        error: dict[str, str] | None = None,
        form_values: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        provider_name, guide = _guide(connection)
        values = _values(portal, connection)
        complete = _has_idp(connection)
        test_token = await new_test_link(gate, session, connection.id) if complete else ""
        now = datetime.now(UTC)
        return portal.render(
            request,
            "sso_connection.html",
            session,
            status=status,
            title=f"{provider_name} single sign-on",
            connection=connection,
            provider_name=provider_name,
            protocol_label=_PROTOCOL_LABEL[connection.protocol],
            guide=guide,
            steps=_steps(guide, values, portal.settings.portal_product_name) if guide else [],
            values=values,
            complete=complete,
            test_url=f"{portal.base}/sso/{connection.id}/test?t={test_token}" if complete else "",
            certificates=_certificates(connection, now) if connection.saml else [],
            secret_saved=bool(connection.oidc and connection.oidc.client_secret.reveal()),
            error=error,
            form_values=form_values or {},
        )

    async def show(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        return await render_connection(request, session, connection)

    async def failed(
        request: Request,
        session: PortalSession,
        connection: Connection,
        where: str,
        exc: SSOGateError,
        form_values: dict[str, str] | None = None,
    ) -> Response:
        explanation = explain(exc, _guide(connection)[0]).to_dict()
        return await render_connection(
            request,
            session,
            connection,
            error={**explanation, "form": where},
            form_values=form_values,
            status=422,
        )

    async def metadata(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        data, files = await form(request, session)
        if connection.saml is None:
            raise PortalPage(404, "Connection not found", "This is not a SAML connection.")
        source = data.get("source", "")
        kwargs: dict[str, str] = {}
        try:
            if source == "url":
                kwargs["metadata_url"] = data.get("metadata_url", "").strip()
                if not kwargs["metadata_url"]:
                    raise ValidationError(
                        "enter the metadata URL", field="metadata_url", code="empty"
                    )
            elif source == "xml":
                kwargs["metadata_xml"] = data.get("metadata_xml", "").strip()
                if not kwargs["metadata_xml"]:
                    raise ValidationError(
                        "paste the metadata XML", field="metadata_xml", code="empty"
                    )
            elif source == "file":
                kwargs["metadata_xml"] = _uploaded(files, "metadata_file")
            else:
                raise ValidationError("choose how to give the metadata", code="empty")
            await gate.connections.update_saml_idp(connection.id, **kwargs)
        except SSOGateError as exc:
            shown = {"metadata_url": kwargs.get("metadata_url", "")}
            return await failed(request, session, connection, f"metadata-{source}", exc, shown)
        return portal.redirect(
            request, f"/sso/{connection.id}", session, done="Identity provider saved"
        )

    async def oidc(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        data, _ = await form(request, session)
        if connection.oidc is None:
            raise PortalPage(404, "Connection not found", "This is not an OIDC connection.")
        issuer = data.get("issuer", "").strip()
        client_id = data.get("client_id", "").strip()
        secret = data.get("client_secret", "").strip() or None
        shown = {"issuer": issuer, "client_id": client_id}
        try:
            parts = urlsplit(issuer)
            if parts.scheme in ("http", "https") and parts.netloc:
                # Check the discovery document before saving anything.
                candidate = dataclasses.replace(
                    connection,
                    oidc=dataclasses.replace(connection.oidc, issuer=issuer, client_id=client_id),
                )
                await gate.sso.metadata(candidate)
            await gate.connections.update_oidc(
                connection.id, issuer=issuer, client_id=client_id, client_secret=secret
            )
        except SSOGateError as exc:
            return await failed(request, session, connection, "oidc", exc, shown)
        return portal.redirect(
            request, f"/sso/{connection.id}", session, done="Identity provider saved"
        )

    async def certificate(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        data, files = await form(request, session)
        saml = connection.saml
        if saml is None or not saml.idp_certificates:
            raise PortalPage(404, "Connection not found", "This connection has no certificates.")
        try:
            pem = data.get("certificate", "").strip()
            if not pem:
                pem = _uploaded(files, "certificate_file", "certificates")
            now = datetime.now(UTC)
            keep = [
                p for p in saml.idp_certificates if load_certificate(p).not_valid_after_utc > now
            ]
            await gate.connections.update_saml_idp(
                connection.id,
                idp_entity_id=saml.idp_entity_id,
                sso_url=saml.sso_url,
                certificates=[pem, *keep],
            )
        except SSOGateError as exc:
            return await failed(request, session, connection, "certificate", exc)
        return portal.redirect(request, f"/sso/{connection.id}", session, done="Certificate added")

    async def refresh(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        await form(request, session)
        try:
            await gate.connections.refresh_saml_metadata(connection.id)
        except SSOGateError as exc:
            return await failed(request, session, connection, "refresh", exc)
        return portal.redirect(request, f"/sso/{connection.id}", session, done="Metadata refreshed")

    async def set_state(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        await form(request, session)
        activate = request.url.path.endswith("/activate")
        try:
            if activate:
                await gate.connections.activate(connection.id)
            else:
                await gate.connections.deactivate(connection.id)
        except SSOGateError as exc:
            return await failed(request, session, connection, "state", exc)
        done = "Connection activated" if activate else "Connection deactivated"
        return portal.redirect(request, f"/sso/{connection.id}", session, done=done)

    async def delete(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        await form(request, session)
        if connection.state == "active":
            raise PortalPage(
                409, "Deactivate first", "Deactivate the connection before deleting it."
            )
        await gate.connections.delete(connection.id)
        return portal.redirect(request, "/sso", session, done="Connection deleted")

    # -- test sign-in --------------------------------------------------------------------------

    async def test(request: Request) -> Response:
        session = await portal.session(request, "sso")
        connection = await own_connection(session, request.path_params["connection_id"])
        if not _has_idp(connection):
            raise PortalPage(409, "Not ready", "Give the identity provider's details first.")
        token = request.query_params.get("t", "")
        response = await start_test(gate, request.scope, session, connection, token)
        if response is None:
            raise PortalPage(
                410,
                "This test link was already used or has expired",
                "Go back to the connection page and click the test link again.",
            )
        return response

    async def test_result(request: Request) -> Response:
        session = await portal.session(request, "sso")
        record = await load_test(gate, request.path_params["test_id"], session)
        if record is None:
            raise PortalPage(404, "Test not found", "This test result is unknown or has expired.")
        connection = await own_connection(session, record["connection_id"])
        provider_name = _guide(connection)[0]
        error = record.get("error")
        explanation = None
        if error:
            exc = ValidationError(error["message"], field=error.get("field"), code=error["code"])
            explanation = explain(exc, provider_name).to_dict()
        token = await new_test_link(gate, session, connection.id)
        return portal.render(
            request,
            "sso_test.html",
            session,
            title="Test sign-in result",
            record=record,
            connection=connection,
            provider_name=provider_name,
            explanation=explanation,
            profile=record.get("profile"),
            checks=record.get("checks") or [],
            trace=record.get("trace"),
            test_url=f"{portal.base}/sso/{connection.id}/test?t={token}",
        )

    return [
        Route("/sso", guarded(portal, index), methods=["GET"]),
        Route("/sso/new", guarded(portal, create), methods=["POST"]),
        Route("/sso/test/{test_id}", guarded(portal, test_result), methods=["GET"]),
        Route("/sso/{connection_id}", guarded(portal, show), methods=["GET"]),
        Route("/sso/{connection_id}/test", guarded(portal, test), methods=["GET"]),
        Route("/sso/{connection_id}/metadata", guarded(portal, metadata), methods=["POST"]),
        Route("/sso/{connection_id}/oidc", guarded(portal, oidc), methods=["POST"]),
        Route("/sso/{connection_id}/certificate", guarded(portal, certificate), methods=["POST"]),
        Route("/sso/{connection_id}/refresh", guarded(portal, refresh), methods=["POST"]),
        Route("/sso/{connection_id}/activate", guarded(portal, set_state), methods=["POST"]),
        Route("/sso/{connection_id}/deactivate", guarded(portal, set_state), methods=["POST"]),
        Route("/sso/{connection_id}/delete", guarded(portal, delete), methods=["POST"]),
    ]


def _uploaded(files: dict[str, bytes], name: str, field: str = "metadata_xml") -> str:
    """An uploaded file's text (at most 2 MiB of UTF-8)."""
    data = files.get(name, b"")
    if not data.strip():
        raise ValidationError("choose a file to upload", field=field, code="empty")
    if len(data) > _MAX_UPLOAD:
        raise ValidationError("the file is larger than 2 MiB", field=field, code="too_large")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        code = "malformed_xml" if field == "metadata_xml" else "certificate_invalid"
        raise ValidationError("the file is not text (UTF-8)", field=field, code=code) from None
