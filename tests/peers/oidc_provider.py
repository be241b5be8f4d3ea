"""Start and drive the real OpenID Connect provider peer (``oidc_provider/server.mjs``).

The peer is panva's ``oidc-provider`` (OpenID Certified) running on Node, bound to
127.0.0.1 only, with an email-only login form and automatic consent.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import IO
from urllib.parse import urljoin, urlsplit

import httpx

PEER_DIR = Path(__file__).resolve().parent / "oidc_provider"
SERVER_SCRIPT = PEER_DIR / "server.mjs"
READY_PREFIX = "READY "
STARTUP_TIMEOUT = 20.0
MAX_STEPS = 20

__all__ = [
    "PEER_DIR",
    "OidcProviderError",
    "drive_login",
    "ensure_installed",
    "node_modules_ready",
    "run_oidc_provider",
]


class OidcProviderError(RuntimeError):
    """The provider peer could not be installed, started or driven."""


def node_modules_ready() -> bool:
    """Whether ``npm ci`` has already been run for the peer."""
    return (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()


def ensure_installed() -> None:
    """Run ``npm ci`` in the peer folder if ``node_modules`` is missing."""
    if node_modules_ready():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise OidcProviderError(
            "npm is not on PATH; install Node.js 20+ and npm to run the oidc-provider peer "
            f"(or run `npm ci` in {PEER_DIR} yourself)"
        )
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not node_modules_ready():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise OidcProviderError(f"`npm ci` failed in {PEER_DIR} (exit {proc.returncode}):\n{tail}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pump(
    stream: IO[str], sink: collections.deque[str], on_line: Callable[[str], None] | None = None
) -> None:
    # Drain a child pipe until EOF so the child never blocks on a full pipe.
    for line in iter(stream.readline, ""):
        sink.append(line.rstrip("\n"))
        if on_line is not None:
            on_line(line)


def _startup_failure(
    proc: subprocess.Popen[str], stdout_lines: Iterable[str], stderr_lines: Iterable[str]
) -> OidcProviderError:
    exited = proc.poll()
    reason = (
        f"exited with code {exited}"
        if exited is not None
        else f"did not print READY within {STARTUP_TIMEOUT:.0f}s"
    )
    time.sleep(0.1)  # let the pump threads catch the last lines
    tail = "\n".join(list(stderr_lines)[-30:] or list(stdout_lines)[-30:])
    return OidcProviderError(f"oidc-provider peer {reason}; stderr tail:\n{tail}")


def _stop(proc: subprocess.Popen[str], threads: Iterable[threading.Thread]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for thread in threads:
        thread.join(timeout=2)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@contextmanager
def run_oidc_provider(clients: list[dict[str, object]], port: int | None = None) -> Iterator[str]:
    """Run the provider with the given client metadata; yield its issuer URL.

    Each client is oidc-provider client metadata (``client_id``, ``client_secret``,
    ``redirect_uris``, ``token_endpoint_auth_method``, ...). The process is terminated on exit.
    """
    node = shutil.which("node")
    if node is None:
        raise OidcProviderError("node is not on PATH; Node.js 20+ is needed for the OIDC peer")
    ensure_installed()
    if port is None:
        port = _free_port()
    env = {**os.environ, "PORT": str(port), "CLIENTS": json.dumps(clients)}
    proc = subprocess.Popen(
        [node, str(SERVER_SCRIPT)],
        cwd=PEER_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    stdout_lines: collections.deque[str] = collections.deque(maxlen=200)
    stderr_lines: collections.deque[str] = collections.deque(maxlen=200)
    ready = threading.Event()
    issuer: list[str] = []

    def on_stdout(line: str) -> None:
        if line.startswith(READY_PREFIX) and not ready.is_set():
            issuer.append(line[len(READY_PREFIX) :].strip())
            ready.set()

    threads = [
        threading.Thread(target=_pump, args=(proc.stdout, stdout_lines, on_stdout), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, stderr_lines), daemon=True),
    ]
    for thread in threads:
        thread.start()

    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
        if not ready.is_set():
            raise _startup_failure(proc, stdout_lines, stderr_lines)
        yield issuer[0]
    finally:
        _stop(proc, threads)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collects the forms of a page (action, method, named input values)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            method = attributes.get("method", "get").upper()
            self.forms.append(_Form(action=attributes.get("action", ""), method=method))
        elif tag in {"input", "button"} and self.forms and attributes.get("name"):
            if tag == "button" and "value" not in attributes:
                return
            self.forms[-1].fields.setdefault(attributes["name"], attributes.get("value", ""))


def _next_form(page: str, page_url: str, email: str, *, logged_in: bool) -> tuple[_Form, bool]:
    """Pick the form to submit on a provider page: the login form or an auto-submit form."""
    parser = _FormParser()
    parser.feed(page)
    for form in parser.forms:
        form.action = urljoin(page_url, form.action or page_url)
        if "email" in form.fields:
            if logged_in:
                raise OidcProviderError(f"provider asked to log in again at {page_url}")
            form.fields["email"] = email
            return form, True
    if len(parser.forms) == 1:
        # Consent pages and the session-change logout step are single auto-submit forms.
        return parser.forms[0], logged_in
    raise OidcProviderError(f"no form to submit on provider page {page_url}:\n{page[:2000]}")


async def drive_login(client: httpx.AsyncClient, authorization_url: str, email: str) -> str:
    """Log ``email`` in at the provider and return the relying party callback URL.

    Starting at ``authorization_url`` (served by the provider peer), follows the provider's
    redirects (``client`` must keep cookies), submits the email on the login form, submits any
    consent or other single auto-submit form the provider serves, and stops at the first
    redirect leaving the provider. That URL (carrying ``code``, ``state`` and ``iss``) is
    returned without being requested. With an existing provider session for the same client
    cookies, no login form appears and ``email`` is unused.
    """
    provider_origin = _origin(authorization_url)
    url = authorization_url
    method = "GET"
    data: dict[str, str] | None = None
    logged_in = False
    for _ in range(MAX_STEPS):
        if method == "POST":
            response = await client.post(url, data=data, follow_redirects=False)
        else:
            response = await client.get(url, params=data, follow_redirects=False)
        method, data = "GET", None

        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if _origin(location) != provider_origin:
                return location
            url = location
            continue

        if response.status_code != httpx.codes.OK or "<form" not in response.text:
            raise OidcProviderError(
                f"unexpected provider response {response.status_code} at {response.url}:\n"
                f"{response.text[:2000]}"
            )
        form, logged_in = _next_form(response.text, str(response.url), email, logged_in=logged_in)
        if _origin(form.action) != provider_origin:
            raise OidcProviderError(
                f"provider answered with a form posting to {form.action} (response_mode="
                "form_post?); drive_login only supports redirect-based (query) responses"
            )
        url, method, data = form.action, form.method, form.fields
    raise OidcProviderError(f"too many steps while logging in at {authorization_url}")
