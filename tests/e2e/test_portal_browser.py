"""The admin portal in a real headless Chromium: the example app under uvicorn, a DNS server
on loopback, an IT admin who opens a one-time link and verifies a domain — with the keyboard
only, without JavaScript, at phone width, and under the portal's Content-Security-Policy."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..peers.dns_server import TxtServer, run_dns
from .conftest import AppStack, _stop, _wait_ready, app_env, free_port, need, start_app
from .test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is needed for the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def portal_stack(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppStack, TxtServer]]:
    tmp = tmp_path_factory.mktemp("portal")
    with run_dns() as dns:
        port = free_port()
        env = app_env(port, module_database_url, None)
        env["SSO_GATE_DNS_NAMESERVERS"] = f"127.0.0.1:{dns.port}"
        env["SSO_GATE_PORTAL_PRODUCT_NAME"] = "Example Cloud"
        env["SSO_GATE_PORTAL_ACCENT_COLOR"] = "#0a7d4f"
        stack = AppStack(base_url=env["SSO_GATE_BASE_URL"], env=env, log=tmp / "app.log")
        proc = start_app(stack)
        try:
            _wait_ready(proc, stack)
            yield stack, dns
        finally:
            _stop(proc)


def new_link(stack: AppStack, intent: str = "domain_verification", name: str = "Acme") -> str:
    async def go() -> str:
        gate = stack.gate()
        try:
            org = await gate.organizations.create(name)
            return str((await gate.portal.create_link(org.id, intent)).link)
        finally:
            await gate.aclose()

    # Playwright's sync API owns this thread's event loop: run the gate in another thread
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def shot(page: Page, request: pytest.FixtureRequest) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=f"/tmp/sso_gate_{request.node.name}.png", full_page=True)


def test_it_admin_verifies_a_domain_with_the_keyboard(
    browser: Browser, portal_stack: tuple[AppStack, TxtServer], request: pytest.FixtureRequest
) -> None:
    stack, dns = portal_stack
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(new_link(stack))
        assert page.url.endswith("/sso-gate/portal/domains")
        assert page.locator(".product").inner_text() == "Example Cloud"
        assert page.locator("h1").inner_text() == "Domains"
        # keyboard only: focus the field, type, submit with Enter
        page.locator("#domain").focus()
        page.keyboard.type("acme-browser.test")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "done=" in page.url, page.content()[-1500:]
        assert page.get_by_role("status").inner_text() == "Added acme-browser.test"
        record = page.locator("code[id^=txt-]").first.inner_text()
        assert record.startswith("sso-gate-verification=")
        # the copy button copies the exact record (JavaScript allowed by the CSP)
        page.locator(".copy-btn").first.click()
        page.wait_for_function("document.querySelector('.copy-btn').textContent === 'Copied'")
        assert page.evaluate("navigator.clipboard.readText()") == record
        # publish it, then verify
        dns.records["acme-browser.test"] = [record]
        with page.expect_navigation():
            page.get_by_role("button", name="Verify acme-browser.test").click()
        assert "acme-browser.test is verified" in page.get_by_role("status").inner_text()
        assert page.locator("[data-state]").first.get_attribute("data-state") == "verified"
        accent = page.evaluate(
            "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
        )
        assert accent == "#0a7d4f"
        assert problems == [], problems  # no CSP violation, no script error
    finally:
        shot(page, request)
        context.close()


def test_portal_without_javascript_at_phone_width(
    browser: Browser, portal_stack: tuple[AppStack, TxtServer], request: pytest.FixtureRequest
) -> None:
    stack, _ = portal_stack
    context = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 740})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(new_link(stack, name="Initech"))
        page.fill("#domain", "initech-browser.test")
        with page.expect_navigation():
            page.click("text=Add domain")
        assert "Added initech-browser.test" in page.content()
        width: Any = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways at phone width ({width}px)"
        # the link was single-use: opening it again in another browser fails
        page.get_by_role("button", name="Sign out").click()
        assert "signed out" in page.content().lower()
        assert page.goto(stack.url("/sso-gate/portal/domains")).status == 401  # type: ignore[union-attr]
    finally:
        shot(page, request)
        context.close()


def test_links_are_single_use_in_the_browser(
    browser: Browser, portal_stack: tuple[AppStack, TxtServer], tmp_path: Path
) -> None:
    stack, _ = portal_stack
    link = new_link(stack, name="Globex")
    first = browser.new_context()
    second = browser.new_context()
    try:
        assert first.new_page().goto(link).status == 200  # type: ignore[union-attr]
        response = second.new_page().goto(link)
        assert response is not None and response.status == 410
    finally:
        first.close()
        second.close()
