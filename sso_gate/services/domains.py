"""Domain verification through DNS (the admin portal's "verify your domain" step).

An IT admin adds a domain: it is stored ``pending`` with a random token and the admin publishes
the TXT record ``sso-gate-verification=<token>`` at the domain. :meth:`verify` looks the TXT
records up (dnspython; the resolver is injectable) and moves the domain to ``verified`` — or to
``failed`` with a plain-language reason (no TXT record, the wrong value, the domain does not
exist, DNS timed out); a failed domain can be checked again at any time. Each outcome writes an
event (``organization_domain.verified`` / ``organization_domain.verification_failed``) and an
audit entry in the same transaction.

Domains that the app's operator adds through the management API or CLI stay trusted as
verified. With ``require_verified_domains`` set on an organization, SSO routing applies only to
its verified domains; an unverified domain's users keep the password login.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence

import sqlalchemy as sa

from sso_gate._ids import new_id
from sso_gate.exceptions import ConflictError, IdPUnavailableError, NotFoundError
from sso_gate.models import Organization, OrganizationDomain
from sso_gate.services._runtime import Runtime
from sso_gate.services.events import EventsService
from sso_gate.services.organizations import OrganizationsService, _claimable
from sso_gate.services.routing import RoutingService
from sso_gate.store import repositories as repo
from sso_gate.store.tables import organization_domains, organizations

__all__ = ["DomainVerificationService", "TxtResolver", "dns_txt_resolver", "DomainLookupError"]

#: ``resolver(name) -> TXT strings`` (each record's character-strings joined)
TxtResolver = Callable[[str], Awaitable[list[str]]]
PREFIX = "sso-gate-verification="


class DomainLookupError(Exception):
    """A DNS lookup failed; the message is shown to the IT admin."""


async def dns_txt_resolver(name: str, nameservers: Sequence[str] = ()) -> list[str]:
    """TXT records of ``name`` (dnspython): through the system's resolvers, or through
    ``nameservers`` (``host`` or ``host:port``, ``SSO_GATE_DNS_NAMESERVERS``)."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        hosts = []
        for server in nameservers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            hosts.append(host or server)
            if port:
                resolver.port = int(port)
        resolver.nameservers = hosts
    try:
        answer = await resolver.resolve(name, "TXT", lifetime=5.0)
    except dns.resolver.NXDOMAIN:
        raise DomainLookupError(f"the domain {name} does not exist in DNS") from None
    except dns.resolver.NoAnswer:
        return []
    except dns.exception.Timeout:
        raise DomainLookupError(f"DNS did not answer for {name} within 5 seconds") from None
    except dns.exception.DNSException as exc:
        raise DomainLookupError(f"the DNS lookup of {name} failed ({type(exc).__name__})") from None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


