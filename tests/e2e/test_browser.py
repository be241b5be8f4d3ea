"""The example app, the gate and the real ``oidc-provider`` in a real headless Chromium.

Debian's ``/usr/bin/chromium`` driven by Playwright (its own browser download is not reachable).
A screenshot of the page is saved under /tmp when a test fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from .conftest import Stack, need

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ALICE = "alice.smith@acme.test"
BOB = ("bob@example.com", "correct horse battery staple")
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    need(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is needed for the browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        need(False, "playwright (python) is needed for the browser tests")
        raise
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Browser, oidc_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = chromium.new_context(base_url=oidc_stack.base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            path = f"/tmp/sso_gate_{request.node.name}.png"
            try:
                page.screenshot(path=path, full_page=True)
                print(f"screenshot: {path}\nURL: {page.url}\napp log:\n{oidc_stack.log_tail()}")
            except Exception as exc:  # the browser may be gone
                print(f"no screenshot: {exc}")
        context.close()


def sso_login(page: Page, stack: Stack, email: str) -> None:
    """The whole journey: the app's form, the provider's form, back to the dashboard."""
    page.goto("/login?next=/dashboard")
    page.fill("#email", email)
    page.click("#submit")
    # The gate sent the browser to the provider's own login page.
    page.wait_for_url(re.compile(re.escape(stack.issuer) + r"/interaction/"))
    assert page.input_value("#email") == email  # login_hint, prefilled by the provider
    page.fill("#email", email)
    page.click("#submit")
    page.wait_for_url(stack.url("/dashboard"))
    assert page.text_content("#user") == f"Signed in as {email} with SSO"


def cookies_by_name(context: BrowserContext, url: str) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in context.cookies(url)}


def test_sso_login_in_chromium(page: Page, oidc_stack: Stack) -> None:
    stack = oidc_stack
    sso_login(page, stack, ALICE)

    cookies = cookies_by_name(page.context, stack.base_url)
    session = cookies["sso_gate_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # plain http base URL
    assert session["path"] == "/"
    assert cookies["sso_gate_flow"]["httpOnly"] is True

    me = page.context.request.get(stack.url("/sso-gate/sso/me"))
    assert me.status == 200
    profile = me.json()["profile"]
    assert profile["email"] == ALICE
    assert (profile["first_name"], profile["last_name"]) == ("Alice", "Smith")
    assert profile["groups"] == ["Engineering"]
    assert profile["connection_id"] == stack.acme_conn

    # Not an Admin at the provider: the app's /admin refuses.
    response = page.goto("/admin")
    assert response is not None and response.status == 403


def test_password_login_in_chromium_never_sees_the_idp(page: Page, oidc_stack: Stack) -> None:
    stack = oidc_stack
    visited: list[str] = []
    page.on("request", lambda request: visited.append(request.url))
    page.goto("/login")
    page.fill("#email", BOB[0])
    page.fill("#password", BOB[1])
    page.click("#submit")
    page.wait_for_url(stack.url("/dashboard"))
    assert page.text_content("#user") == f"Signed in as {BOB[0]} with password"
    assert visited and not [url for url in visited if url.startswith(stack.issuer)]
    cookies = cookies_by_name(page.context, stack.base_url)
    assert "session" in cookies and "sso_gate_session" not in cookies


def test_sign_out_in_chromium(page: Page, oidc_stack: Stack) -> None:
    stack = oidc_stack
    sso_login(page, stack, ALICE)
    old_cookie = cookies_by_name(page.context, stack.base_url)["sso_gate_session"]["value"]
    assert isinstance(old_cookie, str)

    # The dashboard's "Sign out" form posts (same-origin) to the gate's logout endpoint.
    assert page.get_attribute("form", "action") == "/sso-gate/sso/logout"
    page.click("#logout")
    page.wait_for_url(stack.url("/"))
    assert "sso_gate_session" not in cookies_by_name(page.context, stack.base_url)
    assert page.context.request.get(stack.url("/sso-gate/sso/me")).status == 401

    # The session is revoked on the server, not just forgotten by the browser.
    with httpx.Client(timeout=10, cookies={"sso_gate_session": old_cookie}) as client:
        r = client.get(stack.url("/sso-gate/sso/me"))
    assert r.status_code == 401
