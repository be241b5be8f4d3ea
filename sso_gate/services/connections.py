"""SSO connections of an organization (OIDC now; SAML arrives with the SAML issue)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncConnection

from sso_gate._ids import new_id
from sso_gate.exceptions import NotFoundError, ValidationError
from sso_gate.models import (
    CONNECTION_STATES,
    OIDC_CONNECTION_TYPES,
    Connection,
    ConnectionState,
    ListPage,
    OIDCConfig,
)
from sso_gate.oidc.tokens import ASYMMETRIC_ALGORITHMS
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.services.routing import RoutingService
from sso_gate.settings import Secret
from sso_gate.store import repositories as repo
from sso_gate.store.tables import connections, organizations

__all__ = ["ConnectionsService"]

_STATE_EVENTS = {"active": "connection.activated", "inactive": "connection.deactivated"}


async def _row(conn: AsyncConnection, connection_id: str) -> repo.Row:
    row = await repo.get_by_id(conn, connections, connection_id)
    if row is None:
        raise NotFoundError(f"connection {connection_id!r} not found", code="connection_not_found")
    return row


class ConnectionsService:
    """``gate.connections``: create, read, activate, deactivate, delete SSO connections."""

    def __init__(self, rt: Runtime, events: EventsService, routing: RoutingService) -> None:
        self._rt = rt
        self._events = events
        self._routing = routing
        self._cache: TTLCache[str, Connection] = TTLCache(maxsize=10_000, ttl=30)

    def redirect_uri(self, connection_id: str) -> str:
        return self._rt.settings.gate_url(f"/sso/oidc/{connection_id}/callback")

    # -- row mapping ---------------------------------------------------------------------------

    def _from_row(self, row: repo.Row) -> Connection:
        cfg = dict(row["config"] or {})
        oidc = None
        if "oidc" in cfg:
            o = cfg["oidc"]
            secret = ""
            if row["secret_ciphertext"]:
                secret = self._rt.box.decrypt(row["secret_ciphertext"], associated=row["id"])
            oidc = OIDCConfig(
                issuer=o["issuer"],
                client_id=o["client_id"],
                client_secret=Secret(secret),
                scopes=tuple(o.get("scopes") or ("openid", "email", "profile")),
                token_endpoint_auth_method=o.get(
                    "token_endpoint_auth_method", "client_secret_basic"
                ),
                allowed_algorithms=tuple(o.get("allowed_algorithms") or ("RS256",)),
                use_userinfo=bool(o.get("use_userinfo", False)),
                additional_trusted_audiences=tuple(o.get("additional_trusted_audiences") or ()),
                require_email_domain_match=bool(o.get("require_email_domain_match", True)),
            )
        return Connection(
            id=row["id"],
            organization_id=row["organization_id"],
            connection_type=row["connection_type"],
            name=row["name"],
            state=row["state"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            oidc=oidc,
        )

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
        """Create an OIDC connection. The client secret is encrypted at rest."""
        issuer = self._check_issuer(issuer)
        for field, value in (("client_id", client_id), ("client_secret", client_secret)):
            if not isinstance(value, str) or not value or len(value) > 2000:
                raise ValidationError(f"{field} is required", field=field)
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
        now = self._rt.clock()
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
                    "name": name or f"{connection_type} {urlsplit(issuer).netloc}",
                    "state": state,
                    "config": config,
                    "secret_ciphertext": self._rt.box.encrypt(client_secret, associated=conn_id),
                    "created_at": now,
                    "updated_at": now,
                },
            )
            row = await repo.get_by_id(conn, connections, conn_id)
            assert row is not None
            created = self._from_row(row)
            evs = [
                await self._events.record(
                    conn, "connection.created", created.to_dict(), organization_id
                )
            ]
            if state == "active":
                evs.append(
                    await self._events.record(
                        conn, "connection.activated", created.to_dict(), organization_id
                    )
                )
        self._routing.invalidate()
        await self._events.dispatch(evs)
        return created

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
