import pytest

from sso_gate import SSOGate

pytestmark = pytest.mark.anyio


async def test_migrate_create_org_and_route(gate: SSOGate) -> None:
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    decision = await gate.routing.for_email("alice@ACME.test")
    assert decision is not None and decision.organization_id == org.id
    assert not decision.sso_required  # no connection yet
