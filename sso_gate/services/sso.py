"""Single sign-on flows: start at the IdP, verify what comes back, produce a :class:`Profile`.

The connection is always the one named in the callback URL and must match the one the flow was
started for; nothing in the IdP's message selects the tenant.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from cachetools import TTLCache
from joserfc.jwk import KeySet

from sso_gate._crypto import constant_time_equals
from sso_gate.exceptions import (
    IdPUnavailableError,
    NotFoundError,
    SSOFlowError,
    SSOGateError,
    TokenValidationError,
)
from sso_gate.models import Connection, Profile
from sso_gate.oidc import flow as oidc_flow
from sso_gate.oidc.discovery import ProviderMetadata, discovery_url, parse_discovery
from sso_gate.oidc.tokens import UnknownKeyError, parse_jwks, validate_id_token
from sso_gate.services._fetch import fetch
from sso_gate.services._profiles import build_profile, record_failure
from sso_gate.services._runtime import Runtime
from sso_gate.services.connections import ConnectionsService
from sso_gate.services.events import EventsService

__all__ = ["SSOService"]

log = logging.getLogger("sso_gate.sso")
T = TypeVar("T")
_STALE_FOR = 24 * 3600  # seconds a last good discovery document or JWKS may stand in
_COOLDOWN = 60.0  # seconds before an IdP whose refresh failed is asked again
_MAX_DOC = 1024 * 1024
_STANDARD_CLAIMS = ("email", "given_name", "family_name", "groups", "role", "roles")


class SSOService:
    def __init__(self, rt: Runtime, connections: ConnectionsService, events: EventsService) -> None:
        self._rt = rt
        self._connections = connections
        self._events = events
        self._discovery: TTLCache[str, ProviderMetadata] = TTLCache(maxsize=10_000, ttl=3600)
        self._jwks: TTLCache[str, KeySet] = TTLCache(maxsize=10_000, ttl=3600)
        # last good documents, used for up to a day when a refresh after expiry fails
        self._last: TTLCache[str, Any] = TTLCache(maxsize=20_000, ttl=_STALE_FOR)
        # url -> monotonic time before which a failed refresh is not tried again
        self._cooldown: TTLCache[str, float] = TTLCache(maxsize=20_000, ttl=_COOLDOWN)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _fetch_json(
        self,
        method: str,
        url: str,
        what: str,
        *,
        data: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        accept_error_json: bool = False,
    ) -> Any:
        status, body = await fetch(
            self._rt.http,
            method,
            url,
            what=what,
            timeout=self._rt.settings.http_timeout,
            max_bytes=_MAX_DOC,
            data=data,
            auth=auth,
            headers={"Accept": "application/json", **(headers or {})},
        )
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if status >= 400 and not (accept_error_json and isinstance(doc, dict)):
            raise IdPUnavailableError(
                f"{what} request answered HTTP {status}", code="idp_http_error"
            )
        if doc is None:
            raise IdPUnavailableError(f"{what} response is not JSON", code="idp_bad_response")
        return doc

    async def _refresh(self, url: str, what: str, load: Callable[[Any], T]) -> T:
        """Fetch and parse a document after its cache entry expired. When the IdP cannot be
        reached (down, slow, an HTTP error, not JSON), the last good document is used for up to
        ``_STALE_FOR`` with a warning, and the IdP is not asked again for ``_COOLDOWN`` (so
        an outage does not make every sign-in wait for the timeout). A document that arrives
        but is wrong is never papered over."""
        stale = self._last.get(url)
        if stale is not None and self._cooldown.get(url, 0.0) > time.monotonic():
            return cast(T, stale)
        try:
            doc = await self._fetch_json("GET", url, what)
        except IdPUnavailableError as exc:
            if stale is None:
                raise
            self._cooldown[url] = time.monotonic() + _COOLDOWN
            log.warning(
                "%s refresh failed (%s); using the last good document for now",
                what,
                exc.message,
                extra={"url": url, "code": exc.code},
            )
            return cast(T, stale)
        value = load(doc)  # a wrong document is refused, never replaced by the last good one
        self._last[url] = value
        return value

    async def metadata(self, connection: Connection) -> ProviderMetadata:
        assert connection.oidc is not None
        issuer = connection.oidc.issuer
        meta = self._discovery.get(issuer)
        if meta is None:
            meta = await self._refresh(
                discovery_url(issuer),
                "discovery",
                lambda doc: parse_discovery(
                    doc, expected_issuer=issuer, allow_http=self._rt.settings.http_idp_allowed
                ),
            )
            self._discovery[issuer] = meta
        return meta

    async def _keys(self, meta: ProviderMetadata, refresh: bool = False) -> KeySet:
        if refresh:  # an unknown kid: only fresh keys can answer that
            keys = parse_jwks(await self._fetch_json("GET", meta.jwks_uri, "JWKS"))
            self._last[meta.jwks_uri] = keys
        else:
            cached = self._jwks.get(meta.jwks_uri)
            if cached is not None:
                return cached
            keys = await self._refresh(meta.jwks_uri, "JWKS", parse_jwks)
        self._jwks[meta.jwks_uri] = keys
        return keys

    # -- start ---------------------------------------------------------------------------------

    async def begin(
        self,
        connection: Connection,
        *,
        return_to: str,
        binding_hash: str,
        login_hint: str | None = None,
        test: bool = False,
    ) -> str:
        """Create a single-use flow and return the IdP authorization URL. ``test``: a portal
        test sign-in, allowed on draft and inactive connections; its callback must be completed
        with ``complete_oidc(..., test=True)`` (no app session)."""
        if connection.state != "active" and not test:
            raise SSOFlowError(
                f"connection {connection.id} is {connection.state}, not active",
                code="connection_inactive",
            )
        if connection.oidc is None:
            raise SSOFlowError(
                f"connection {connection.id} ({connection.connection_type}) cannot start an "
                "OIDC sign-in",
                code="connection_unsupported",
            )
        meta = await self.metadata(connection)
        fs = oidc_flow.new_flow_state(connection.id, return_to, binding_hash, login_hint, test)
        await self._rt.onetime.put(f"oidc_state:{fs.state}", fs.dumps(), self._rt.settings.flow_ttl)
        return oidc_flow.authorization_url(
            meta,
            client_id=connection.oidc.client_id,
            redirect_uri=self._connections.redirect_uri(connection.id),
            scopes=connection.oidc.scopes,
            flow=fs,
        )

    # -- finish --------------------------------------------------------------------------------

    async def complete_oidc(
        self,
        connection_id: str,
        params: dict[str, str],
        binding_hash: str | None,
        *,
        test: bool = False,
    ) -> tuple[Profile, str]:
        """Verify an OIDC callback. Returns the profile and the validated ``return_to``.

        Every failure raises :class:`SSOFlowError` (or :class:`IdPUnavailableError`) and records
        an ``authentication.sso_failed`` event. ``test``: the caller handles a portal test
        sign-in (the flow must be a test flow, and vice versa).
        """
        try:
            connection = await self._connections.get_cached(connection_id)
        except NotFoundError:
            raise SSOFlowError(
                f"unknown connection {connection_id!r}", code="unknown_connection"
            ) from None
        try:
            return await self._complete(connection, params, binding_hash, test)
        except SSOGateError as exc:
            await record_failure(self._events, connection, exc)
            raise

    async def _complete(
        self, connection: Connection, params: dict[str, str], binding_hash: str | None, test: bool
    ) -> tuple[Profile, str]:
        state = params.get("state")
        if not state or not isinstance(state, str) or len(state) > 200:
            # Still surface an IdP error message if there is one.
            oidc_flow.parse_callback(params)
            raise SSOFlowError("the callback has no state parameter", code="missing_state")
        raw = await self._rt.onetime.take(f"oidc_state:{state}")
        if raw is None:
            raise SSOFlowError(
                "the state parameter is unknown, expired or was already used; start the sign-in "
                "again",
                code="invalid_state",
            )
        fs = oidc_flow.FlowState.loads(raw)
        if fs.connection_id != connection.id:
            raise SSOFlowError(
                "this sign-in was started for another connection", code="connection_mismatch"
            )
        if fs.test != test:
            raise SSOFlowError(
                "this callback answers a portal test sign-in"
                if not test
                else "this callback does not answer a portal test sign-in",
                code="test_flow_mismatch",
            )
        if binding_hash is None or not constant_time_equals(fs.binding_hash, binding_hash):
            raise SSOFlowError(
                "this sign-in was started in another browser (flow cookie missing or different)",
                code="browser_mismatch",
            )
        cb = oidc_flow.parse_callback(params)
        if (connection.state != "active" and not test) or connection.oidc is None:
            raise SSOFlowError(
                f"connection {connection.id} is not active", code="connection_inactive"
            )
        oidc = connection.oidc
        meta = await self.metadata(connection)
        # RFC 9207 §2.4: check the iss parameter when sent; require it when advertised.
        if cb.iss is not None and cb.iss != meta.issuer:
            raise SSOFlowError(
                f"authorization response iss {cb.iss!r} is not the connection's issuer",
                code="invalid_iss_parameter",
            )
        if cb.iss is None and meta.iss_parameter_supported:
            raise SSOFlowError(
                "the provider advertises RFC 9207 but the response has no iss parameter",
                code="missing_iss_parameter",
            )
        form, basic = oidc_flow.token_request(
            code=cb.code,
            redirect_uri=self._connections.redirect_uri(connection.id),
            client_id=oidc.client_id,
            client_secret=oidc.client_secret.reveal(),
            code_verifier=fs.code_verifier,
            auth_method=oidc.token_endpoint_auth_method,
        )
        tokens = await self._fetch_json(
            "POST", meta.token_endpoint, "token", data=form, auth=basic, accept_error_json=True
        )
        if not isinstance(tokens, dict):
            raise SSOFlowError("token response is not a JSON object", code="invalid_token_response")
        if "error" in tokens:
            err = str(tokens.get("error"))[:100]
            raise SSOFlowError(
                f"the provider refused the authorization code ({err})", code="token_exchange_failed"
            )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise TokenValidationError("token response has no id_token", code="missing_id_token")
        claims = await self._validate(connection, meta, id_token, fs.nonce)
        # A nonce is single-use across instances too, so a leaked ID token cannot be replayed
        # into a second flow even if its state were guessed.
        if not await self._rt.onetime.add(f"oidc_nonce:{fs.nonce}", 3600):
            raise TokenValidationError("ID token nonce was already used", code="nonce_reused")
        if oidc.use_userinfo and meta.userinfo_endpoint:
            access = tokens.get("access_token")
            if not isinstance(access, str):
                raise SSOFlowError(
                    "token response has no access_token", code="missing_access_token"
                )
            info = await self._fetch_json(
                "GET",
                meta.userinfo_endpoint,
                "userinfo",
                headers={"Authorization": f"Bearer {access}"},
            )
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                raise TokenValidationError(
                    "userinfo sub does not match the ID token sub", code="userinfo_sub_mismatch"
                )
            claims = {**info, **claims}
        profile = await self._profile(connection, claims)
        return profile, fs.return_to

    async def _validate(
        self, connection: Connection, meta: ProviderMetadata, id_token: str, nonce: str
    ) -> dict[str, Any]:
        assert connection.oidc is not None
        oidc = connection.oidc
        kwargs: dict[str, Any] = dict(
            issuer=oidc.issuer,
            client_id=oidc.client_id,
            nonce=nonce,
            now=self._rt.clock().timestamp(),
            allowed_algorithms=oidc.allowed_algorithms,
            skew=self._rt.settings.clock_skew,
            trusted_audiences=oidc.additional_trusted_audiences,
        )
        try:
            return validate_id_token(id_token, await self._keys(meta), **kwargs)
        except UnknownKeyError:
            # The provider may have rotated keys: refetch the JWKS once, then refuse.
            return validate_id_token(id_token, await self._keys(meta, refresh=True), **kwargs)

    async def _profile(self, connection: Connection, claims: dict[str, Any]) -> Profile:
        assert connection.oidc is not None
        if claims.get("email_verified") is False:
            raise TokenValidationError(
                "the identity provider says this email is not verified", code="email_not_verified"
            )
        groups = claims.get("groups")
        roles = claims.get("roles")
        role = claims.get("role")
        return await build_profile(
            self._rt,
            self._events,
            connection,
            idp_id=claims["sub"],
            email=claims.get("email"),
            first_name=_str_or_none(claims.get("given_name")),
            last_name=_str_or_none(claims.get("family_name")),
            groups=[g for g in groups if isinstance(g, str)] if isinstance(groups, list) else [],
            role=role if isinstance(role, str) else None,
            roles=[r for r in roles if isinstance(r, str)] if isinstance(roles, list) else [],
            raw_attributes={
                k: v for k, v in claims.items() if k not in ("nonce", "at_hash", "c_hash")
            },
            custom_attributes={},
            require_domain_match=connection.oidc.require_email_domain_match,
            hint="request the 'email' scope",
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
