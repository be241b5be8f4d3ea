"""Property tests for email/domain normalization (``sso_gate._domains``) and home-realm routing
(``RoutingService``, ``OrganizationsService`` domain claims):

* ``normalize_domain`` raises nothing but ``ValidationError`` on any text (IDN included), is
  idempotent, and returns lowercase ASCII LDH labels, two or more, at most 253 characters;
* ``email_domain`` never raises and agrees with ``normalize_domain`` on the domain part;
* every spelling of a consumer mail domain (case, trailing dot, spaces, the Unicode form) is
  refused as an organization domain and routes to no organization;
* every spelling of a claimed domain (Unicode or punycode) routes to its organization, the
  cached hot path agrees with the full lookup, and no text makes routing raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_gate import SSOGate
from sso_gate._domains import CONSUMER_DOMAINS, email_domain, normalize_domain, normalize_email
from sso_gate.exceptions import ValidationError
from tests.conftest import make_settings
from tests.fuzz._harness import fuzz_examples, record

PROPERTY = settings(
    database=None,
    deadline=None,
    max_examples=fuzz_examples(200),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

LABEL_CHARS = st.sampled_from(
    list("abcxyz0189-_.")
    + ["A", "Z", "ß", "ü", "ö", "é", "ı", "İ", "ﬁ", "Ⅸ", "а", "р", "ε", "中", "文"]
    + ["\u200d", "\u00ad", "\u0301", "。", "．", "\x00", " ", "@", "\ufeff", "🙂"]
)
domainish = st.one_of(
    st.text(max_size=40),
    st.lists(st.text(LABEL_CHARS, min_size=0, max_size=12), min_size=1, max_size=5).map(".".join),
    st.lists(
        st.sampled_from(["xn--", "--", "bcher-kva", "a", "com", "0", "-", "münchen", "例え"]),
        max_size=5,
    ).map(".".join),
    st.integers(0, 300).map(lambda n: "a" * n + ".com"),
    st.integers(0, 10).map(lambda n: ".".join(["a" * 63] * n)),
)
IDN = "bücher-fuzz.example"
PUNY = IDN.encode("idna").decode()  # xn--bcher-fuzz-9db.example


@PROPERTY
@given(domainish, st.sampled_from(["", " ", ".", "\t"]))
def test_normalize_domain(text: str, suffix: str) -> None:
    try:
        out = normalize_domain(text + suffix)
    except ValidationError as exc:
        assert exc.field == "domain"
        record("domains", "normalize_domain", "refused")
        return
    assert normalize_domain(out) == out
    assert out.isascii() and out == out.lower() and len(out) <= 253
    labels = out.split(".")
    assert len(labels) >= 2 and not labels[-1].isdigit()
    for label in labels:
        assert 1 <= len(label) <= 63 and label[0] != "-" and label[-1] != "-"
        assert set(label) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    record("domains", "normalize_domain", "accepted")


@PROPERTY
@given(st.one_of(st.text(max_size=60), st.emails(), domainish.map(lambda d: "u@" + d)))
def test_email_domain(email: Any) -> None:
    domain = email_domain(email)
    local, sep, written = email.strip().rpartition("@") if isinstance(email, str) else ("", "", "")
    if domain is None:
        if sep and local and written and len(email) <= 320:
            with pytest.raises(ValidationError):
                normalize_domain(written)
    else:
        assert domain == normalize_domain(written)
        assert normalize_email(email).rpartition("@")[2] == written.lower()
    record("domains", "email_domain", "domain" if domain else "none")


def spellings(domain: str) -> st.SearchStrategy[str]:
    """Ways a person writes the same domain."""
    return st.builds(
        lambda upper, dot, pad: (
            pad + (domain.upper() if upper else domain) + ("." if dot else "") + pad
        ),
        st.booleans(),
        st.booleans(),
        st.sampled_from(["", " ", "\t"]),
    )


class Realm:
    runner: asyncio.Runner
    gate: SSOGate
    org_id: str


R = Realm()


@pytest.fixture(scope="module", autouse=True)
def realm(module_database_url: str) -> Iterator[None]:
    with asyncio.Runner() as runner:
        gate = SSOGate(make_settings(module_database_url, worker="off"))

        async def setup() -> str:
            await gate.migrate()
            org = await gate.organizations.create(
                "Realm", domains=["acme-fuzz.test", IDN], sso_policy="required"
            )
            return org.id

        R.runner, R.gate, R.org_id = runner, gate, runner.run(setup())
        yield
        runner.run(gate.aclose())


@PROPERTY
@given(st.sampled_from(sorted(CONSUMER_DOMAINS)).flatmap(spellings))
def test_consumer_domains_are_refused_and_route_nowhere(domain: str) -> None:
    with pytest.raises(ValidationError):
        R.runner.run(R.gate.organizations.add_domain(R.org_id, domain))
    with pytest.raises(ValidationError):
        R.runner.run(R.gate.organizations.create("Free mail", domains=[domain]))
    decision = R.runner.run(R.gate.routing.for_email(f"someone@{domain.strip()}"))
    assert decision is not None and decision.organization_id is None
    record("domains", "consumer domain", "refused")


@PROPERTY
@given(
    st.one_of(spellings("acme-fuzz.test"), spellings(IDN), spellings(PUNY)),
    st.sampled_from(["alice", "Bob.Smith+tag", "x"]),
)
def test_claimed_domains_route_to_their_organization(domain: str, local: str) -> None:
    email = f"{local}@{domain.strip()}"
    decision = R.runner.run(R.gate.routing.for_email(email))
    assert decision is not None and decision.organization_id == R.org_id
    assert decision.domain in ("acme-fuzz.test", PUNY)
    cached = R.gate.routing.cached(email)
    assert cached is None or cached == decision
    record("domains", "claimed domain", "routed")


@PROPERTY
@given(st.one_of(st.text(max_size=60), domainish.map(lambda d: "u@" + d), st.emails()))
def test_routing_never_raises(email: str) -> None:
    decision = R.runner.run(R.gate.routing.for_email(email))
    assert (decision is None) == (email_domain(email) is None)
    cached = R.gate.routing.cached(email)
    assert cached is None or cached == decision
    record("domains", "routing", "decision" if decision else "not an email")
