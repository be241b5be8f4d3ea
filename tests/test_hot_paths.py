"""The per-request fast paths (see BENCHMARKS.md) behave exactly like the plain code they replace:
form parsing, domain normalization, the routing and session caches."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import pytest

from sso_gate import SSOGate, ValidationError
from sso_gate._domains import email_domain, normalize_domain
from sso_gate.models import Profile
from sso_gate.services import sessions as sessions_module
from sso_gate.services.routing import RoutingService
from sso_gate.web.middleware import _form_email, read_cookie
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

FORMS = [
    "",
    "&",
    "email=bob@example.com&password=x",
    "password=x&email=bob%40example.com",
    "email=&email=second",
    "email&email=x",
    "e%6Dail=enc&email=plain",
    "em+ail=space&email=x",
    "a=1&&email= padded+value &x",
    "email=a%2Bb+c%ZZ",
    "=nokey&email=x",
    "email=1=2",
]


def _reference(text: str, field: str) -> str | None:
    """What the login interception always did."""
    for key, value in parse_qsl(text, keep_blank_values=True, max_num_fields=1000):
        if key == field:
            return value.strip() or None
    return None


@pytest.mark.parametrize("text", FORMS)
@pytest.mark.parametrize("field", ["email", "em ail", "", "password"])
def test_form_email_matches_parse_qsl(text: str, field: str) -> None:
    assert _form_email(text.encode(), field) == _reference(text, field)


def test_form_email_keeps_the_field_limit() -> None:
    assert _form_email(b"&" * 999, "email") is None  # 1000 fields: allowed
    with pytest.raises(ValidationError, match="more than 1000 fields"):
        _form_email(b"email=x" + b"&" * 1000, "email")  # 1001 fields, even with a match first


def test_form_email_strips_and_refuses_bad_utf8() -> None:
    assert _form_email(b"email=+bob%40example.com+&p=1", "email") == "bob@example.com"
    assert _form_email(b"email=+++&p=1", "email") is None
    with pytest.raises(ValidationError):
        _form_email(b"email=\xff", "email")


def test_read_cookie() -> None:
    headers = [
        (b"host", b"app.test"),
        (b"cookie", b"a=sso=no; sso_x=no"),
        (b"cookie", b"theme=dark;  sso=value ; sso=second"),
    ]
    assert read_cookie(headers, b"sso") == "value"
    assert read_cookie(headers, b"other") is None
    assert read_cookie([(b"cookie", b"sso=\xff")], b"sso") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("  a-b.example  ", "a-b.example"),
        ("x" * 63 + ".test", "x" * 63 + ".test"),
        ("bücher.test", "xn--bcher-kva.test"),
        ("\u212aelvin.test", "kelvin.test"),  # KELVIN SIGN lowercases to ASCII
    ],
)
def test_normalize_domain(value: str, expected: str) -> None:
    assert normalize_domain(value) == expected
    assert normalize_domain(expected) == expected


@pytest.mark.parametrize(
    "value",
    ["", "localhost", "a..b", "-a.test", "a-.test", "x" * 64 + ".test", "1.2.3.4", "a_b.test"],
)
def test_normalize_domain_refusals(value: str) -> None:
    with pytest.raises(ValidationError):
        normalize_domain(value)


def test_email_domain() -> None:
    assert email_domain("Bob@Example.COM") == "example.com"
    assert email_domain("@example.com") is None
    assert email_domain("bob@") is None
    assert email_domain("x" * 320 + "@example.com") is None


async def test_routing_cache_ttl_invalidation_and_capacity(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme", domains=["acme.test"])
    routing = RoutingService(gate._rt, maxsize=2)
    assert (await routing.for_email("a@acme.test")).organization_id == org.id  # type: ignore[union-attr]
    assert routing.cached("a@acme.test") is not None and routing.cache_size == 1
    await routing.for_domain("b.test")
    await routing.for_domain("c.test")  # full: the oldest entry (acme.test) goes
    assert routing.cache_size == 2 and routing.cached("a@acme.test") is None
    routing.invalidate(["b.test"])
    assert routing.cache_size == 1
    routing.invalidate()
    assert routing.cache_size == 0

    short = RoutingService(gate._rt)
    short._ttl = 0.01
    await short.for_email("a@acme.test")
    assert short.cached("a@acme.test") is not None
    await asyncio.sleep(0.02)
    assert short.cached("a@acme.test") is None and short.cache_size == 0


async def test_routing_fast_path_only_for_canonical_keys(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme", domains=["acme.test"])
    # for_domain with a non-normalized name caches that name (as it always did)...
    assert (await gate.routing.for_domain("ACME.test")).organization_id is None
    # ...but an email's domain is normalized before it is routed, cache or not.
    assert gate.routing.cached("bob@ACME.test") is None
    d = await gate.routing.for_email("bob@ACME.test")
    assert d is not None and d.organization_id == org.id
    assert gate.routing.cached("bob@acme.test") == d
    assert gate.routing.cached(" bob@acme.test ") == d  # the address is stripped, as before
    assert gate.routing.cached("@acme.test") is None


def _profile() -> Profile:
    return Profile(
        id="prof_1",
        idp_id="sub-1",
        email="alice@acme.test",
        first_name=None,
        last_name=None,
        organization_id="org_1",
        connection_id="conn_1",
        connection_type="GenericOIDC",
    )


async def test_session_cache_ttl_and_capacity(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = SSOGate(make_settings(database_url, session_cache_ttl=0.05))
    await g.migrate()
    try:
        c1, s1 = await g.sessions.create(_profile())
        assert g.sessions.cached(c1) is None  # created, not yet verified
        assert await g.sessions.verify(c1) == s1
        assert g.sessions.cached(c1) == s1
        await asyncio.sleep(0.06)
        assert g.sessions.cached(c1) is None  # the cache TTL is over: verify again
        assert await g.sessions.verify(c1) == s1

        monkeypatch.setattr(sessions_module, "_CACHE_MAXSIZE", 2)
        c2, _ = await g.sessions.create(_profile())
        c3, _ = await g.sessions.create(_profile())
        await g.sessions.verify(c2)
        await g.sessions.verify(c3)  # full: the oldest entry (c1) goes
        assert g.sessions.cached(c1) is None
        assert g.sessions.cached(c2) is not None and g.sessions.cached(c3) is not None
        assert await g.sessions.revoke(s1.id)
        assert await g.sessions.verify(c1) is None
    finally:
        await g.aclose()
