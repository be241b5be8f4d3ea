"""Audit entries written while serving a request name the actor and where the call came from;
X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import httpx
import pytest

from sso_gate import SSOGate
from sso_gate.web._client import ProxyPolicy
from tests.conftest import ADMIN_KEY, make_settings
from tests.web.conftest import inner_app

pytestmark = pytest.mark.anyio
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {
        "client": (peer, 1234),
        "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded],
    }


@pytest.mark.parametrize(
    ("trusted", "sc", "expected"),
    [
        ((), scope("198.51.100.1", "203.0.113.9"), "198.51.100.1"),  # nobody trusted
        (("10.0.0.0/8",), scope("198.51.100.1", "203.0.113.9"), "198.51.100.1"),  # forged
        (("10.0.0.0/8",), scope("10.0.0.2", "203.0.113.9"), "203.0.113.9"),
        (("10.0.0.0/8",), scope("10.0.0.2", "1.1.1.1, 203.0.113.9, 10.0.0.7"), "203.0.113.9"),
        (("10.0.0.0/8",), scope("10.0.0.2", "1.1.1.1", "203.0.113.9"), "203.0.113.9"),
        (("10.0.0.0/8",), scope("10.0.0.2", "not-an-ip"), "10.0.0.2"),
        (("10.0.0.0/8",), scope("10.0.0.2"), "10.0.0.2"),
        (("::1/128",), scope("::1", "2001:db8::5"), "2001:db8::5"),
    ],
)
def test_client_ip(trusted: tuple[str, ...], sc: dict[str, object], expected: str) -> None:
    assert ProxyPolicy(trusted).client_ip(sc) == expected


def test_bad_trusted_proxies_setting() -> None:
    from sso_gate import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match="SSO_GATE_TRUSTED_PROXIES"):
        Settings.from_env(
            {
                "SSO_GATE_SECRET_KEYS": "k" * 32,
                "SSO_GATE_BASE_URL": "https://app.example.com",
                "SSO_GATE_TRUSTED_PROXIES": "10.0.0.0/8,nope",
            }
        )


async def test_api_and_scim_actions_carry_actor_and_context(database_url: str) -> None:
    gate = SSOGate(make_settings(database_url, trusted_proxies=("127.0.0.0/8",)))
    await gate.migrate()
    transport = httpx.ASGITransport(app=gate.wrap(inner_app()), client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
        r = await client.post(
            "/sso-gate/api/organizations",
            json={"name": "Acme", "domains": ["acme.test"]},
            headers={
                "Authorization": f"Bearer {ADMIN_KEY}",
                "User-Agent": "ops-script/1.0",
                "X-Forwarded-For": "203.0.113.9",
            },
        )
        assert r.status_code == 201, r.text
        org_id = r.json()["id"]
        (created,) = (await gate.audit.list(org_id, actions=["organization.created"])).data
        assert created.actor == {"type": "api_key", "id": "admin_api_key", "name": "management API"}
        assert created.context == {"location": "203.0.113.9", "user_agent": "ops-script/1.0"}

        directory, token = await gate.directories.create(org_id)
        r = await client.post(
            f"/sso-gate/scim/v2/{directory.id}/Users",
            json={"schemas": [USER], "userName": "alice@acme.test"},
            headers={"Authorization": f"Bearer {token}", "User-Agent": "Okta SCIM Client 1.0.0"},
        )
        assert r.status_code == 201, r.text
        (provisioned,) = (await gate.audit.list(org_id, actions=["dsync.user.created"])).data
        assert provisioned.actor["type"] == "directory" and provisioned.actor["id"] == directory.id
        assert provisioned.context["user_agent"] == "Okta SCIM Client 1.0.0"
        assert provisioned.targets[0]["type"] == "directory_user"
        # a failed authentication writes nothing
        before = len((await gate.audit.list(org_id, limit=100)).data)
        r = await client.post(
            f"/sso-gate/scim/v2/{directory.id}/Users",
            json={"schemas": [USER], "userName": "mallory@acme.test"},
            headers={"Authorization": "Bearer wrong"},
        )
        assert r.status_code == 401
        assert len((await gate.audit.list(org_id, limit=100)).data) == before
    await gate.aclose()
