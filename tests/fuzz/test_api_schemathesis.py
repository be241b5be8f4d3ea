"""Schemathesis against the management API's own OpenAPI document, in-process (ASGI).

Every documented operation gets generated requests, valid and invalid (schemathesis' positive
and negative modes), sent with the admin key to a gate on SQLite that holds one of every object;
hooks swap fuzzed path parameters, ids in the query and ``organization_id`` in bodies for those
real objects part of the time, so the handlers' success paths are fuzzed too (a DELETE gets a
fresh object of its own). Every response must pass every schemathesis check: never a 5xx, only
documented status codes, bodies and content types that match the document, a 405 with a
complete ``Allow``, 401 without the key, schema-invalid input refused with a 4xx and
schema-valid input not refused with a 400/422 — except the cross-field rules an OpenAPI
document cannot state (``ALLOWED_REFUSALS``).

Besides schemathesis' deterministic coverage phase (boundary values, wrong types, unexpected
methods, missing auth for every operation), CI runs ``fuzz_examples(8)`` random examples per
operation; ``fuzz/README.md`` has the long run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import HealthCheck
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.python.asgi import get_client, shutdown_lifespans

from sso_gate.web.openapi import openapi_document
from tests.fuzz._harness import (
    ADMIN_KEY,
    API,
    AUTH,
    Seeded,
    build_gate,
    fuzz_examples,
    inner_app,
    no_network,
    record,
    seed,
)

VICTIM = "victim-to-delete"


class ProxyApp:
    """The ASGI app schemathesis calls: bound at import time (``parametrize`` needs it then),
    pointed at the seeded gate by the module fixture. It answers the lifespan itself and closes
    the gate at shutdown, on the event loop that served the requests."""

    def __init__(self) -> None:
        self.app: Any = None
        self.gate: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.gate is not None:
                        await self.gate.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.app is not None, "the fuzz_app fixture did not run"
        await self.app(scope, receive, send)


PROXY = ProxyApp()
SEEDED = Seeded()

schema = schemathesis.openapi.from_dict(openapi_document(f"http://testserver{API}"))
schema.app = PROXY


@schema.auth()
class AdminKey:
    """The management API's bearer key, as schemathesis' explicit auth (so its ignored-auth
    check knows the key is valid and probes without it and with a wrong one)."""

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        return ADMIN_KEY

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


schema.config.generation.update(max_examples=fuzz_examples(8), database="none")
# a loaded CI machine is slow, and some bodies (audit batches) are large by design
schema.config.update(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ]
)


def _real_id(path: str, name: str) -> str | None:
    """The seeded object a path parameter of ``path`` names."""
    if name == "domain":
        return SEEDED.domain
    if path.endswith(("/saml_idp", "/refresh_metadata")):
        return SEEDED.saml_connection
    for prefix, attr in (
        ("/organizations/", "organization"),
        ("/directories/", "directory"),
        ("/directory_users/", "user"),
        ("/directory_groups/", "group"),
        ("/connections/", "oidc_connection"),
        ("/webhook_endpoints/", "webhook_endpoint"),
        ("/events/", "event"),
        ("/audit_logs/events/", "audit_event"),
        ("/audit/events/", "audit_event"),
        ("/audit_logs/streams/", "audit_stream"),
    ):
        if path.startswith(prefix):
            value = getattr(SEEDED, attr)
            return str(value) if value else None
    return None


_QUERY_IDS = {
    "organization_id": "organization",
    "directory": "directory",
    "group": "group",
    "user": "user",
    "event_id": "event",
    "domains": "domain",
}


def _real_path_parameters(case: schemathesis.Case, mix: bool) -> dict[str, Any] | None:
    real: dict[str, Any] = {}
    for name, generated in (case.path_parameters or {}).items():
        value = _real_id(case.operation.path, name)
        if value is None or not isinstance(generated, str):
            continue
        # a DELETE of the object itself gets a fresh one (test_api creates it)
        only_id = case.operation.path.count("{") == 1
        is_target = name == "id" and case.method.upper() == "DELETE" and only_id
        real[name] = VICTIM if is_target else value
        if mix:  # a real organization with a fuzzed domain, say
            break
    return {**case.path_parameters, **real} if real else None


@schema.hook
def flatmap_case(
    context: schemathesis.HookContext, case: schemathesis.Case
) -> st.SearchStrategy[schemathesis.Case]:
    """Part of the time, put the seeded objects' ids where the case names objects: path
    parameters, id filters in the query, ``organization_id`` in a body — only in components
    generated valid, so a negative case keeps its violation."""

    def negative(location: ParameterLocation) -> bool:
        return case.meta is not None and case.meta.is_negative_at(location)

    def substitute(choice: tuple[bool, bool, bool, bool]) -> schemathesis.Case:
        in_path, mix, in_query, in_body = choice
        if in_path and not negative(ParameterLocation.PATH):
            real = _real_path_parameters(case, mix)
            if real is not None:
                case.path_parameters = real
        if in_query and case.query and not negative(ParameterLocation.QUERY):
            ids = {
                k: getattr(SEEDED, _QUERY_IDS[k])
                for k, v in case.query.items()
                if k in _QUERY_IDS and isinstance(v, str)
            }
            if ids:
                case.query = {**case.query, **ids}
        body = case.body
        if (
            in_body
            and isinstance(body, dict)
            and isinstance(body.get("organization_id"), str)
            and not negative(ParameterLocation.BODY)
        ):
            case.body = {**body, "organization_id": SEEDED.organization}
        return case

    return st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()).map(substitute)


# 422s for schema-valid input that the document cannot rule out: rules across several fields,
# or on values no JSON Schema keyword describes. (operation regex, error field regex, why).
ALLOWED_REFUSALS: list[tuple[str, str, str]] = [
    (r".*", r"range_start", "range_start must be before range_end"),
    (
        r".* /(organizations.*|portal/links|portal/generate_link)",
        r"domains?|domain_data",
        "a DNS name (two labels or more, valid IDNA, not an IP address, not a consumer mail "
        "domain): IDNA validity has no JSON Schema keyword",
    ),
    (r"GET /directory_(users|groups)", r"directory", "one of directory/organization_id/…"),
    (r".* /webhook_endpoints.*", r"events", "a wildcard must match a known event"),
    (r".* /webhook_endpoints.*", r"url", "a public http(s) URL (checked by resolving it)"),
    (r"POST /webhook_endpoints/\{id\}/redeliver", r"event_id", "event_id xor since/until"),
    (r"POST /webhook_endpoints/\{id\}/redeliver", r"since", "since must be before until"),
    (r".*", r"after|before", "a cursor must be an id from list_metadata; not both"),
    (r"GET /audit(_logs)?/(events|export)", r"actions", "comma-separated <target>.<verb> names"),
    (
        r"POST /connections|PUT /connections/\{id\}/saml_idp",
        r"metadata_xml|metadata_url|idp_entity_id|sso_url|certificates.*",
        "exactly one of metadata_xml, metadata_url or idp_entity_id + sso_url + certificates; "
        "well-formed metadata and PEM certificates",
    ),
    (
        r"POST /connections",
        r"issuer|client_id|client_secret|connection_type|idp_initiated_landing",
        "an https issuer (http in development) without query; client id and secret unless a "
        "draft; the connection type of the kind given; a landing path on this site",
    ),
    # audit log streams (routes_audit_streams.py): settings differ per stream type; the cursor
    # is bounded by the organization's chain; its document lacks minLength on organization_id
    (
        r".* /audit_logs/streams.*",
        r"config\..*|cursor|organization_id",
        "per-type settings, chain positions",
    ),
]


@schema.hook
def filter_failure(
    context: schemathesis.HookContext, failure: Any, case: schemathesis.Case, response: Any
) -> bool:
    if not isinstance(failure, RejectedPositiveData):
        return True
    try:
        field = str(response.json()["field"])
    except (ValueError, TypeError, KeyError):
        return True
    operation = f"{case.method.upper()} {case.path}"
    return not any(
        re.fullmatch(op, operation) and re.fullmatch(f, field, re.DOTALL)
        for op, f, _ in ALLOWED_REFUSALS
    )


def _create_victim(path: str) -> str:
    """A fresh object for a DELETE to remove, made through the API."""
    with get_client(PROXY) as client:
        if path.startswith("/organizations/"):
            r = client.post(f"{API}/organizations", json={"name": "Victim"}, headers=AUTH)
        elif path.startswith("/directories/"):
            r = client.post(
                f"{API}/directories", json={"organization_id": SEEDED.organization}, headers=AUTH
            )
        elif path.startswith("/connections/"):
            r = client.post(
                f"{API}/connections",
                json={
                    "organization_id": SEEDED.organization,
                    "oidc": {
                        "issuer": "https://victim.fuzz.test",
                        "client_id": "c",
                        "client_secret": "s",
                    },
                },
                headers=AUTH,
            )
        elif path.startswith("/webhook_endpoints/"):
            r = client.post(
                f"{API}/webhook_endpoints",
                json={"url": "https://victim.fuzz.test/hook", "events": ["*"]},
                headers=AUTH,
            )
        elif path.startswith("/audit_logs/streams/"):
            r = client.post(f"{API}/audit_logs/streams", json=SEEDED.stream_body(), headers=AUTH)
        else:
            raise AssertionError(f"no victim factory for {path}")
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


# Both databases. On PostgreSQL this run found 500s for text holding U+0000, which PostgreSQL
# cannot store or compare; string columns now refuse it on both backends (422 invalid_text,
# store/tables.String) and the OpenAPI document says so for what clients send.
@pytest.fixture(scope="module", autouse=True)
def fuzz_app(module_database_url: str) -> Iterator[None]:
    with no_network():
        gate = build_gate(module_database_url)
        PROXY.gate, PROXY.app = gate, gate.wrap(inner_app())
        try:
            with get_client(PROXY) as client:
                seeded = seed(client.request)
            for name in seeded.__dataclass_fields__:
                setattr(SEEDED, name, getattr(seeded, name))
            yield
        finally:
            shutdown_lifespans()  # closes the gate (ProxyApp)
            PROXY.app = PROXY.gate = None


def test_served_document_is_the_fuzzed_one() -> None:
    with get_client(PROXY) as client:
        served = client.get(f"{API}/openapi.json").json()
    assert served["paths"] == schema.raw_schema["paths"]
    assert served["components"] == schema.raw_schema["components"]


@schema.parametrize()
def test_api(case: schemathesis.Case) -> None:
    # only a DELETE consumes a fresh object; schemathesis may reuse the marker value as a plain
    # example for other operations (then it is just an unknown id: 404)
    if (
        case.method.upper() == "DELETE"
        and case.path_parameters
        and case.path_parameters.get("id") == VICTIM
    ):
        case.path_parameters["id"] = _create_victim(case.path)
    response = case.call_and_validate()
    record("api", case.operation.label, response.status_code)
