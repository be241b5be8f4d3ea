"""Settings: the only place sso_gate reads ``os.environ``.

Every variable is ``SSO_GATE_*``. A missing or malformed value raises
:class:`~sso_gate.exceptions.ConfigurationError` naming the variable, at startup.
Secrets are kept in :class:`Secret` so that ``repr(settings)`` never shows them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from sso_gate.exceptions import ConfigurationError

__all__ = ["RateLimit", "Secret", "Settings"]

Environment = Literal["production", "development"]


class Secret:
    """A string whose ``repr``/``str`` is masked. Call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _secret_tuple() -> tuple[Secret, ...]:
    return ()


_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"(\d{1,9})\s*/\s*(second|minute|hour|day)s?", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """``limit`` requests per ``period`` seconds: a burst of ``limit``, refilled evenly
    (``store/ratelimit.py``). Written ``"20/minute"`` (per second, minute, hour or day)."""

    limit: int
    period: float

    @classmethod
    def parse(cls, text: str, name: str = "rate limit") -> RateLimit | None:
        """``"N/second|minute|hour|day"``; ``"0"``, ``"off"`` or a zero ``N`` mean no limit."""
        raw = text.strip()
        if raw.lower() in ("0", "off", "none", "false"):
            return None
        match = _RATE.fullmatch(raw)
        if match is None:
            raise ConfigurationError(
                f"{name} must look like 20/minute (N per second, minute, hour or day), "
                f"or 0/off to disable it; got {text!r}"
            )
        count = int(match.group(1))
        return None if count == 0 else cls(count, _PERIODS[match.group(2).lower()])

    def __str__(self) -> str:
        unit = {v: k for k, v in _PERIODS.items()}.get(self.period)
        return f"{self.limit}/{unit}" if unit else f"{self.limit}/{self.period:g}s"


