"""Domain verification through dnspython against a real DNS server on loopback."""

from __future__ import annotations

import pytest

from sso_gate import ConfigurationError, Settings, SSOGate
from tests.conftest import make_settings
from tests.peers.dns_server import run_dns

pytestmark = pytest.mark.anyio


async def test_verification_through_a_real_dns_server(database_url: str) -> None:
    with run_dns() as dns:
        gate = SSOGate(make_settings(database_url, dns_nameservers=(f"127.0.0.1:{dns.port}",)))
        await gate.migrate()
        try:
            org = await gate.organizations.create("Acme")
            domain = await gate.domains.add(org.id, "acme.test")
            # the name does not exist yet
            failed = await gate.domains.verify(org.id, "acme.test")
            assert failed.state == "failed"
            assert failed.verification_error == "the domain acme.test does not exist in DNS"
            dns.records["acme.test"] = ["v=spf1 -all"]
            failed = await gate.domains.verify(org.id, "acme.test")
            assert "1 other TXT record(s) found" in (failed.verification_error or "")
            dns.records["acme.test"] = ["v=spf1 -all", domain.txt_record or ""]
            verified = await gate.domains.verify(org.id, "acme.test")
            assert verified.state == "verified" and verified.verification_error is None
            assert dns.queries.count("acme.test") == 3
        finally:
            await gate.aclose()


def test_bad_nameserver_setting() -> None:
    with pytest.raises(ConfigurationError, match="SSO_GATE_DNS_NAMESERVERS"):
        Settings.from_env(
            {
                "SSO_GATE_SECRET_KEYS": "k" * 32,
                "SSO_GATE_BASE_URL": "https://app.example.com",
                "SSO_GATE_DNS_NAMESERVERS": "dns.example.com",
            }
        )
