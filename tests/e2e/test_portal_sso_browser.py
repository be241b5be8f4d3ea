"""The portal's SSO setup in real Chromium against a real SAML IdP (SimpleSAMLphp): an IT admin
opens a one-time link, picks "generic SAML", reads the ACS URL and entity ID off the page (our
test plays the IdP admin and registers them at the IdP), pastes the IdP's metadata, runs a real
test sign-in through the IdP — the result page shows the normalized profile, and the admin's
browser gets no app session — and activates the connection."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from ..peers.simplesamlphp import SpConfig
from .conftest import SamlStack
from .test_saml_browser import TIMEOUT_MS, chromium  # noqa: F401  (the browser fixture)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e


def portal_link(stack: SamlStack) -> str:
    async def go() -> str:
        gate = stack.gate()
        try:
            return str((await gate.portal.create_link(stack.org_id, "sso")).link)
        finally:
            await gate.aclose()

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's loop
        return pool.submit(asyncio.run, go()).result()


@pytest.fixture
def page(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:  # noqa: F811
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    try:
        yield p
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            p.screenshot(path=f"/tmp/sso_gate_{request.node.name}.png", full_page=True)
        context.close()


def test_it_admin_sets_up_saml_and_tests_it(page: Page, any_saml_stack: SamlStack) -> None:
    stack = any_saml_stack
    idp_origin = stack.idp.base_url.split("/simplesaml/")[0]
    page.goto(portal_link(stack))
    assert page.url.endswith("/sso-gate/portal/sso")
    with page.expect_navigation():
        page.locator('button[name=setup][value^="generic_saml:"]').first.click()
    connection_url = page.url
    acs_url = (page.locator("#acs-url").text_content() or "").strip()
    entity_id = (page.locator("#sp-entity-id").text_content() or "").strip()
    assert acs_url.startswith(stack.url("/sso-gate/sso/saml/")) and acs_url.endswith("/acs")
    # the IdP's admin enters those two values at the IdP
    stack.idp.add_sp(SpConfig(entity_id=entity_id, acs_url=acs_url))
    page.fill("#metadata_xml", stack.idp.metadata_xml)
    with page.expect_navigation():
        page.get_by_role("button", name="Save metadata").click()
    assert page.locator("#idp-saved").is_visible()
    # a real test sign-in through the IdP
    page.click("#test-link")
    page.wait_for_url(re.compile(re.escape(idp_origin) + r"/simplesaml/.*loginuserpass"))
    page.fill("#username", "alice")
    page.fill("#password", "alicepass")
    page.click("#submit_button")
    page.wait_for_url(re.compile(r"/sso-gate/portal/sso/test/"))
    assert page.locator("[data-state]").first.get_attribute("data-state") == "succeeded"
    assert page.locator("#profile [data-field=email]").inner_text() == "alice@acme.test"
    # a test sign-in never signs the admin's browser into the app
    names = {c["name"] for c in page.context.cookies(stack.base_url)}
    assert "sso_gate_session" not in names
    # activate
    page.goto(connection_url)
    with page.expect_navigation():
        page.get_by_role("button", name="Activate").click()
    assert page.get_by_role("button", name="Deactivate").is_visible()
