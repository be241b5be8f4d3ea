"""SSO connections of an organization: OIDC and SAML."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate._nul import refuse_nul
from sso_gate._time import isoformat
from sso_gate._urls import safe_return_to
from sso_gate.exceptions import NotFoundError, SSOGateError, ValidationError
from sso_gate.models import (
    CONNECTION_STATES,
    OIDC_CONNECTION_TYPES,
    SAML_CONNECTION_TYPES,
    Connection,
    ConnectionState,
    ListPage,
)
from sso_gate.oidc.tokens import ASYMMETRIC_ALGORITHMS
from sso_gate.saml.attributes import FIELDS
from sso_gate.saml.metadata import IdPMetadata
from sso_gate.services._connection_rows import connection_from_row, has_idp
from sso_gate.services._runtime import Runtime
from sso_gate.services._saml_setup import expiring, generate_sp_keypair, resolve_idp
from sso_gate.services.events import EventsService
from sso_gate.services.routing import RoutingService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import connections, organizations

__all__ = ["ConnectionsService"]

_STATE_EVENTS = {"active": "connection.activated", "inactive": "connection.deactivated"}


async def _row(conn: AsyncConnection, connection_id: str) -> repo.Row:
    row = await repo.get_by_id(conn, connections, connection_id)
    if row is None:
        raise NotFoundError(f"connection {connection_id!r} not found", code="connection_not_found")
    return row


def _idp_config(idp: IdPMetadata, binding: str) -> dict[str, Any]:
    sso_url = idp.sso_post_url if binding == "post" else idp.sso_redirect_url
    return {
        "idp_entity_id": idp.entity_id,
        "sso_url": sso_url or idp.sso_redirect_url or idp.sso_post_url,
        "slo_url": idp.slo_redirect_url,
        "idp_certificates": list(idp.signing_certificates),
    }


def _renewal_events(
    connection: Connection, renewals: list[tuple[str, datetime]]
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "connection.saml_certificate_renewal_required",
            {
                "connection": {"id": connection.id, "organization_id": connection.organization_id},
                "certificate": {"sha256_fingerprint": fp, "expiry_date": isoformat(not_after)},
                "days_until_expiry": max(0, (not_after - datetime.now(UTC)).days),
            },
        )
        for fp, not_after in renewals
    ]


class ConnectionsService:
    """``gate.connections``: create, read, activate, deactivate, delete SSO connections."""

    def __init__(self, rt: Runtime, events: EventsService, routing: RoutingService) -> None:
        self._rt = rt
        self._events = events
        self._routing = routing
        self._cache: TTLCache[str, Connection] = TTLCache(maxsize=10_000, ttl=30)

    def redirect_uri(self, connection_id: str) -> str:
        return self._rt.settings.gate_url(f"/sso/oidc/{connection_id}/callback")

    def saml_urls(self, connection_id: str) -> dict[str, str]:
        """This connection's SP URLs: ACS, SP metadata (also the default SP entity ID), SLO."""
        base = f"/sso/saml/{connection_id}"
        return {
            "acs_url": self._rt.settings.gate_url(base + "/acs"),
            "sp_metadata_url": self._rt.settings.gate_url(base + "/metadata"),
            "slo_url": self._rt.settings.gate_url(base + "/slo"),
        }

    def public_dict(self, connection: Connection) -> dict[str, Any]:
        """The API object: secrets left out, the URLs to give the IdP administrator added."""
        if connection.saml is not None:
            return connection.to_dict(saml_urls=self.saml_urls(connection.id))
        return connection.to_dict(self.redirect_uri(connection.id))

    # -- row mapping ---------------------------------------------------------------------------

    def _from_row(self, row: repo.Row) -> Connection:
        return connection_from_row(row, self._rt.box)

    # -- validation ----------------------------------------------------------------------------

    def _check_issuer(self, issuer: object) -> str:
        if not isinstance(issuer, str) or not issuer:
            raise ValidationError("issuer is required", field="issuer")
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValidationError(f"issuer {issuer!r} is not an absolute URL", field="issuer")
        if parts.scheme == "http" and not self._rt.settings.http_idp_allowed:
            raise ValidationError(
                "issuer must use https (http is allowed only with SSO_GATE_ENVIRONMENT=development "
                "or SSO_GATE_ALLOW_HTTP_IDP=true)",
                field="issuer",
            )
        if parts.query or parts.fragment:
            raise ValidationError("issuer must not have a query or fragment", field="issuer")
        return issuer

    def _check_provider(self, issuer: str, client_id: str, client_secret: str) -> None:
        self._check_issuer(issuer)
        for field, value in (("client_id", client_id), ("client_secret", client_secret)):
            if not isinstance(value, str) or not value or len(value) > 2000:
                raise ValidationError(f"{field} is required", field=field)

    # -- API -----------------------------------------------------------------------------------

    async def create_oidc(
        self,
        organization_id: str,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        name: str | None = None,
        connection_type: str = "GenericOIDC",
        scopes: Sequence[str] = ("openid", "email", "profile"),
        token_endpoint_auth_method: str = "client_secret_basic",
        allowed_algorithms: Sequence[str] = ("RS256",),
        use_userinfo: bool = False,
        additional_trusted_audiences: Sequence[str] = (),
        require_email_domain_match: bool = True,
        state: ConnectionState = "active",
    ) -> Connection:
        """Create an OIDC connection. The client secret is encrypted at rest.

        A ``draft`` may leave issuer, client id and secret empty: its redirect URI exists at
        once (for the IdP administrator); :meth:`update_oidc` fills the provider in later."""
        refuse_nul(
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
            name=name,
            scopes=scopes,
            additional_trusted_audiences=additional_trusted_audiences,
        )
        if not (state == "draft" and not (issuer or client_id or client_secret)):
            self._check_provider(issuer, client_id, client_secret)
        if connection_type not in OIDC_CONNECTION_TYPES:
            raise ValidationError(
                f"connection_type must be one of {', '.join(OIDC_CONNECTION_TYPES)}",
                field="connection_type",
            )
        if token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ValidationError(
                "token_endpoint_auth_method must be client_secret_basic or client_secret_post",
                field="token_endpoint_auth_method",
            )
        algs = tuple(allowed_algorithms)
        bad = [a for a in algs if a not in ASYMMETRIC_ALGORITHMS]
        if not algs or bad:
            raise ValidationError(
                f"allowed_algorithms must be asymmetric JWS algorithms; refused: {bad or 'empty'}",
                field="allowed_algorithms",
            )
        scope_list = tuple(scopes)
        if "openid" not in scope_list:
            raise ValidationError("scopes must include 'openid'", field="scopes")
        if state not in CONNECTION_STATES:
            raise ValidationError(f"state must be one of {CONNECTION_STATES}", field="state")
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise ValidationError("name must be a string of at most 200 characters", field="name")
        conn_id = new_id("conn")
        config = {
            "oidc": {
                "issuer": issuer,
                "client_id": client_id,
                "scopes": list(scope_list),
                "token_endpoint_auth_method": token_endpoint_auth_method,
                "allowed_algorithms": list(algs),
                "use_userinfo": bool(use_userinfo),
                "additional_trusted_audiences": list(additional_trusted_audiences),
                "require_email_domain_match": bool(require_email_domain_match),
            }
        }
        return await self._insert(
            conn_id,
            organization_id,
            connection_type,
            name or f"{connection_type} {urlsplit(issuer).netloc}".strip(),
            state,
            config,
            client_secret,
        )

    async def _insert(
        self,
        conn_id: str,
        organization_id: str,
        connection_type: str,
        name: str,
        state: ConnectionState,
        config: dict[str, Any],
        secret: str,
        extra_events: Callable[[Connection], list[tuple[str, dict[str, Any]]]] | None = None,
    ) -> Connection:
        """Insert a connection and its events in one transaction (secret encrypted at rest)."""
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            if await repo.get_by_id(conn, organizations, organization_id) is None:
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            await repo.insert(
                conn,
                connections,
                {
                    "id": conn_id,
                    "organization_id": organization_id,
                    "connection_type": connection_type,
                    "name": name,
                    "state": state,
                    "config": config,
                    "secret_ciphertext": self._rt.box.encrypt(secret, associated=conn_id),
                    "created_at": now,
                    "updated_at": now,
                },
            )
            created = self._from_row(await _row(conn, conn_id))
            names = ["connection.created"] + (["connection.activated"] if state == "active" else [])
            evs = [
                await self._events.record(conn, n, created.to_dict(), organization_id)
                for n in names
            ]
            for event, data in extra_events(created) if extra_events else []:
                evs.append(await self._events.record(conn, event, data, organization_id))
        self._routing.invalidate()
        await self._events.dispatch(evs)
        return created

    # -- SAML ----------------------------------------------------------------------------------

    async def create_saml(
        self,
        organization_id: str,
        *,
        metadata_xml: str | None = None,
        metadata_url: str | None = None,
        idp_entity_id: str | None = None,
        sso_url: str | None = None,
        certificates: Sequence[str] = (),
        name: str | None = None,
        connection_type: str = "GenericSAML",
        sso_binding: str = "redirect",
        sign_requests: bool = False,
        encrypt_assertions: bool = False,
        allow_idp_initiated: bool = False,
        idp_initiated_landing: str = "/",
        attribute_overrides: Mapping[str, str] | None = None,
        custom_attributes: Mapping[str, str] | None = None,
        allow_sha1: bool = False,
        require_email_domain_match: bool = True,
        state: ConnectionState = "active",
    ) -> Connection:
        """Create a SAML connection from IdP metadata (XML or URL) or from fields.

        The connection gets its own SP (entity ID = its SP metadata URL, ACS URL) and a freshly
        generated key pair (private key encrypted at rest) for signed AuthnRequests and
        encrypted assertions.
        """
        refuse_nul(  # the IdP's fields: resolve_idp
            name=name,
            idp_initiated_landing=idp_initiated_landing,
            attribute_overrides=attribute_overrides,
            custom_attributes=custom_attributes,
        )
        if connection_type not in SAML_CONNECTION_TYPES:
            raise ValidationError(
                f"connection_type must be one of {', '.join(SAML_CONNECTION_TYPES)}",
                field="connection_type",
            )
        if sso_binding not in ("redirect", "post"):
            raise ValidationError("sso_binding must be 'redirect' or 'post'", field="sso_binding")
        if state not in CONNECTION_STATES:
            raise ValidationError(f"state must be one of {CONNECTION_STATES}", field="state")
        try:
            landing = safe_return_to(idp_initiated_landing, self._rt.settings.base_url)
        except SSOGateError:
            raise ValidationError(
                "idp_initiated_landing must be a path on this site", field="idp_initiated_landing"
            ) from None
        for label, mapping in (
            ("attribute_overrides", attribute_overrides),
            ("custom_attributes", custom_attributes),
        ):
            if mapping is not None and not all(
                isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
            ):
                raise ValidationError(f"{label} must map names to attribute names", field=label)
        bad = set(attribute_overrides or {}) - set(FIELDS)
        if bad:
            raise ValidationError(
                f"attribute_overrides keys must be among {', '.join(FIELDS)}; got {sorted(bad)}",
                field="attribute_overrides",
            )
        if state == "draft" and not (metadata_xml or metadata_url or sso_url):
            # A draft's SP URLs exist before its IdP does (see update_saml_idp).
            idp = IdPMetadata("", "", "", None, (), False, ())
        else:
            idp = await resolve_idp(
                self._rt,
                metadata_xml=metadata_xml,
                metadata_url=metadata_url,
                idp_entity_id=idp_entity_id,
                sso_url=sso_url,
                certificates=certificates,
            )
        conn_id = new_id("conn")
        urls = self.saml_urls(conn_id)
        now = self._rt.clock()
        key_pem, cert_pem = generate_sp_keypair(f"sso_gate {conn_id}", now)
        config = {
            "saml": {
                **_idp_config(idp, sso_binding),
                "metadata_url": metadata_url,
                "metadata_refreshed_at": isoformat(now) if metadata_url else None,
                "sp_entity_id": urls["sp_metadata_url"],
                "sp_certificate": cert_pem,
                "sso_binding": sso_binding,
                "sign_requests": bool(sign_requests or idp.want_authn_requests_signed),
                "encrypt_assertions": bool(encrypt_assertions),
                "allow_idp_initiated": bool(allow_idp_initiated),
                "idp_initiated_landing": landing,
                "attribute_preset": SAML_CONNECTION_TYPES[connection_type],
                "attribute_overrides": dict(attribute_overrides or {}),
                "custom_attributes": dict(custom_attributes or {}),
                "allow_sha1": bool(allow_sha1),
                "require_email_domain_match": bool(require_email_domain_match),
                "notified_certificates": [],
            }
        }
        renewals = expiring(idp.signing_certificates, now)
        config["saml"]["notified_certificates"] = [fp for fp, _ in renewals]
        return await self._insert(
            conn_id,
            organization_id,
            connection_type,
            name
            or f"{connection_type} {urlsplit(idp.entity_id).netloc or idp.entity_id}"[:200].strip(),
            state,
            config,
            key_pem,
            extra_events=lambda c: _renewal_events(c, renewals),
        )

    async def update_saml_idp(
        self,
        connection_id: str,
        *,
        metadata_xml: str | None = None,
        metadata_url: str | None = None,
        idp_entity_id: str | None = None,
        sso_url: str | None = None,
        certificates: Sequence[str] = (),
    ) -> Connection:
        """Replace the IdP side (new metadata or certificates, e.g. for certificate renewal)."""
        current = await self.get(connection_id)
        if current.saml is None:
            raise ValidationError("not a SAML connection", field="connection_id")
        idp = await resolve_idp(
            self._rt,
            metadata_xml=metadata_xml,
            metadata_url=metadata_url,
            idp_entity_id=idp_entity_id,
            sso_url=sso_url,
            certificates=certificates,
        )
        return await self._store_idp(current, idp, metadata_url)

    async def update_oidc(
        self,
        connection_id: str,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None = None,
    ) -> Connection:
        """Set an OIDC connection's provider (e.g. a draft's); ``client_secret=None`` keeps the
        stored secret (which is never shown again)."""
        refuse_nul(issuer=issuer, client_id=client_id, client_secret=client_secret)
        current = await self.get(connection_id)
        if current.oidc is None:
            raise ValidationError("not an OIDC connection", field="connection_id")
        secret = current.oidc.client_secret.reveal() if client_secret is None else client_secret
        self._check_provider(issuer, client_id, secret)
        async with self._rt.transaction() as conn:
            row = await _row(conn, connection_id)
            cfg = dict(row["config"])
            cfg["oidc"] = {**cfg["oidc"], "issuer": issuer, "client_id": client_id}
            values = {"config": cfg, "updated_at": self._rt.clock()}
            values["secret_ciphertext"] = self._rt.box.encrypt(secret, associated=connection_id)
            await repo.update_by_id(conn, connections, connection_id, values)
            updated = self._from_row(await _row(conn, connection_id))
            ev = await self._events.record(
                conn, "connection.updated", updated.to_dict(), updated.organization_id
            )
        self._cache.pop(connection_id, None)
        await self._events.dispatch([ev])
        return updated

    async def refresh_saml_metadata(self, connection_id: str) -> Connection:
        """Fetch the connection's metadata URL again (scheduled, or after a signature failure)."""
        current = await self.get(connection_id)
        if current.saml is None or not current.saml.metadata_url:
            raise ValidationError("this connection has no metadata URL", field="metadata_url")
        idp = await resolve_idp(
            self._rt,
            metadata_xml=None,
            metadata_url=current.saml.metadata_url,
            idp_entity_id=current.saml.idp_entity_id,
            sso_url=None,
            certificates=(),
        )
        if idp.entity_id != current.saml.idp_entity_id:
            raise ValidationError(
                f"the refreshed metadata names another IdP ({idp.entity_id})", field="metadata_url"
            )
        return await self._store_idp(current, idp, current.saml.metadata_url)

    async def check_saml_certificates(self, connection_id: str | None = None) -> int:
        """Report IdP certificates entering the 30-day renewal window that were not reported yet
        (event ``connection.saml_certificate_renewal_required``). Run daily (``sso-gate
        connection check-certificates``); sign-ins also run it for their connection hourly.
        Returns the number of events written."""
        now = self._rt.clock()
        ids = [connection_id] if connection_id else await self._saml_ids()
        written = 0
        for cid in ids:
            async with self._rt.transaction() as conn:
                row = await _row(conn, cid)
                cfg = dict(row["config"])
                saml = dict(cfg.get("saml") or {})
                if not saml:
                    continue
                known = set(saml.get("notified_certificates") or [])
                fresh = [r for r in expiring(saml["idp_certificates"], now) if r[0] not in known]
                if not fresh:
                    continue
                saml["notified_certificates"] = sorted(known | {fp for fp, _ in fresh})
                cfg["saml"] = saml
                await repo.update_by_id(conn, connections, cid, {"config": cfg})
                current = self._from_row(await _row(conn, cid))
                evs = [
                    await self._events.record(conn, event, data, current.organization_id)
                    for event, data in _renewal_events(current, fresh)
                ]
            written += len(evs)
            self._cache.pop(cid, None)
            await self._events.dispatch(evs)
        return written

    async def _saml_ids(self) -> list[str]:
        async with self._rt.read() as conn:
            rows = await conn.execute(sa.select(connections.c.id, connections.c.config))
            return [r[0] for r in rows.all() if "saml" in (r[1] or {})]

    async def _store_idp(
        self, current: Connection, idp: IdPMetadata, metadata_url: str | None
    ) -> Connection:
        assert current.saml is not None
        now = self._rt.clock()
        renewals = [
            r
            for r in expiring(idp.signing_certificates, now)
            if r[0] not in current.saml.notified_certificates
        ]
        async with self._rt.transaction() as conn:
            row = await _row(conn, current.id)
            cfg = dict(row["config"])
            saml = dict(cfg["saml"])
            saml.update(_idp_config(idp, saml.get("sso_binding", "redirect")))
            saml["metadata_url"] = metadata_url
            saml["metadata_refreshed_at"] = isoformat(now) if metadata_url else None
            saml["notified_certificates"] = list(current.saml.notified_certificates) + [
                fp for fp, _ in renewals
            ]
            cfg["saml"] = saml
            await repo.update_by_id(
                conn, connections, current.id, {"config": cfg, "updated_at": now}
            )
            updated = self._from_row(await _row(conn, current.id))
            evs = [
                await self._events.record(
                    conn, "connection.updated", updated.to_dict(), updated.organization_id
                )
            ]
            for event, data in _renewal_events(updated, renewals):
                evs.append(await self._events.record(conn, event, data, updated.organization_id))
        self._cache.pop(current.id, None)
        await self._events.dispatch(evs)
        return updated

    async def get(self, connection_id: str) -> Connection:
        async with self._rt.read() as conn:
            row = await _row(conn, connection_id)
        return self._from_row(row)

    async def get_cached(self, connection_id: str) -> Connection:
        """Hot-path read for the SSO flow (30 s TTL; local changes invalidate)."""
        cached = self._cache.get(connection_id)
        if cached is None:
            cached = await self.get(connection_id)
            self._cache[connection_id] = cached
        return cached

    async def list(
        self,
        *,
        organization_id: str | None = None,
        connection_type: str | None = None,
        state: str | None = None,
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
        order: repo.Order = "desc",
    ) -> ListPage:
        where: list[sa.ColumnElement[bool]] = []
        if organization_id is not None:
            where.append(connections.c.organization_id == organization_id)
        if connection_type is not None:
            where.append(connections.c.connection_type == connection_type)
        if state is not None:
            where.append(connections.c.state == state)
        async with self._rt.read() as conn:
            rows, b, a = await repo.paginate(
                conn, connections, where, limit=limit, before=before, after=after, order=order
            )
        return ListPage(tuple(self._from_row(r) for r in rows), b, a)

    async def set_state(self, connection_id: str, state: ConnectionState) -> Connection:
        if state not in ("active", "inactive"):
            raise ValidationError("state must be 'active' or 'inactive'", field="state")
        async with self._rt.transaction() as conn:
            row = await _row(conn, connection_id)
            if state == "active" and not has_idp(self._from_row(row)):
                raise ValidationError(
                    "this connection has no identity provider yet (a draft): give its metadata "
                    "or issuer first",
                    field="state",
                    code="connection_incomplete",
                )
            evs = []
            if row["state"] != state:
                await repo.update_by_id(
                    conn,
                    connections,
                    connection_id,
                    {"state": state, "updated_at": self._rt.clock()},
                )
                row = await _row(conn, connection_id)
                evs.append(
                    await self._events.record(
                        conn,
                        _STATE_EVENTS[state],
                        self._from_row(row).to_dict(),
                        row["organization_id"],
                    )
                )
        self._cache.pop(connection_id, None)
        self._routing.invalidate()
        await self._events.dispatch(evs)
        return self._from_row(row)

    async def activate(self, connection_id: str) -> Connection:
        return await self.set_state(connection_id, "active")

    async def deactivate(self, connection_id: str) -> Connection:
        return await self.set_state(connection_id, "inactive")

    async def delete(self, connection_id: str) -> None:
        async with self._rt.transaction() as conn:
            row = await _row(conn, connection_id)
            await repo.delete_by_id(conn, connections, connection_id)
            ev = await self._events.record(
                conn, "connection.deleted", self._from_row(row).to_dict(), row["organization_id"]
            )
        self._cache.pop(connection_id, None)
        self._routing.invalidate()
        await self._events.dispatch([ev])
