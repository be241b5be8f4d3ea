"""SAML sign-in: start (AuthnRequest), verify the response at the ACS, produce the Profile.

The connection is the one in the ACS URL. A solicited response must answer a request this
gate started (its ID is a single-use key in the one-time store, shared through Redis); the
browser binding is checked after the ACS, on a same-site GET (see ``web/routes_saml.py``).
Assertion IDs stay in the replay cache until the assertion expires.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
from datetime import timedelta
from typing import Any, Literal

from cachetools import LRUCache, TTLCache
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from lxml import etree

from sso_gate.exceptions import (
    NotFoundError,
    SSOFlowError,
    SSOGateError,
    TokenValidationError,
)
from sso_gate.models import Connection, Profile, SAMLConfig
from sso_gate.saml import request as saml_request
from sso_gate.saml.attributes import map_attributes
from sso_gate.saml.metadata import load_certificate
from sso_gate.saml.response import (
    ResponseExpectations,
    VerifiedAssertion,
    decode_saml_response,
    parse_instant,
    verify_response,
)
from sso_gate.services._profiles import build_profile, record_failure
from sso_gate.services._runtime import Runtime
from sso_gate.services.connections import ConnectionsService
from sso_gate.services.events import EventsService
from sso_gate.services.sessions import SessionsService

__all__ = ["SAMLFlow", "SAMLStart", "SAMLResult", "SLOResult"]

log = logging.getLogger("sso_gate.saml")
_IRT = re.compile(rb'InResponseTo="([^"]{1,256})"')
_REFRESH_COOLDOWN = timedelta(seconds=60)


@dataclasses.dataclass(frozen=True, slots=True)
class SAMLStart:
    kind: Literal["redirect", "post"]
    value: str  # a URL (redirect) or an HTML page (post)
    request_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class SAMLResult:
    profile: Profile
    return_to: str
    binding_hash: str | None  # None for IdP-initiated
    assertion: VerifiedAssertion


class SAMLFlow:
    def __init__(
        self,
        rt: Runtime,
        connections: ConnectionsService,
        events: EventsService,
        sessions: SessionsService,
    ) -> None:
        self._rt = rt
        self._sessions = sessions
        self._connections = connections
        self._events = events
        self._certs: LRUCache[tuple[str, ...], tuple[x509.Certificate, ...]] = LRUCache(4096)
        self._keys: LRUCache[str, PrivateKeyTypes] = LRUCache(4096)
        self._expiry_checked: TTLCache[str, bool] = TTLCache(maxsize=10_000, ttl=3600)
        # connections whose metadata URL just failed: not retried for a minute, so an IdP host
        # that hangs costs one sign-in start SSO_GATE_HTTP_TIMEOUT, not every one
        self._refresh_failed: TTLCache[str, bool] = TTLCache(
            maxsize=10_000, ttl=_REFRESH_COOLDOWN.total_seconds()
        )

    # -- helpers -------------------------------------------------------------------------------

    def _certificates(self, saml: SAMLConfig) -> tuple[x509.Certificate, ...]:
        certs = self._certs.get(saml.idp_certificates)
        if certs is None:
            certs = tuple(load_certificate(p) for p in saml.idp_certificates)
            self._certs[saml.idp_certificates] = certs
        return certs

    def _private_key(self, connection: Connection) -> PrivateKeyTypes:
        assert connection.saml is not None
        key = self._keys.get(connection.id)
        if key is None:
            pem = connection.saml.sp_private_key.reveal().encode()
            key = serialization.load_pem_private_key(pem, password=None)
            self._keys[connection.id] = key
        return key

    async def _maybe_refresh(self, connection: Connection, *, min_age: timedelta) -> Connection:
        """Re-fetch metadata when it is older than ``min_age``; keep the last good on failure."""
        saml = connection.saml
        if saml is None or not saml.metadata_url:
            return connection
        last = parse_instant(saml.metadata_refreshed_at, "metadata_refreshed_at")
        if last is not None and self._rt.clock() - last < min_age:
            return connection
        if connection.id in self._refresh_failed:
            return connection
        try:
            return await self._connections.refresh_saml_metadata(connection.id)
        except SSOGateError as exc:
            log.warning("metadata refresh of %s failed: %s", connection.id, exc.message)
            self._refresh_failed[connection.id] = True
            return connection

    async def _connection(self, connection_id: str) -> Connection:
        try:
            connection = await self._connections.get_cached(connection_id)
        except NotFoundError:
            raise SSOFlowError(
                f"unknown connection {connection_id!r}", code="unknown_connection"
            ) from None
        if connection.saml is None:
            raise SSOFlowError(
                f"connection {connection_id} is not a SAML connection",
                code="connection_unsupported",
            )
        return connection

    # -- start ---------------------------------------------------------------------------------

    async def begin(
        self, connection: Connection, *, return_to: str, binding_hash: str, test: bool = False
    ) -> SAMLStart:
        """``test``: a portal test sign-in, allowed on draft and inactive connections; its
        response must be completed with ``complete(..., test=True)`` (no app session)."""
        if connection.state != "active" and not test:
            raise SSOFlowError(
                f"connection {connection.id} is {connection.state}, not active",
                code="connection_inactive",
            )
        connection = await self._maybe_refresh(
            connection, min_age=timedelta(seconds=self._rt.settings.metadata_refresh_interval)
        )
        if connection.id not in self._expiry_checked:
            self._expiry_checked[connection.id] = True
            try:
                await self._connections.check_saml_certificates(connection.id)
            except SSOGateError as exc:
                log.warning("certificate check of %s failed: %s", connection.id, exc.message)
        saml = connection.saml
        assert saml is not None
        urls = self._connections.saml_urls(connection.id)
        req = saml_request.authn_request_xml(
            sp_entity_id=saml.sp_entity_id,
            acs_url=urls["acs_url"],
            destination=saml.sso_url,
            now=self._rt.clock(),
        )
        flow = {
            "connection_id": connection.id,
            "return_to": return_to,
            "binding_hash": binding_hash,
            "test": test,
        }
        await self._rt.onetime.put(
            f"saml_req:{req.id}", json.dumps(flow), self._rt.settings.flow_ttl
        )
        relay_state = secrets.token_urlsafe(24)  # opaque: nothing is ever read from it
        key = self._private_key(connection) if saml.sign_requests else None
        assert key is None or isinstance(key, rsa.RSAPrivateKey)
        if saml.sso_binding == "post":
            xml = req.xml if key is None else _sign_xml(req.xml, key, saml.sp_certificate)
            page = saml_request.post_form(saml.sso_url, xml, relay_state=relay_state)
            return SAMLStart("post", page, req.id)
        url = saml_request.redirect_url(saml.sso_url, req.xml, relay_state=relay_state, key=key)
        return SAMLStart("redirect", url, req.id)

    # -- Single Logout -------------------------------------------------------------------------

    async def logout_url(self, profile: Profile, return_to: str) -> str | None:
        """A signed LogoutRequest to the IdP for this SAML session, when the IdP publishes a
        SingleLogoutService; None otherwise (the local session is revoked either way)."""
        try:
            connection = await self._connection(profile.connection_id)
        except SSOGateError:
            return None
        saml = connection.saml
        if saml is None or not saml.slo_url:
            return None
        raw = profile.raw_attributes
        req = saml_request.logout_request_xml(
            sp_entity_id=saml.sp_entity_id,
            destination=saml.slo_url,
            name_id=str(raw.get("name_id") or profile.idp_id),
            name_id_format=raw.get("name_id_format"),
            session_index=raw.get("session_index"),
            now=self._rt.clock(),
        )
        await self._rt.onetime.put(
            f"saml_logout:{req.id}",
            json.dumps({"connection_id": connection.id, "return_to": return_to}),
            self._rt.settings.flow_ttl,
        )
        key = self._private_key(connection)
        assert isinstance(key, rsa.RSAPrivateKey)
        return saml_request.redirect_url(
            saml.slo_url, req.xml, relay_state=secrets.token_urlsafe(16), key=key
        )

    async def handle_slo(self, connection_id: str, raw_query: bytes) -> SLOResult:
        """An IdP's LogoutRequest (revoke, then answer) or LogoutResponse (finish our logout)."""
        from sso_gate.saml import logout

        connection = await self._connection(connection_id)
        saml = connection.saml
        assert saml is not None
        msg = logout.parse_redirect(raw_query)
        certs = self._certificates(saml)
        if msg.param == "SAMLResponse":
            if msg.signature is not None:
                logout.verify_redirect_signature(msg, certs, allow_sha1=saml.allow_sha1)
            in_response_to, _status, _issuer = logout.parse_logout_response(msg.xml)
            pending = None
            if in_response_to:
                pending = await self._rt.onetime.take(f"saml_logout:{in_response_to}")
            target = json.loads(pending)["return_to"] if pending else "/"
            return SLOResult(target)
        # IdP-initiated: the request must be signed by this connection's IdP.
        logout.verify_redirect_signature(msg, certs, allow_sha1=saml.allow_sha1)
        req = logout.parse_logout_request(msg.xml)
        if req.issuer != saml.idp_entity_id:
            raise TokenValidationError(
                f"LogoutRequest Issuer {req.issuer!r} is not this connection's IdP",
                code="wrong_issuer",
            )
        if not await self._rt.onetime.add(f"saml_logout_in:{connection.id}:{req.id}", 3600):
            raise TokenValidationError("this LogoutRequest was already processed", code="replayed")
        revoked = await self._revoke_name_id(connection, req.name_id)
        if not saml.slo_url:
            return SLOResult("/", revoked)
        xml = logout.logout_response_xml(
            in_response_to=req.id,
            destination=saml.slo_url,
            issuer=saml.sp_entity_id,
            now=self._rt.clock(),
        )
        key = self._private_key(connection)
        assert isinstance(key, rsa.RSAPrivateKey)
        url = saml_request.redirect_url(
            saml.slo_url, xml, relay_state=msg.relay_state, key=key, param="SAMLResponse"
        )
        return SLOResult(url, revoked)

    async def _revoke_name_id(self, connection: Connection, name_id: str) -> int:
        import sqlalchemy as sa

        from sso_gate.store.tables import profiles

        async with self._rt.read() as conn:
            rows = await conn.execute(
                sa.select(profiles.c.id).where(
                    profiles.c.connection_id == connection.id,
                    sa.or_(profiles.c.idp_id == name_id, profiles.c.email == name_id),
                )
            )
            profile_ids = [r[0] for r in rows.all()]
        count = 0
        for pid in profile_ids:
            count += len(
                await self._sessions.revoke_user(connection.organization_id, profile_id=pid)
            )
        return count

    # -- ACS -----------------------------------------------------------------------------------

    async def complete(
        self, connection_id: str, form: dict[str, str], *, test: bool = False
    ) -> SAMLResult:
        """Verify an ACS POST. ``test``: the caller handles a portal test sign-in (the response
        must answer a test request, and vice versa)."""
        connection = await self._connection(connection_id)
        try:
            return await self._complete(connection, form, test)
        except SSOGateError as exc:
            await record_failure(self._events, connection, exc)
            raise

    async def _complete(
        self, connection: Connection, form: dict[str, str], test: bool
    ) -> SAMLResult:
        if connection.state != "active" and not test:
            raise SSOFlowError(
                f"connection {connection.id} is not active", code="connection_inactive"
            )
        settings = self._rt.settings
        raw = decode_saml_response(form.get("SAMLResponse", ""), settings.max_saml_response)
        # InResponseTo, read unverified, only selects which pending request to consume; the
        # verification below compares it against the signed content.
        match = _IRT.search(raw)
        expected: str | None = None
        return_to = "/"
        binding: str | None = None
        if match:
            expected = match.group(1).decode("ascii", "replace")
            flow_raw = await self._rt.onetime.take(f"saml_req:{expected}")
            if flow_raw is None:
                raise TokenValidationError(
                    "this response answers a request that was not started here, has expired or "
                    "was already used",
                    code="unknown_in_response_to",
                )
            flow = json.loads(flow_raw)
            if flow["connection_id"] != connection.id:
                raise SSOFlowError(
                    "this response answers a request started for another connection",
                    code="connection_mismatch",
                )
            if bool(flow.get("test")) != test:
                raise SSOFlowError(
                    "this response answers a portal test sign-in"
                    if not test
                    else "this response does not answer a portal test sign-in",
                    code="test_flow_mismatch",
                )
            return_to, binding = flow["return_to"], flow["binding_hash"]
        elif test:
            raise SSOFlowError(
                "a test sign-in response must answer the test request (no InResponseTo)",
                code="test_flow_mismatch",
            )
        assert connection.saml is not None
        assertion = await self._verify(connection, form["SAMLResponse"], expected)
        if expected is None:
            return_to = connection.saml.idp_initiated_landing
        ttl = (assertion.not_on_or_after - self._rt.clock()).total_seconds() + settings.clock_skew
        if not await self._rt.onetime.add(
            f"saml_assertion:{connection.id}:{assertion.assertion_id}", max(1.0, ttl)
        ):
            raise TokenValidationError(
                "this assertion was already used (replay refused)", code="assertion_replayed"
            )
        profile = await self._profile(connection, assertion)
        return SAMLResult(profile, return_to, binding, assertion)

    async def _verify(
        self, connection: Connection, saml_response: str, expected: str | None
    ) -> VerifiedAssertion:
        def expectations(c: Connection) -> ResponseExpectations:
            saml = c.saml
            assert saml is not None
            return ResponseExpectations(
                idp_entity_id=saml.idp_entity_id,
                sp_entity_id=saml.sp_entity_id,
                acs_url=self._connections.saml_urls(c.id)["acs_url"],
                certificates=self._certificates(saml),
                now=self._rt.clock(),
                skew=self._rt.settings.clock_skew,
                in_response_to=expected,
                allow_unsolicited=saml.allow_idp_initiated,
                allow_sha1=saml.allow_sha1,
                decryption_key=self._private_key(c),
                require_encryption=saml.encrypt_assertions,
                max_bytes=self._rt.settings.max_saml_response,
            )

        try:
            return verify_response(saml_response, expectations(connection))
        except TokenValidationError as exc:
            # The IdP may have rotated its certificate: refetch the metadata once, then retry.
            if (
                exc.code != "invalid_signature"
                or not connection.saml
                or not connection.saml.metadata_url
            ):
                raise
            refreshed = await self._maybe_refresh(connection, min_age=_REFRESH_COOLDOWN)
            if (
                refreshed.saml is None
                or refreshed.saml.idp_certificates == connection.saml.idp_certificates
            ):
                raise
            return verify_response(saml_response, expectations(refreshed))

    async def _profile(self, connection: Connection, a: VerifiedAssertion) -> Profile:
        saml = connection.saml
        assert saml is not None
        mapped = map_attributes(
            a.attributes,
            name_id=a.name_id,
            preset=saml.attribute_preset,
            overrides=dict(saml.attribute_overrides),
            custom=dict(saml.custom_attributes),
        )
        raw: dict[str, Any] = {k: (v[0] if len(v) == 1 else v) for k, v in a.attributes.items()}
        raw["name_id"] = a.name_id
        if a.name_id_format:
            raw["name_id_format"] = a.name_id_format
        if a.session_index:
            raw["session_index"] = a.session_index
        return await build_profile(
            self._rt,
            self._events,
            connection,
            idp_id=mapped.idp_id,
            email=mapped.email,
            first_name=mapped.first_name,
            last_name=mapped.last_name,
            groups=mapped.groups,
            role=mapped.roles[0] if mapped.roles else None,
            roles=mapped.roles,
            raw_attributes=raw,
            custom_attributes=dict(mapped.custom),
            require_domain_match=saml.require_email_domain_match,
            hint="map an email attribute or use an email NameID",
        )


class SLOResult:
    """Where to send the browser after a Single Logout message."""

    __slots__ = ("redirect_to", "revoked")

    def __init__(self, redirect_to: str, revoked: int = 0) -> None:
        self.redirect_to = redirect_to
        self.revoked = revoked


def _sign_xml(xml: str, key: rsa.RSAPrivateKey, cert_pem: str) -> str:
    """Enveloped signature right after saml:Issuer (schema order), RSA-SHA256, exc-c14n."""
    from signxml.algorithms import CanonicalizationMethod
    from signxml.signer import XMLSigner

    root = etree.fromstring(xml.encode())
    issuer = root.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    assert issuer is not None
    placeholder = etree.Element("{http://www.w3.org/2000/09/xmldsig#}Signature", Id="placeholder")
    issuer.addnext(placeholder)
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signed = signer.sign(root, key=key, cert=cert_pem, id_attribute="ID")
    return etree.tostring(signed).decode()