class DomainVerificationService:
    def __init__(
        self,
        rt: Runtime,
        events: EventsService,
        organizations_service: OrganizationsService,
        routing: RoutingService,
        resolver: TxtResolver | None = None,
    ) -> None:
        self._rt = rt
        self._events = events
        self._orgs = organizations_service
        self._routing = routing
        servers = rt.settings.dns_nameservers
        self.resolver: TxtResolver = resolver or (
            (lambda name: dns_txt_resolver(name, servers)) if servers else dns_txt_resolver
        )

    async def _domain(self, organization_id: str, domain: str) -> repo.Row:
        d = _claimable(domain, "domain")
        async with self._rt.read() as conn:
            row = (
                await conn.execute(
                    sa.select(organization_domains).where(
                        organization_domains.c.organization_id == organization_id,
                        organization_domains.c.domain == d,
                    )
                )
            ).first()
        if row is None:
            raise NotFoundError(
                f"{d} is not a domain of this organization", code="domain_not_found"
            )
        return row._mapping

    async def add(self, organization_id: str, domain: str) -> OrganizationDomain:
        """Add a domain to verify (``pending``, with its TXT token). Adding it again returns
        the existing entry (same token)."""
        d = _claimable(domain, "domain")
        now = self._rt.clock()
        async with self._rt.transaction() as conn:
            org_row = await repo.get_by_id(conn, organizations, organization_id)
            if org_row is None:
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            existing = (
                await conn.execute(
                    sa.select(organization_domains).where(organization_domains.c.domain == d)
                )
            ).first()
            if existing is not None:
                if existing.organization_id != organization_id:
                    raise ConflictError(
                        f"{d} already belongs to another organization", code="domain_taken"
                    )
                return _domain_from_row(existing._mapping)
            domain_id = new_id("org_domain")
            values = {
                "id": domain_id,
                "organization_id": organization_id,
                "domain": d,
                "state": "pending",
                "created_at": now,
                "verification_token": secrets.token_urlsafe(24),
            }
            await repo.insert(conn, organization_domains, values)
            row = await repo.get_by_id(conn, organization_domains, domain_id)
            assert row is not None
            domain_obj = _domain_from_row(row)
            ev = await self._events.record(
                conn, "organization_domain.created", domain_obj.to_dict(), organization_id
            )
        self._routing.invalidate([d])
        await self._events.dispatch([ev])
        return domain_obj

    async def verify(self, organization_id: str, domain: str) -> OrganizationDomain:
        """Look the TXT record up now; ``verified`` or ``failed`` (with the reason)."""
        row = await self._domain(organization_id, domain)
        if row["state"] == "verified" and row["verification_token"] is None:
            return _domain_from_row(row)  # trusted by the operator
        token = row["verification_token"]
        expected = f"{PREFIX}{token}"
        error: str | None = None
        try:
            found = await self.resolver(row["domain"])
        except DomainLookupError as exc:
            error = str(exc)
        except Exception as exc:  # a resolver bug must not become a 500
            raise IdPUnavailableError(
                f"the DNS lookup failed ({type(exc).__name__})", code="dns_unavailable"
            ) from None
        else:
            values = [v.strip().strip('"') for v in found]
            if expected not in values:
                ours = [v for v in values if v.startswith(PREFIX)]
                if ours:
                    error = (
                        f"found a TXT record {ours[0]!r} at {row['domain']}, but it does not "
                        f"match; expected {expected!r}"
                    )
                elif values:
                    error = (
                        f"no TXT record {expected!r} at {row['domain']} ({len(values)} other TXT "
                        "record(s) found); DNS changes can take a few minutes to appear"
                    )
                else:
                    error = (
                        f"no TXT records at {row['domain']}; publish {expected!r} and try again "
                        "(DNS changes can take a few minutes to appear)"
                    )
        now = self._rt.clock()
        state = "failed" if error else "verified"
        async with self._rt.transaction() as conn:
            await repo.update_by_id(
                conn,
                organization_domains,
                row["id"],
                {
                    "state": state,
                    "last_checked_at": now,
                    "verification_error": error[:500] if error else None,
                    "verified_at": None if error else now,
                },
            )
            fresh = await repo.get_by_id(conn, organization_domains, row["id"])
            assert fresh is not None
            domain_obj = _domain_from_row(fresh)
            name = (
                "organization_domain.verification_failed"
                if error
                else "organization_domain.verified"
            )
            ev = await self._events.record(conn, name, domain_obj.to_dict(), organization_id)
        self._routing.invalidate([row["domain"]])
        await self._events.dispatch([ev])
        return domain_obj

    async def set_require_verified(self, organization_id: str, required: bool) -> Organization:
        """Apply SSO routing only to verified domains (or to every domain again)."""
        async with self._rt.transaction() as conn:
            org_row = await repo.get_by_id(conn, organizations, organization_id)
            if org_row is None:
                raise NotFoundError(
                    f"organization {organization_id!r} not found", code="organization_not_found"
                )
            await repo.update_by_id(
                conn,
                organizations,
                organization_id,
                {"require_verified_domains": bool(required), "updated_at": self._rt.clock()},
            )
            domains = await repo.domains_of(conn, [organization_id])
            await self._events.audit(
                conn,
                "organization.domain_verification_required"
                if required
                else "organization.domain_verification_not_required",
                {"require_verified_domains": bool(required)},
                organization_id,
                targets=[{"type": "organization", "id": organization_id, "name": org_row["name"]}],
            )
        self._routing.invalidate([d["domain"] for d in domains[organization_id]])
        return await self._orgs.get(organization_id)


def _domain_from_row(row: repo.Row) -> OrganizationDomain:
    return OrganizationDomain(
        id=row["id"],
        organization_id=row["organization_id"],
        domain=row["domain"],
        state=row["state"],
        created_at=row["created_at"],
        verification_token=row["verification_token"],
        verified_at=row["verified_at"],
        last_checked_at=row["last_checked_at"],
        verification_error=row["verification_error"],
    )
