"""Prometheus metrics of one gate (``gate.metrics``), served at ``{prefix}/metrics``.

Each gate has its own :class:`prometheus_client.CollectorRegistry`, so the app's own metrics
(prometheus_client's default registry) are not mixed in and two gates in one process (tests) do
not collide. Every label takes its value from a small closed set — a route *template*, never a
raw path; an error code, never a message — so a hostile client cannot create series.

Several worker processes (gunicorn, ``uvicorn --workers``): prometheus_client's own
multi-process mode applies. With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory, before
the processes start) every process writes its values there and the exposition adds them up,
whichever worker answers the scrape. Only counters and histograms are used, which that mode
aggregates without per-process bookkeeping.
"""

from __future__ import annotations

import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import values as _values

__all__ = ["GateMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds. Gate routes range from ~1 ms (cache hits) to the IdP's token endpoint round trip.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SCIM_RESOURCES = frozenset(
    {
        "Users",
        "Groups",
        "ServiceProviderConfig",
        "Schemas",
        "ResourceTypes",
        "Bulk",
        ".search",
        "Me",
    }
)
_REASON = re.compile(r"[a-z0-9_.]{1,64}")
_SCIM_ROUTE = "/scim/v2/{directory_id}/"


def _method(method: str) -> str:
    return method if method in _METHODS else "other"


class GateMetrics:
    """The gate's counters and histograms (names prefixed ``sso_gate_``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.logins = Counter(
            "sso_gate_logins",
            "SSO sign-ins finished at an ACS or callback, by protocol, outcome and reason "
            "(the error code of a failure; 'none' for a success).",
            ("protocol", "outcome", "reason"),
            registry=r,
        )
        self.scim_requests = Counter(
            "sso_gate_scim_requests",
            "SCIM requests by method, resource type and HTTP status.",
            ("method", "resource", "status"),
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "sso_gate_webhook_deliveries",
            "Webhook delivery attempts by outcome: succeeded, retrying (a retry is scheduled) "
            "or failed (no retry left).",
            ("outcome",),
            registry=r,
        )
        self.webhook_latency = Histogram(
            "sso_gate_webhook_delivery_duration_seconds",
            "Duration of webhook delivery attempts (until the receiver answered or timed out).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "sso_gate_http_requests",
            "Requests to the gate's own routes (under the prefix) by method, route template "
            "and status. Requests passed through to the app are not counted.",
            ("method", "route", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "sso_gate_http_request_duration_seconds",
            "Duration of requests to the gate's own routes, by method and route template, "
            "until the response started.",
            ("method", "route"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    # -- recording -----------------------------------------------------------------------------

    def login(self, protocol: str, outcome: str, reason: str = "none") -> None:
        """One finished sign-in (``outcome``: succeeded or failed)."""
        if not _REASON.fullmatch(reason):
            reason = "other"
        self.logins.labels(protocol, outcome, reason).inc()

    def webhook_delivery(self, outcome: str, seconds: float) -> None:
        self.webhook_deliveries.labels(outcome).inc()
        self.webhook_latency.observe(seconds)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request to a gate route; ``route`` is its template relative to the prefix
        (``/api/organizations/{id}``), or ``unmatched``."""
        m = _method(method)
        self.requests.labels(m, route, str(status)).inc()
        self.latency.labels(m, route).observe(seconds)
        if route.startswith(_SCIM_ROUTE):
            resource = route[len(_SCIM_ROUTE) :].split("/", 1)[0]
            if resource not in _SCIM_RESOURCES:
                resource = "unknown"
            self.scim_requests.labels(m, resource, str(status)).inc()

    # -- exposition ----------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's values, or every process's in
        prometheus_client's multi-process mode."""
        if _values.ValueClass is not _values.MutexValue:  # PROMETHEUS_MULTIPROC_DIR is set
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
