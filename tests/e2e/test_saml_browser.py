"""SAML sign-in in a real headless Chromium: the example app, the gate and SimpleSAMLphp.

What this proves. The IdP's pages are served as ``http://localhost:<port>`` and the app as
``http://127.0.0.1:<port>``: two different *sites* (a port alone would only make another
origin, and cookies ignore ports; ``localhost`` and ``127.0.0.1`` are different hosts, neither a
registrable domain of the other). So the IdP's auto-submitted HTTP-POST to the ACS is a
cross-site POST, as with a real IdP: Chromium withholds the gate's ``SameSite=Lax`` flow cookie
from it (asserted on the request Chromium actually sent). The ACS needs no cookie: it verifies
the response and answers 303 to the gate's completion URL; that redirect is a top-level GET
navigation, which does carry the Lax flow cookie (also asserted), and there the browser binding
is checked before the session cookie is set. No ``SameSite=None`` cookie is involved.

A screenshot of the page is saved under /tmp when a test fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .conftest import SamlStack, need

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request

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
ALICE = "alice@acme.test"
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
def page(
    chromium: Browser, any_saml_stack: SamlStack, request: pytest.FixtureRequest
) -> Iterator[Page]:
    context = chromium.new_context(base_url=any_saml_stack.base_url)
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
                print(f"screenshot: {path}\nURL: {page.url}\napp log:\n{any_saml_stack.log_tail()}")
            except Exception as exc:  # the browser may be gone
                print(f"no screenshot: {exc}")
        context.close()


def cookies_by_name(context: BrowserContext, url: str) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in context.cookies(url)}


def cookie_names(request: Request) -> set[str]:
    """The cookies Chromium really sent with ``request`` (from the network stack)."""
    header = request.all_headers().get("cookie", "")
    return {part.split("=", 1)[0].strip() for part in header.split(";") if "=" in part}


def test_saml_login_in_chromium(page: Page, any_saml_stack: SamlStack) -> None:
    stack = any_saml_stack
    idp_origin = stack.idp.base_url.split("/simplesaml/")[0]
    assert idp_origin.startswith("http://localhost:") and stack.base_url.startswith(
        "http://127.0.0.1:"
    )
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))

    page.goto("/login?next=/dashboard")
    page.fill("#email", ALICE)
    page.click("#submit")
    # The gate sent the browser (HTTP-Redirect AuthnRequest) to SimpleSAMLphp's login form.
    page.wait_for_url(re.compile(re.escape(idp_origin) + r"/simplesaml/.*loginuserpass"))
    page.fill("#username", "alice")
    page.fill("#password", "alicepass")
    page.click("#submit_button")
    # SimpleSAMLphp's page auto-submits the SAMLResponse to the ACS (its own JavaScript);
    # then the completion step, then the app.
    page.wait_for_url(stack.url("/dashboard"))
    assert page.text_content("#user") == f"Signed in as {ALICE} with SSO"

    acs = [r for r in sent if r.url == stack.acs_url(stack.conn_id)]
    assert len(acs) == 1 and acs[0].method == "POST"
    acs_headers = acs[0].all_headers()
    assert acs_headers["origin"] == idp_origin  # posted by the IdP's page...
    assert acs_headers["sec-fetch-site"] == "cross-site"  # ...from another site, says Chromium
    assert "sso_gate_flow" not in cookie_names(acs[0])  # so the Lax flow cookie is withheld
    complete = [r for r in sent if "/complete?token=" in r.url]
    assert len(complete) == 1 and complete[0].method == "GET"
    assert complete[0].url.startswith(stack.url(f"/sso-gate/sso/saml/{stack.conn_id}/complete"))
    assert complete[0].redirected_from is acs[0]  # the ACS's 303
    assert "sso_gate_flow" in cookie_names(complete[0])  # top-level GET: Lax cookie sent

    cookies = cookies_by_name(page.context, stack.base_url)
    flow = cookies["sso_gate_flow"]
    assert flow["sameSite"] == "Lax" and flow["httpOnly"] is True
    session = cookies["sso_gate_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    assert session["secure"] is False  # plain http base URL
    assert session["path"] == "/"
    # The IdP's own session cookie lives on its site, not the app's.
    assert "SimpleSAML" in cookies_by_name(page.context, idp_origin)
    assert "SimpleSAML" not in cookies

    me = page.context.request.get(stack.url("/sso-gate/sso/me"))
    assert me.status == 200
    profile = me.json()["profile"]
    assert profile["email"] == ALICE
    assert (profile["first_name"], profile["last_name"]) == ("Alice", "Smith")
    assert profile["groups"] == ["Engineering", "Admins"]
    assert profile["connection_id"] == stack.conn_id

    # In SimpleSAMLphp's "Admins" group: the app's /admin opens.
    response = page.goto("/admin")
    assert response is not None and response.status == 200