# every rate limit: (Settings attribute, environment variable without SSO_GATE_)
_RATE_LIMITS = (
    ("rate_limit_login", "RATE_LIMIT_LOGIN"),
    ("rate_limit_callback", "RATE_LIMIT_CALLBACK"),
    ("rate_limit_org", "RATE_LIMIT_ORG"),
    ("rate_limit_scim", "RATE_LIMIT_SCIM"),
    ("rate_limit_scim_ip", "RATE_LIMIT_SCIM_IP"),
    ("rate_limit_api", "RATE_LIMIT_API"),
    ("rate_limit_api_ip", "RATE_LIMIT_API_IP"),
    ("rate_limit_portal", "RATE_LIMIT_PORTAL"),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Configuration of one gate. Build with keywords or :meth:`from_env`.

    ``secret_keys``: first signs, all verify (rotate by prepending a new key).
    """

    secret_keys: tuple[Secret, ...] = dataclasses.field(default_factory=_secret_tuple)
    base_url: str = ""
    database_url: str = "sqlite:///./sso_gate.db"
    redis_url: str | None = None
    admin_api_key: Secret | None = None
    login_path: str = "/login"
    email_field: str = "email"
    prefix: str = "/sso-gate"
    environment: Environment = "production"
    session_lifetime: int = 8 * 3600
    session_cache_ttl: float = 5.0
    cookie_name: str = "sso_gate_session"
    clock_skew: int = 120
    flow_ttl: int = 600
    http_timeout: float = 5.0
    database_timeout: float = 10.0
    max_login_body: int = 64 * 1024
    max_api_body: int = 1024 * 1024
    routing_cache_ttl: float = 30.0
    allow_http_idp: bool = False
    allow_private_urls: bool = False
    max_saml_response: int = 256 * 1024
    metadata_refresh_interval: int = 24 * 3600
    # events and webhooks (services/delivery.py)
    worker: Literal["inline", "off"] = "inline"
    worker_poll_interval: float = 1.0
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 32
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_disable_after_failures: int = 20
    webhook_disable_after: int = 5 * 24 * 3600
    webhook_secret_grace: int = 24 * 3600
    event_retention_days: int = 30
    # the SCIM request log (admin portal "recent provisioning requests"), purged by the worker
    scim_log_retention_days: int = 30
    # CIDRs of reverse proxies whose X-Forwarded-For is believed (audit context, rate limits)
    trusted_proxies: tuple[str, ...] = ()
    # abuse controls (web/_ratelimit.py): per client IP, organization, directory or key; None =
    # that limit is off, rate_limits=False turns them all off. Strings ("20/minute") are parsed.
    rate_limits: bool = True
    rate_limit_login: RateLimit | None = RateLimit(120, 60.0)
    rate_limit_callback: RateLimit | None = RateLimit(120, 60.0)
    rate_limit_org: RateLimit | None = RateLimit(1200, 60.0)
    rate_limit_scim: RateLimit | None = RateLimit(3000, 60.0)
    rate_limit_scim_ip: RateLimit | None = RateLimit(6000, 60.0)
    rate_limit_api: RateLimit | None = RateLimit(6000, 60.0)
    rate_limit_api_ip: RateLimit | None = RateLimit(6000, 60.0)
    rate_limit_portal: RateLimit | None = RateLimit(10, 60.0)
    rate_limit_max_keys: int = 100_000
    # admin portal: session lifetime and theme
    portal_session_lifetime: int = 3600
    portal_product_name: str = "sso_gate"
    portal_logo_url: str | None = None
    portal_accent_color: str = "#4f46e5"
    portal_frame_ancestors: str = "'none'"
    # DNS servers for domain verification (host or host:port); unset = the system's resolvers
    dns_nameservers: tuple[str, ...] = ()
    # observability (web/observability.py, metrics.py, logs.py)
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    metrics_token: Secret | None = None
    readyz_timeout: float = 2.0
    # Host header values accepted on the gate's routes ("*.example.com" wildcards); () = any
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self._validate()
        self._validate_rate_limits()

    def _validate_rate_limits(self) -> None:
        for attr, name in _RATE_LIMITS:
            value: object = getattr(self, attr)
            if isinstance(value, str):  # Settings(rate_limit_login="20/minute")
                object.__setattr__(self, attr, RateLimit.parse(value, f"SSO_GATE_{name}"))
            elif value is not None and not (
                isinstance(value, RateLimit) and value.limit >= 1 and value.period > 0
            ):
                raise ConfigurationError(f"SSO_GATE_{name} must be a rate such as 20/minute")
        if self.rate_limit_max_keys < 1000:
            raise ConfigurationError(
                "SSO_GATE_RATE_LIMIT_MAX_KEYS must be at least 1000, "
                f"got {self.rate_limit_max_keys}"
            )

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``SSO_GATE_*`` variables. ``overrides`` win over the environment."""
        env = os.environ if environ is None else environ
        kw: dict[str, object] = {}

        def get(name: str) -> str | None:
            raw = env.get(f"SSO_GATE_{name}")
            if raw is None:
                return None
            raw = raw.strip()
            return raw or None

        if (raw := get("SECRET_KEYS")) is not None:
            keys = tuple(Secret(k.strip()) for k in raw.split(",") if k.strip())
            kw["secret_keys"] = keys
        for name, attr in (
            ("BASE_URL", "base_url"),
            ("DATABASE_URL", "database_url"),
            ("REDIS_URL", "redis_url"),
            ("LOGIN_PATH", "login_path"),
            ("EMAIL_FIELD", "email_field"),
            ("PREFIX", "prefix"),
            ("COOKIE_NAME", "cookie_name"),
        ):
            if (raw := get(name)) is not None:
                kw[attr] = raw
        if (raw := get("ADMIN_API_KEY")) is not None:
            kw["admin_api_key"] = Secret(raw)
        if (raw := get("METRICS_TOKEN")) is not None:
            kw["metrics_token"] = Secret(raw)
        if (raw := get("LOG_FORMAT")) is not None:
            kw["log_format"] = raw.lower()
        if (raw := get("LOG_LEVEL")) is not None:
            kw["log_level"] = raw.upper()
        if (raw := get("ALLOWED_HOSTS")) is not None:
            kw["allowed_hosts"] = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
        if (raw := get("ENVIRONMENT")) is not None:
            kw["environment"] = raw.lower()
        for name, attr in (
            ("SESSION_LIFETIME", "session_lifetime"),
            ("CLOCK_SKEW", "clock_skew"),
            ("FLOW_TTL", "flow_ttl"),
            ("MAX_LOGIN_BODY", "max_login_body"),
            ("MAX_API_BODY", "max_api_body"),
            ("MAX_SAML_RESPONSE", "max_saml_response"),
            ("METADATA_REFRESH_INTERVAL", "metadata_refresh_interval"),
            ("WEBHOOK_CONCURRENCY", "webhook_concurrency"),
            ("WEBHOOK_DISABLE_AFTER_FAILURES", "webhook_disable_after_failures"),
            ("WEBHOOK_DISABLE_AFTER", "webhook_disable_after"),
            ("WEBHOOK_SECRET_GRACE", "webhook_secret_grace"),
            ("EVENT_RETENTION_DAYS", "event_retention_days"),
            ("SCIM_LOG_RETENTION_DAYS", "scim_log_retention_days"),
            ("PORTAL_SESSION_LIFETIME", "portal_session_lifetime"),
        ):
            if (raw := get(name)) is not None:
                kw[attr] = _int(f"SSO_GATE_{name}", raw)
        for name, attr in (
            ("HTTP_TIMEOUT", "http_timeout"),
            ("DATABASE_TIMEOUT", "database_timeout"),
            ("SESSION_CACHE_TTL", "session_cache_ttl"),
            ("ROUTING_CACHE_TTL", "routing_cache_ttl"),
            ("WORKER_POLL_INTERVAL", "worker_poll_interval"),
            ("WEBHOOK_TIMEOUT", "webhook_timeout"),
            ("READYZ_TIMEOUT", "readyz_timeout"),
        ):
            if (raw := get(name)) is not None:
                kw[attr] = _float(f"SSO_GATE_{name}", raw)
        if (raw := get("ALLOW_HTTP_IDP")) is not None:
            kw["allow_http_idp"] = _bool("SSO_GATE_ALLOW_HTTP_IDP", raw)
        if (raw := get("ALLOW_PRIVATE_URLS")) is not None:
            kw["allow_private_urls"] = _bool("SSO_GATE_ALLOW_PRIVATE_URLS", raw)
        for name, attr in (
            ("PORTAL_PRODUCT_NAME", "portal_product_name"),
            ("PORTAL_LOGO_URL", "portal_logo_url"),
            ("PORTAL_ACCENT_COLOR", "portal_accent_color"),
            ("PORTAL_FRAME_ANCESTORS", "portal_frame_ancestors"),
        ):
            if (raw := get(name)) is not None:
                kw[attr] = raw
        if (raw := get("DNS_NAMESERVERS")) is not None:
            kw["dns_nameservers"] = tuple(p.strip() for p in raw.split(",") if p.strip())
        if (raw := get("TRUSTED_PROXIES")) is not None:
            kw["trusted_proxies"] = tuple(p.strip() for p in raw.split(",") if p.strip())
        if (raw := get("WORKER")) is not None:
            kw["worker"] = raw.lower()
        if (raw := get("WEBHOOK_RETRY_SCHEDULE")) is not None:
            kw["webhook_retry_schedule"] = tuple(
                _float("SSO_GATE_WEBHOOK_RETRY_SCHEDULE", part)
                for part in raw.split(",")
                if part.strip()
            )
        if (raw := get("RATE_LIMITS")) is not None:
            kw["rate_limits"] = _bool("SSO_GATE_RATE_LIMITS", raw)
        for attr, name in _RATE_LIMITS:
            if (raw := get(name)) is not None:
                kw[attr] = RateLimit.parse(raw, f"SSO_GATE_{name}")
        if (raw := get("RATE_LIMIT_MAX_KEYS")) is not None:
            kw["rate_limit_max_keys"] = _int("SSO_GATE_RATE_LIMIT_MAX_KEYS", raw)
        kw.update(overrides)
        return cls(**kw)  # type: ignore[arg-type]

    # -- derived ------------------------------------------------------------------------------

    @property
    def is_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def http_idp_allowed(self) -> bool:
        """Plain-http IdP URLs are accepted only in development or when explicitly allowed."""
        return self.allow_http_idp or self.is_development

    @property
    def base_origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def url(self, path: str) -> str:
        """Absolute URL of a path of the app (``path`` starts with ``/``)."""
        return self.base_url.rstrip("/") + path

    def gate_url(self, path: str) -> str:
        """Absolute URL of a route of the gate (``path`` relative to the prefix)."""
        return self.url(self.prefix + path)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- validation ---------------------------------------------------------------------------

    def _validate(self) -> None:
        if self.environment not in ("production", "development"):
            raise ConfigurationError(
                f"SSO_GATE_ENVIRONMENT must be 'production' or 'development', "
                f"got {self.environment!r}"
            )
        if not self.secret_keys:
            raise ConfigurationError(
                "SSO_GATE_SECRET_KEYS is required: a comma-separated list of random keys "
                "(first signs, all verify); generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        for i, key in enumerate(self.secret_keys):
            if len(key.reveal()) < 16:
                raise ConfigurationError(
                    f"SSO_GATE_SECRET_KEYS: key #{i + 1} is {len(key.reveal())} characters; "
                    "use at least 16 (32 random bytes recommended)"
                )
        if not self.base_url:
            raise ConfigurationError(
                "SSO_GATE_BASE_URL is required: the public URL of the app, "
                "e.g. https://app.example.com"
            )
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"SSO_GATE_BASE_URL must be an absolute http(s) URL, got {self.base_url!r}"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError("SSO_GATE_BASE_URL must not have a query or fragment")
        if parts.scheme == "http" and not self.is_development and not _is_loopback(parts.hostname):
            raise ConfigurationError(
                "SSO_GATE_BASE_URL must use https in production "
                "(plain http is allowed for localhost or with SSO_GATE_ENVIRONMENT=development)"
            )
        for name, value in (
            ("SSO_GATE_PREFIX", self.prefix),
            ("SSO_GATE_LOGIN_PATH", self.login_path),
        ):
            if not value.startswith("/") or value.endswith("/") and value != "/":
                raise ConfigurationError(
                    f"{name} must start with '/' and not end with '/', got {value!r}"
                )
        if self.prefix == "/":
            raise ConfigurationError("SSO_GATE_PREFIX must not be '/'")
        if not self.email_field:
            raise ConfigurationError("SSO_GATE_EMAIL_FIELD must not be empty")
        if self.admin_api_key is not None and len(self.admin_api_key.reveal()) < 16:
            raise ConfigurationError("SSO_GATE_ADMIN_API_KEY must be at least 16 characters")
        db = self.database_url
        if not (db.startswith("sqlite") or db.startswith("postgresql")):
            raise ConfigurationError(
                "SSO_GATE_DATABASE_URL must be a SQLAlchemy URL for SQLite or PostgreSQL "
                f"(sqlite:///path.db, postgresql://…), got scheme {db.split(':', 1)[0]!r}"
            )
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://")):
            raise ConfigurationError("SSO_GATE_REDIS_URL must start with redis:// or rediss://")
        for name, number, low in (
            ("SSO_GATE_SESSION_LIFETIME", self.session_lifetime, 60),
            ("SSO_GATE_CLOCK_SKEW", self.clock_skew, 0),
            ("SSO_GATE_FLOW_TTL", self.flow_ttl, 30),
            ("SSO_GATE_MAX_LOGIN_BODY", self.max_login_body, 1024),
            ("SSO_GATE_MAX_API_BODY", self.max_api_body, 1024),
            ("SSO_GATE_MAX_SAML_RESPONSE", self.max_saml_response, 4096),
            ("SSO_GATE_METADATA_REFRESH_INTERVAL", self.metadata_refresh_interval, 60),
        ):
            if number < low:
                raise ConfigurationError(f"{name} must be at least {low}, got {number}")
        if self.clock_skew > 600:
            raise ConfigurationError("SSO_GATE_CLOCK_SKEW above 600 seconds is unsafe")
        if self.http_timeout <= 0:
            raise ConfigurationError("SSO_GATE_HTTP_TIMEOUT must be positive")
        if self.database_timeout <= 0:
            raise ConfigurationError("SSO_GATE_DATABASE_TIMEOUT must be positive")
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigurationError(
                    f"SSO_GATE_TRUSTED_PROXIES: {cidr!r} is not an IP address or CIDR network"
                ) from None
        for server in self.dns_nameservers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            try:
                ipaddress.ip_address(host or server)
                if port and not 0 < int(port) < 65536:
                    raise ValueError
            except ValueError:
                raise ConfigurationError(
                    f"SSO_GATE_DNS_NAMESERVERS: {server!r} is not an IP address or IP:port"
                ) from None
        if not 60 <= self.portal_session_lifetime <= 24 * 3600:
            raise ConfigurationError(
                "SSO_GATE_PORTAL_SESSION_LIFETIME must be between 60 and 86400 seconds"
            )
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.portal_accent_color):
            raise ConfigurationError(
                "SSO_GATE_PORTAL_ACCENT_COLOR must be a colour like #4f46e5, got "
                f"{self.portal_accent_color!r}"
            )
        if self.portal_logo_url is not None and not self.portal_logo_url.startswith(
            ("https://", "http://localhost", "http://127.0.0.1", "/")
        ):
            raise ConfigurationError(
                "SSO_GATE_PORTAL_LOGO_URL must be an https URL or a path on this site"
            )
        if not self.portal_product_name.strip() or len(self.portal_product_name) > 80:
            raise ConfigurationError("SSO_GATE_PORTAL_PRODUCT_NAME must be 1-80 characters")
        if re.search(r"[;,\n\r]", self.portal_frame_ancestors):
            raise ConfigurationError(
                "SSO_GATE_PORTAL_FRAME_ANCESTORS is a CSP source list such as 'none' or "
                "https://admin.example.com (no ';' or ',')"
            )
        if self.worker not in ("inline", "off"):
            raise ConfigurationError(
                f"SSO_GATE_WORKER must be 'inline' or 'off', got {self.worker!r}"
            )
        for var, seconds in (
            ("SSO_GATE_WORKER_POLL_INTERVAL", self.worker_poll_interval),
            ("SSO_GATE_WEBHOOK_TIMEOUT", self.webhook_timeout),
        ):
            if not seconds > 0:
                raise ConfigurationError(f"{var} must be positive, got {seconds:g}")
        for name, number, low in (
            ("SSO_GATE_WEBHOOK_CONCURRENCY", self.webhook_concurrency, 1),
            ("SSO_GATE_WEBHOOK_DISABLE_AFTER_FAILURES", self.webhook_disable_after_failures, 1),
            ("SSO_GATE_WEBHOOK_DISABLE_AFTER", self.webhook_disable_after, 0),
            ("SSO_GATE_WEBHOOK_SECRET_GRACE", self.webhook_secret_grace, 0),
            ("SSO_GATE_EVENT_RETENTION_DAYS", self.event_retention_days, 1),
            ("SSO_GATE_SCIM_LOG_RETENTION_DAYS", self.scim_log_retention_days, 1),
        ):
            if number < low:
                raise ConfigurationError(f"{name} must be at least {low}, got {number}")
        if not self.webhook_retry_schedule or any(d < 0 for d in self.webhook_retry_schedule):
            raise ConfigurationError(
                "SSO_GATE_WEBHOOK_RETRY_SCHEDULE must be a comma-separated list of seconds >= 0"
            )
        if not self.cookie_name.replace("_", "").replace("-", "").isalnum():
            raise ConfigurationError("SSO_GATE_COOKIE_NAME may use letters, digits, '_' and '-'")
        self._validate_observability()

    def _validate_observability(self) -> None:
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(
                f"SSO_GATE_LOG_FORMAT must be 'text' or 'json', got {self.log_format!r}"
            )
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigurationError(
                "SSO_GATE_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
                f"got {self.log_level!r}"
            )
        if self.metrics_token is not None and len(self.metrics_token.reveal()) < 16:
            raise ConfigurationError("SSO_GATE_METRICS_TOKEN must be at least 16 characters")
        if not 0 < self.readyz_timeout <= 60:
            raise ConfigurationError(
                f"SSO_GATE_READYZ_TIMEOUT must be between 0 and 60 seconds, "
                f"got {self.readyz_timeout:g}"
            )
        for host in self.allowed_hosts:
            name = host[2:] if host.startswith("*.") else host
            if host != "*" and not re.fullmatch(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]", name):
                raise ConfigurationError(
                    f"SSO_GATE_ALLOWED_HOSTS: {host!r} is not a host name (example.com, "
                    "*.example.com, an IP address, or *)"
                )

    def __repr__(self) -> str:
        fields = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "database_url" or f.name == "redis_url":
                value = _mask_url(value)
            fields.append(f"{f.name}={value!r}")
        return "Settings(" + ", ".join(fields) + ")"


def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1")


def _mask_url(url: str | None) -> str | None:
    """Hide a password embedded in a database or Redis URL."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


def _float(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def _bool(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
