"""``SSOGate``: the composition root. Settings → store → caches → services; ``wrap``/``install``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from sso_gate._crypto import SecretBox
from sso_gate._time import Clock, utcnow
from sso_gate.logs import configure_logging
from sso_gate.metrics import GateMetrics
from sso_gate.models import Profile
from sso_gate.services._runtime import Runtime
from sso_gate.services.audit import AuditService
from sso_gate.services.audit_streams import AuditStreamsService
from sso_gate.services.connections import ConnectionsService
from sso_gate.services.delivery import DeliveryWorker
from sso_gate.services.directories import DirectoriesService
from sso_gate.services.domains import DomainVerificationService
from sso_gate.services.events import EventsService, Subscriber
from sso_gate.services.health import HealthService
from sso_gate.services.keys import KeyRotation
from sso_gate.services.organizations import OrganizationsService
from sso_gate.services.portal import PortalService
from sso_gate.services.routing import RoutingService
from sso_gate.services.saml_flow import SAMLFlow
from sso_gate.services.scim import DeprovisionHook, SCIMService
from sso_gate.services.sessions import SessionsService
from sso_gate.services.sso import SSOService
from sso_gate.services.webhooks import WebhooksService
from sso_gate.settings import Settings
from sso_gate.store.db import create_engine, migrate
from sso_gate.store.onetime import OneTimeStore, create_onetime_store
from sso_gate.store.ratelimit import RateLimiter, create_rate_limiter

__all__ = ["SSOGate", "LoginHook", "PortalAccessHook"]

# on_login(profile, request) -> optional Response (sync or async)
LoginHook = Callable[[Profile, Any], Any]
# portal_access(request) -> (organization_id, intents) or None (sync or async)
PortalAccessHook = Callable[[Any], Any]
S = TypeVar("S", bound=Subscriber)


class SSOGate:
    """Enterprise SSO in front of an ASGI app.

    >>> gate = SSOGate.from_env()
    >>> app = gate.wrap(app)

    ``http_client``, ``clock``, ``onetime`` and ``rate_limiter`` are injectable for tests.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        on_login: LoginHook | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        onetime: OneTimeStore | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        if settings.log_format == "json":
            configure_logging("json", settings.log_level)
        self.login_hook: LoginHook | None = on_login
        self._owns_http = http_client is None
        self._rt = Runtime(
            settings=settings,
            engine=create_engine(settings.database_url, timeout=settings.database_timeout),
            clock=clock or utcnow,
            onetime=onetime or create_onetime_store(settings.redis_url),
            http=http_client
            or httpx.AsyncClient(follow_redirects=False, timeout=settings.http_timeout),
            box=SecretBox(settings.secret_keys),
        )
        self.metrics: GateMetrics = self._rt.metrics
        self.health = HealthService(self._rt)
        # rate limits (web/_ratelimit.py): in-process, or shared through Redis
        self.rate_limiter: RateLimiter = (
            create_rate_limiter(settings.redis_url, max_keys=settings.rate_limit_max_keys)
            if rate_limiter is None
            else rate_limiter
        )
        self.events = EventsService(self._rt)
        self.audit = AuditService(self._rt)
        self.keys = KeyRotation(self._rt)
        self.events.auditor = self.audit
        self.routing = RoutingService(self._rt)
        self.organizations = OrganizationsService(self._rt, self.events, self.routing)
        self.connections = ConnectionsService(self._rt, self.events, self.routing)
        self.sessions = SessionsService(self._rt, self.events)
        self.sso = SSOService(self._rt, self.connections, self.events)
        self.saml = SAMLFlow(self._rt, self.connections, self.events, self.sessions)
        self.directories = DirectoriesService(self._rt, self.events)
        self.scim = SCIMService(
            self._rt, self.events, self.sessions, self.directories.scim_base_url
        )
        self.webhooks = WebhooksService(self._rt, self.events)
        self.domains = DomainVerificationService(
            self._rt, self.events, self.organizations, self.routing
        )
        self.portal = PortalService(self._rt, self.events)
        self.portal_access_hook: PortalAccessHook | None = None
        self.audit_streams = AuditStreamsService(self._rt, self.audit, http=http_client)
        # an injected client (tests) serves webhook deliveries too; otherwise the worker keeps
        # its own connection pool, sized by SSO_GATE_WEBHOOK_CONCURRENCY
        self.worker = DeliveryWorker(
            self._rt,
            self.events,
            self.webhooks,
            http=http_client,
            audit=self.audit,
            streams=self.audit_streams,
        )
        self._worker_task: asyncio.Task[None] | None = None
        self._worker_stop = asyncio.Event()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> SSOGate:
        """Build from ``SSO_GATE_*`` environment variables."""
        return cls(Settings.from_env(environ), **kwargs)

    def __repr__(self) -> str:
        return f"SSOGate(base_url={self.settings.base_url!r}, prefix={self.settings.prefix!r})"

    @property
    def onetime(self) -> OneTimeStore:
        """The one-time store (state, replay cache) shared by every instance via Redis."""
        return self._rt.onetime

    # -- hooks ---------------------------------------------------------------------------------

    def on_login(self, fn: LoginHook) -> LoginHook:
        """Decorator: ``fn(profile, request)`` runs after every verified SSO login. It may create
        the app's own session and return a response; return None for the default redirect."""
        self.login_hook = fn
        return fn

    def portal_access(self, fn: PortalAccessHook) -> PortalAccessHook:
        """Decorator: embed the admin portal behind the app's own admin auth.

        ``fn(request)`` returns ``(organization_id, intents)`` for an admin the app has
        authenticated (``intents``: any of ``sso``, ``dsync``, ``domain_verification``,
        ``audit_logs``, ``log_streams``), or None; then ``{prefix}/portal/`` serves that admin
        without a one-time link. Everything else (CSRF, scoping, auditing) is unchanged.
        """
        self.portal_access_hook = fn
        return fn

    def on_deprovision(self, fn: DeprovisionHook) -> DeprovisionHook:
        """Decorator: ``fn(directory_user)`` runs after a directory deactivates or deletes a
        user (their gate sessions are already revoked); e.g. lock the app's own account."""
        self.scim.on_deprovision(fn)
        return fn

    def on(self, pattern: str) -> Callable[[S], S]:
        """Decorator: subscribe to committed events (``"dsync.user.created"``, ``"dsync.*"``)."""

        def register(fn: S) -> S:
            self.events.subscribe(pattern, fn)
            return fn

        return register

    # -- lifecycle -----------------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create or upgrade the database schema (what ``sso-gate migrate`` runs)."""
        await migrate(self._rt.engine)

    async def start_worker(self) -> None:
        """Start the in-process delivery worker (``SSO_GATE_WORKER=inline``, the default); the
        ASGI lifespan calls this at startup. A no-op when the setting is ``off``."""
        if self.settings.worker != "inline" or self._worker_task is not None:
            return
        self._worker_stop = asyncio.Event()
        self._worker_task = asyncio.create_task(self.worker.run(self._worker_stop))

    async def stop_worker(self) -> None:
        """Stop the in-process worker after its current pass (ASGI lifespan shutdown)."""
        task, self._worker_task = self._worker_task, None
        if task is None:
            return
        self._worker_stop.set()
        try:
            await asyncio.wait_for(task, timeout=self.settings.webhook_timeout + 5)
        except TimeoutError:
            task.cancel()

    async def run_worker(self, stop: asyncio.Event) -> None:
        """Run the delivery worker in the foreground until ``stop`` is set (``sso-gate worker``)."""
        await self.worker.run(stop)

    async def aclose(self) -> None:
        await self.stop_worker()
        await self.worker.aclose()
        await self.audit_streams.aclose()
        if self._owns_http:
            await self._rt.http.aclose()
        await self._rt.onetime.close()
        await self.rate_limiter.close()
        await self._rt.engine.dispose()

    # -- ASGI ----------------------------------------------------------------------------------

    def wrap(self, app: Callable[..., Awaitable[None]]) -> Any:
        """Return ``app`` behind the gate (pure ASGI middleware + the gate's routes)."""
        from sso_gate.web.middleware import GateMiddleware

        return GateMiddleware(app, self)

    def install(self, app: Any) -> None:
        """Add the gate to a Starlette or FastAPI app in place (``app.add_middleware``)."""
        from sso_gate.web.middleware import GateMiddleware

        app.add_middleware(GateMiddleware, gate=self)
