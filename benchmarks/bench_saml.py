"""In-process benchmark of SAML response verification at the ACS (see ``benchmarks/README.md``).

One genuinely signed SAML response (RSA-2048, RSA-SHA256, exclusive c14n, the assertion signed,
the response not: what Okta and SimpleSAMLphp send by default) is verified, byte for byte the
same, by sso_gate's ``verify_response`` and by the peers: pysaml2 with its default ``xmlsec1``
backend and, when installed, python3-saml. The full ACS request through ``gate.wrap(app)``
(one-time store, replay cache, profile upsert and event write in SQLite) is measured too, each
request with a freshly started flow and a freshly signed response. The cases run interleaved,
round after round (the order rotates each round); each case's figure is the median over the
rounds and each ratio is the median of the per-round ratios against ``verify_response``
measured in the same round. On a shared, noisy machine only these ratios are meaningful.

    .venv/bin/python benchmarks/bench_saml.py            # full run (~40 s)
    .venv/bin/python benchmarks/bench_saml.py --quick    # smoke run (~5 s)

The pysaml2 peer needs ``pip install pysaml2`` and the ``xmlsec1`` binary (Debian: ``apt-get
install xmlsec1``); python3-saml needs ``pip install python3-saml``. sso_gate needs neither.
A peer that is missing is skipped and the table says so.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import dataclasses
import datetime as dt
import gc
import importlib.metadata
import json
import logging
import os
import platform
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

# Run from a checkout without relying on the editable install's import hook; the signed
# responses come from the test suite's fake IdP (signxml, a real RSA key).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

import sso_gate.services.saml_flow as saml_flow  # noqa: E402
from sso_gate import SSOGate  # noqa: E402
from sso_gate.exceptions import TokenValidationError  # noqa: E402
from sso_gate.models import Connection  # noqa: E402
from sso_gate.saml.metadata import load_certificate  # noqa: E402
from sso_gate.saml.response import (  # noqa: E402
    ResponseExpectations,
    VerifiedAssertion,
    verify_response,
)
from sso_gate.settings import Secret, Settings  # noqa: E402
from tests.fakes.saml_idp import FakeSamlIdP, encode  # noqa: E402

Message = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]

# Case names (also the keys of the JSON output).
VERIFY = "sso_gate_verify"
PYSAML2 = "pysaml2_xmlsec1"
PY3SAML = "python3_saml"
ACS = "gate_acs"
ALL_CASES = (VERIFY, PYSAML2, PY3SAML, ACS)

# The benchmark's fixed request: the response answers this AuthnRequest ID (pysaml2 and
# python3-saml are told it is outstanding; sso_gate's expectations name it).
FIXED_REQUEST_ID = "_bench" + "0" * 34
NAME_ID = "alice@acme.test"
VALIDITY = dt.timedelta(hours=6)  # long enough for any run; checked by every verifier
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- the signed response ----------------------------------------------------------------------


def signed_response(idp: FakeSamlIdP, *, acs_url: str, audience: str, request_id: str) -> str:
    """A solicited Response (not signed) holding one signed Assertion, base64 (HTTP-POST)."""
    now = dt.datetime.now(dt.UTC)
    assertion = idp.signed_assertion(
        acs_url=acs_url,
        audience=audience,
        name_id=NAME_ID,
        in_response_to=request_id,
        now=now,
        not_on_or_after=now + VALIDITY,
        confirmation_not_on_or_after=now + VALIDITY,
    )
    return encode(idp.response(assertion, acs_url=acs_url, in_response_to=request_id))


def tampered(b64: str) -> dict[str, str]:
    """Copies every verifier must refuse: a signed value changed, the signature value changed."""
    raw = base64.b64decode(b64)
    name_id = raw.replace(f">{NAME_ID}</saml:NameID>".encode(), b">mallory@acme.test</saml:NameID>")
    sig = raw.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>AAAA", 1)
    assert name_id != raw and sig != raw
    return {
        "name_id_changed": base64.b64encode(name_id).decode(),
        "signature_value_changed": base64.b64encode(sig).decode(),
    }


# -- the peers --------------------------------------------------------------------------------


def pysaml2_missing() -> str | None:
    """Why the pysaml2 peer cannot run here, or None."""
    if version("pysaml2") is None:
        return "pysaml2 is not installed (pip install pysaml2)"
    if shutil.which("xmlsec1") is None:
        return "the xmlsec1 binary is not on PATH (Debian: apt-get install xmlsec1)"
    return None


def python3_saml_missing() -> str | None:
    if version("python3-saml") is None:
        return "python3-saml is not installed (pip install python3-saml)"
    return None


def xmlsec1_version() -> str | None:
    exe = shutil.which("xmlsec1")
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """The peers log every refused signature at ERROR: silence that during the checks only."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


@dataclass
class Pysaml2Peer:
    """A pysaml2 SP with pysaml2's defaults except what a response signed the Okta /
    SimpleSAMLphp way needs (each setting is explained in ``benchmarks/README.md``)."""

    client: Any
    parse: Callable[[str], Any]

    @classmethod
    def create(
        cls, *, sp_entity_id: str, acs_url: str, idp_metadata: str, request_id: str
    ) -> Pysaml2Peer:
        from saml2 import BINDING_HTTP_POST
        from saml2.client import Saml2Client
        from saml2.config import SPConfig

        conf = SPConfig()
        conf.load(
            {
                "entityid": sp_entity_id,
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                        # pysaml2's defaults are the other way round (a signed <Response>
                        # required, the assertion's signature optional); Okta and
                        # SimpleSAMLphp sign the assertion only, and sso_gate requires that.
                        "want_response_signed": False,
                        "want_assertions_signed": True,
                    }
                },
                "metadata": {"inline": [idp_metadata]},
                # Attributes without a NameFormat it knows are dropped otherwise.
                "allow_unknown_attributes": True,
                # No "xmlsec_binary": pysaml2 finds xmlsec1 on PATH (its default backend).
            }
        )
        client = Saml2Client(conf)
        outstanding = {request_id: "/"}

        def parse(b64: str) -> Any:
            return client.parse_authn_request_response(b64, BINDING_HTTP_POST, outstanding)

        return cls(client, parse)

    def check(self, good: str, bad: dict[str, str], foreign: str) -> None:
        """It accepts the response, reads the signed data, and really checks the signature."""
        from saml2.sigver import SignatureError

        resp = self.parse(good)
        assert resp.name_id.text == NAME_ID, resp.name_id
        assert resp.get_identity().get("groups") == ["Engineering", "Admins"], resp.ava
        with quiet("saml2"):
            for what, value in bad.items() | {("signed_by_another_key", foreign)}:
                try:
                    self.parse(value)
                except SignatureError:
                    continue
                raise AssertionError(f"pysaml2 accepted a response with the {what}")


@dataclass
class Python3SamlPeer:
    """OneLogin's python3-saml (libxmlsec1 in-process through python-xmlsec), strict mode."""

    parse: Callable[[str], Any]

    @classmethod
    def create(
        cls, *, sp_entity_id: str, acs_url: str, idp: FakeSamlIdP, request_id: str
    ) -> Python3SamlPeer:
        from onelogin.saml2.response import OneLogin_Saml2_Response
        from onelogin.saml2.settings import OneLogin_Saml2_Settings

        settings = OneLogin_Saml2_Settings(
            {
                "strict": True,
                "sp": {
                    "entityId": sp_entity_id,
                    "assertionConsumerService": {"url": acs_url, "binding": BINDING_POST},
                },
                "idp": {
                    "entityId": idp.entity_id,
                    "singleSignOnService": {
                        "url": "https://idp.example.test/sso",
                        "binding": BINDING_REDIRECT,
                    },
                    "x509cert": idp.cert_pem,
                },
                "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True},
            },
            sp_validation_only=True,
        )
        url = urlsplit(acs_url)
        request_data: dict[str, Any] = {
            "https": "on" if url.scheme == "https" else "off",
            "http_host": url.netloc,  # with the port, if any (server_port is deprecated)
            "script_name": url.path,
            "get_data": {},
            "post_data": {},
        }

        def parse(b64: str) -> Any:
            # What OneLogin_Saml2_Auth.process_response does with a POSTed response.
            resp = OneLogin_Saml2_Response(settings, b64)
            resp.is_valid(request_data, request_id=request_id, raise_exceptions=True)
            return resp.get_nameid(), resp.get_attributes(), resp.get_assertion_id()

        return cls(parse)

    def check(self, good: str, bad: dict[str, str], foreign: str) -> None:
        from onelogin.saml2.errors import OneLogin_Saml2_ValidationError

        name_id, attributes, _ = self.parse(good)
        assert name_id == NAME_ID and attributes["groups"] == ["Engineering", "Admins"]
        for what, value in bad.items() | {("signed_by_another_key", foreign)}:
            try:
                self.parse(value)
            except OneLogin_Saml2_ValidationError:
                continue
            raise AssertionError(f"python3-saml accepted a response with the {what}")


# -- sso_gate: the app, hand-built ASGI plumbing ----------------------------------------------


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


def hello_app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


def acs_scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"app.test"),
            (b"user-agent", b"bench/1.0"),
            (b"accept", b"text/html"),
            (b"origin", b"https://idp.example.test"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("app.test", 80),
    }


def make_receive(body: bytes) -> Callable[[], Awaitable[Message]]:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def discard(message: Message) -> None:
    return None


async def call(app: ASGIApp, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, str]]:
    """One request, status and headers captured (for checks, not timing)."""
    out: dict[str, Any] = {}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}

    await app(scope, make_receive(body), send)
    return out["status"], out["headers"]


# -- environment ------------------------------------------------------------------------------


@dataclass
class Env:
    tmp: Path
    gate: SSOGate
    wrapped: ASGIApp
    idp: FakeSamlIdP
    connection: Connection
    acs_url: str
    acs_path: str
    sp_entity_id: str
    response: str  # the one signed response every verifier gets
    expectations: ResponseExpectations
    peers: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    cases: dict[str, Callable[[int], Awaitable[float]]] = field(default_factory=dict)

    async def aclose(self) -> None:
        await self.gate.aclose()


def make_settings(database_url: str) -> Settings:
    # As ``tests/conftest.py::make_settings``.
    return Settings(
        secret_keys=(Secret("k1-" + secrets.token_urlsafe(24)),),
        base_url="http://app.test",
        database_url=database_url,
        environment="development",
        admin_api_key=Secret("bench-admin-key-0123456789"),
        # one client address sends every request: measure the endpoints, not the 429s
        rate_limits=False,
    )


def gate_expectations(
    gate: SSOGate, connection: Connection, request_id: str
) -> ResponseExpectations:
    """What ``SAMLFlow._verify`` passes to ``verify_response`` for this connection."""
    saml = connection.saml
    assert saml is not None
    key = serialization.load_pem_private_key(saml.sp_private_key.reveal().encode(), None)
    return ResponseExpectations(
        idp_entity_id=saml.idp_entity_id,
        sp_entity_id=saml.sp_entity_id,
        acs_url=gate.connections.saml_urls(connection.id)["acs_url"],
        certificates=tuple(load_certificate(p) for p in saml.idp_certificates),
        now=dt.datetime.now(dt.UTC),
        skew=gate.settings.clock_skew,
        in_response_to=request_id,
        allow_unsolicited=saml.allow_idp_initiated,
        allow_sha1=saml.allow_sha1,
        decryption_key=key,
        require_encryption=saml.encrypt_assertions,
        max_bytes=gate.settings.max_saml_response,
    )


async def build_env(
    tmp: Path, peers: tuple[str, ...] = (PYSAML2, PY3SAML), database_url: str | None = None
) -> Env:
    """The gate (SQLite in ``tmp``, or ``database_url``: the smoke test's PostgreSQL case), one
    organization with a SAML connection to the fake IdP, the signed response, the peers that
    can run here; every case checked before it is timed."""
    gate = SSOGate(make_settings(database_url or f"sqlite:///{tmp / 'bench_saml.db'}"))
    await gate.migrate()
    idp = FakeSamlIdP()  # RSA-2048 key, self-signed certificate
    org = await gate.organizations.create("Acme", domains=["acme.test"], sso_policy="required")
    connection = await gate.connections.create_saml(org.id, metadata_xml=idp.metadata())
    assert connection.saml is not None
    acs_url = gate.connections.saml_urls(connection.id)["acs_url"]
    sp_entity_id = connection.saml.sp_entity_id
    response = signed_response(
        idp, acs_url=acs_url, audience=sp_entity_id, request_id=FIXED_REQUEST_ID
    )
    env = Env(
        tmp=tmp,
        gate=gate,
        wrapped=gate.wrap(hello_app()),
        idp=idp,
        connection=connection,
        acs_url=acs_url,
        acs_path=urlsplit(acs_url).path,
        sp_entity_id=sp_entity_id,
        response=response,
        expectations=gate_expectations(gate, connection, FIXED_REQUEST_ID),
    )
    bad = tampered(response)
    other = FakeSamlIdP()  # same entity ID, another key: only the pinned certificate may count
    foreign = signed_response(
        other, acs_url=acs_url, audience=sp_entity_id, request_id=FIXED_REQUEST_ID
    )
    check_verify(env, bad, foreign)
    env.cases[VERIFY] = verify_case(env)

    if PYSAML2 in peers:
        reason = pysaml2_missing()
        if reason is None:
            p2 = Pysaml2Peer.create(
                sp_entity_id=sp_entity_id,
                acs_url=acs_url,
                idp_metadata=idp.metadata(),
                request_id=FIXED_REQUEST_ID,
            )
            p2.check(response, bad, foreign)
            env.peers[PYSAML2] = p2
            env.cases[PYSAML2] = peer_case(p2.parse, response)
        else:
            env.skipped[PYSAML2] = reason
    if PY3SAML in peers:
        reason = python3_saml_missing()
        if reason is None:
            p3 = Python3SamlPeer.create(
                sp_entity_id=sp_entity_id, acs_url=acs_url, idp=idp, request_id=FIXED_REQUEST_ID
            )
            p3.check(response, bad, foreign)
            env.peers[PY3SAML] = p3
            env.cases[PY3SAML] = peer_case(p3.parse, response)
        else:
            env.skipped[PY3SAML] = reason

    await check_acs(env)
    env.cases[ACS] = acs_case(env)
    return env


def check_verify(env: Env, bad: dict[str, str], foreign: str) -> None:
    v = verify_response(env.response, env.expectations)
    assert isinstance(v, VerifiedAssertion) and v.name_id == NAME_ID, v
    assert v.attributes["groups"] == ["Engineering", "Admins"] and v.certificate_index == 0
    for what, value in bad.items() | {("signed_by_another_key", foreign)}:
        try:
            verify_response(value, env.expectations)
        except TokenValidationError as exc:
            assert exc.code in ("digest_mismatch", "invalid_signature"), (what, exc.code)
            continue
        raise AssertionError(f"verify_response accepted a response with the {what}")


def verify_case(env: Env) -> Callable[[int], Awaitable[float]]:
    response, exp = env.response, env.expectations

    async def run(n: int) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            verify_response(response, exp)
        return (time.perf_counter_ns() - t0) / n / 1000

    return run


def peer_case(parse: Callable[[str], Any], response: str) -> Callable[[int], Awaitable[float]]:
    async def run(n: int) -> float:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            parse(response)
        return (time.perf_counter_ns() - t0) / n / 1000

    return run


# -- the full ACS request ---------------------------------------------------------------------


async def acs_bodies(env: Env, n: int) -> list[bytes]:
    """``n`` started flows (``gate.saml.begin``: one AuthnRequest ID each in the one-time
    store), each answered by a freshly signed response: the POSTed form bodies."""
    bodies = []
    for _ in range(n):
        start = await env.gate.saml.begin(
            env.connection, return_to="/dashboard", binding_hash="bench-binding"
        )
        saml_response = signed_response(
            env.idp, acs_url=env.acs_url, audience=env.sp_entity_id, request_id=start.request_id
        )
        body = urlencode({"SAMLResponse": saml_response, "RelayState": secrets.token_urlsafe(24)})
        bodies.append(body.encode())
    return bodies


async def check_acs(env: Env) -> None:
    """A fresh response signs the user in (303 to the completion step, the profile parked);
    the same POST again and a tampered response are refused."""
    (body,) = await acs_bodies(env, 1)
    status, headers = await call(env.wrapped, acs_scope(env.acs_path, body), body)
    assert status == 303, (status, headers)
    location = headers["location"]
    assert location.startswith(f"{env.gate.settings.prefix}/sso/saml/{env.connection.id}/complete")
    token = parse_qs(urlsplit(location).query)["token"][0]
    parked = await env.gate.onetime.take(f"saml_done:{token}")
    assert parked is not None and json.loads(parked)["profile"]["email"] == NAME_ID
    status, _ = await call(env.wrapped, acs_scope(env.acs_path, body), body)
    assert status == 400, status  # the flow was consumed: a replay is refused
    (fresh,) = await acs_bodies(env, 1)
    form = parse_qs(fresh.decode())
    tampered_value = tampered(form["SAMLResponse"][0])["name_id_changed"]
    evil = urlencode({"SAMLResponse": tampered_value, "RelayState": "x"}).encode()
    status, _ = await call(env.wrapped, acs_scope(env.acs_path, evil), evil)
    assert status == 400, status


def acs_case(env: Env) -> Callable[[int], Awaitable[float]]:
    """``n`` ACS POSTs through the wrapped app; flows and responses are made before timing."""
    app, path = env.wrapped, env.acs_path

    async def run(n: int) -> float:
        bodies = await acs_bodies(env, n)
        requests = [(acs_scope(path, b), make_receive(b)) for b in bodies]
        statuses: list[int] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        gc.collect()
        t0 = time.perf_counter_ns()
        for scope, receive in requests:
            await app(scope, receive, send)
        elapsed = time.perf_counter_ns() - t0
        assert statuses == [303] * n, statuses  # every sign-in succeeded
        return elapsed / n / 1000

    return run


# -- where the time of an ACS request goes ----------------------------------------------------

# Stages of one ACS request, timed by wrapping what ``SAMLFlow._complete`` and the route call.
STAGES = {
    "connection": "connection lookup (cached)",
    "flow_take": "one-time store: take the started flow",
    "verify": "`verify_response` (signature + every check)",
    "replay_add": "one-time store: replay cache add",
    "profile": "`build_profile`: one SQLite transaction (checks, profile upsert, success event)",
    "park": "one-time store: park the result for the completion step",
}
REST = "the rest: middleware, routing, form parsing, expectations, attribute mapping, redirect"


@contextmanager
def stage_timers(env: Env, totals: dict[str, list[int]]) -> Iterator[None]:
    """While active, add each stage's wall time and main-thread CPU time (ns) to ``totals``;
    the originals come back afterwards."""
    flow = env.gate.saml
    store = env.gate.onetime
    wall, cpu = time.perf_counter_ns, time.thread_time_ns

    def add(name: str | None, w0: int, c0: int) -> None:
        if name is not None:
            totals[name][0] += wall() - w0
            totals[name][1] += cpu() - c0

    def timed_async(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kw: Any) -> Any:
            w0, c0 = wall(), cpu()
            try:
                return await fn(*args, **kw)
            finally:
                add(name, w0, c0)

        return wrapper

    def timed_sync(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kw: Any) -> Any:
            w0, c0 = wall(), cpu()
            try:
                return fn(*args, **kw)
            finally:
                add(name, w0, c0)

        return wrapper

    def by_key(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        names = {"saml_req:": "flow_take", "saml_assertion:": "replay_add", "saml_done:": "park"}

        async def wrapper(key: str, *args: Any, **kw: Any) -> Any:
            name = next((v for k, v in names.items() if key.startswith(k)), None)
            w0, c0 = wall(), cpu()
            try:
                return await fn(key, *args, **kw)
            finally:
                add(name, w0, c0)

        return wrapper

    module_patches = {
        "verify_response": timed_sync("verify", saml_flow.verify_response),
        "build_profile": timed_async("profile", saml_flow.build_profile),
    }
    saved = {name: getattr(saml_flow, name) for name in module_patches}
    instance_patches: list[tuple[Any, str, Any]] = [
        (flow, "_connection", timed_async("connection", flow._connection)),
        (store, "take", by_key(store.take)),
        (store, "add", by_key(store.add)),
        (store, "put", by_key(store.put)),
    ]
    try:
        for name, fn in module_patches.items():
            setattr(saml_flow, name, fn)
        for obj, attr, fn in instance_patches:
            setattr(obj, attr, fn)
        yield
    finally:
        for name, fn in saved.items():
            setattr(saml_flow, name, fn)
        for obj, attr, _ in instance_patches:
            delattr(obj, attr)  # the class attribute shows through again


async def acs_breakdown(env: Env, n: int) -> dict[str, Any]:
    """Per stage of ``n`` ACS requests: wall time and main-thread CPU time (µs per request,
    mean), and the rest (middleware, routing, reading and parsing the form, building the
    expectations, mapping the attributes, the redirect response). Also the CPU time of the other
    threads: aiosqlite runs every SQLite call in its own worker thread."""
    bodies = await acs_bodies(env, n)
    requests = [(acs_scope(env.acs_path, b), make_receive(b)) for b in bodies]
    totals = {k: [0, 0] for k in STAGES}
    gc.collect()
    with stage_timers(env, totals):
        w0, c0, p0 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
        for scope, receive in requests:
            await env.wrapped(scope, receive, discard)
        w1, c1, p1 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
    stages = {k: {"wall_us": w / n / 1000, "cpu_us": c / n / 1000} for k, (w, c) in totals.items()}
    total_wall, total_cpu = (w1 - w0) / n / 1000, (c1 - c0) / n / 1000
    stages["rest"] = {
        "wall_us": total_wall - sum(v["wall_us"] for v in stages.values()),
        "cpu_us": total_cpu - sum(v["cpu_us"] for v in stages.values()),
    }
    return {
        "requests": n,
        "total_us": total_wall,
        "main_thread_cpu_us": total_cpu,
        "other_threads_cpu_us": ((p1 - p0) - (c1 - c0)) / n / 1000,
        "stages": stages,
    }


# cProfile: where the main thread's time goes. SQLite itself runs in aiosqlite's worker thread,
# which cProfile does not see: the main thread waits for it in the event loop (epoll), hands it
# each call through a queue (put_nowait, which also yields the GIL to it) and is woken through
# the loop's self-pipe (recv).
PROFILE_GROUPS = (
    (
        "database: waiting for / handing off to aiosqlite's SQLite thread",
        ("select.epoll", "SimpleQueue", "_socket.socket", "_read_from_self"),
    ),
    ("database: SQLAlchemy + aiosqlite + greenlet", ("sqlalchemy", "aiosqlite", "greenlet")),
    (
        "XML signature and parsing: signxml + lxml + cryptography",
        ("signxml", "lxml", "cryptography"),
    ),
    ("sso_gate (flow, response checks, middleware, routes)", ("sso_gate",)),
    ("Starlette (routing, form, responses)", ("starlette",)),
    ("asyncio event loop", ("asyncio", "selectors", "_contextvars", "Future")),
)


def _group(key: tuple[str, int, str]) -> str:
    text = f"{key[0]}:{key[2]}"
    for label, needles in PROFILE_GROUPS:
        if any(n in text for n in needles):
            return label
    return "other (stdlib: base64, json, urllib, re, …; harness frames)"


async def acs_profile(env: Env, n: int, top: int = 0) -> dict[str, Any]:
    """cProfile of ``n`` ACS requests: the share of profiled main-thread time (tottime) per
    group, and the ``top`` functions by internal time."""
    bodies = await acs_bodies(env, n)
    requests = [(acs_scope(env.acs_path, b), make_receive(b)) for b in bodies]
    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    for scope, receive in requests:
        await env.wrapped(scope, receive, discard)
    prof.disable()
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        label = _group(key)
        groups[label] = groups.get(label, 0.0) + tottime
    total = sum(groups.values())
    shares = {k: v / total for k, v in sorted(groups.items(), key=lambda kv: -kv[1])}
    top_rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    return {
        "requests": n,
        "profiled_us_per_request": total / n * 1e6,
        "group_share": shares,
        "top": [
            {
                "function": f"{Path(k[0]).name}:{k[1]}({k[2]})" if k[0] != "~" else k[2],
                "tottime_us_per_request": v[2] / n * 1e6,
                "calls_per_request": v[1] / n,
            }
            for k, v in top_rows
        ],
    }


# lxml is Cython: cProfile does not see its calls, their time counts to the Python caller.
VERIFY_GROUPS = (
    ("signxml, with the lxml calls it makes (re-parsing, c14n, transforms)", ("signxml",)),
    ("cryptography (RSA verify, X.509)", ("cryptography",)),
    (
        "sso_gate, with its lxml calls (hardened parse, structure and assertion checks)",
        ("sso_gate",),
    ),
)


def verify_profile(env: Env, n: int) -> dict[str, Any]:
    """cProfile of ``n`` ``verify_response`` calls, share of internal time per package (cProfile
    inflates Python code against C), and the floor: one bare RSA-2048 PKCS#1 v1.5 SHA-256
    verification of 1 KiB with the IdP's key (``cryptography``), timed without the profiler."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        verify_response(env.response, env.expectations)
    prof.disable()
    raw: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for key, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        text = f"{key[0]}:{key[2]}"
        label = next(
            (lbl for lbl, needles in VERIFY_GROUPS if any(x in text for x in needles)),
            "other (base64, re, datetime, dataclasses, enum, …)",
        )
        groups[label] = groups.get(label, 0.0) + tottime
    total = sum(groups.values())

    data = secrets.token_bytes(1024)
    sig = env.idp.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    public = env.idp.cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    reps = max(50, n)
    t0 = time.perf_counter_ns()
    for _ in range(reps):
        public.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    rsa_us = (time.perf_counter_ns() - t0) / reps / 1000
    return {
        "calls": n,
        "group_share": {k: v / total for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "rsa_verify_us": rsa_us,
    }


# -- pysaml2's xmlsec1 processes --------------------------------------------------------------


def pysaml2_forks(env: Env, n: int) -> dict[str, Any] | None:
    """Count and time the xmlsec1 processes pysaml2 starts per response (wall time from the
    fork to ``communicate`` returning)."""
    peer = env.peers.get(PYSAML2)
    if peer is None:
        return None
    import saml2.sigver as sigver

    real = sigver.Popen
    commands: list[str] = []
    spent = [0]

    class TimedPopen(real):  # type: ignore[misc, valid-type]
        def __init__(self, args: list[str], *a: Any, **kw: Any) -> None:
            self._t0 = time.perf_counter_ns()
            commands.append(" ".join(args[1:2]))
            super().__init__(args, *a, **kw)

        def communicate(self, *a: Any, **kw: Any) -> Any:
            try:
                return super().communicate(*a, **kw)
            finally:
                spent[0] += time.perf_counter_ns() - self._t0

    sigver.Popen = TimedPopen
    try:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            peer.parse(env.response)
        total = time.perf_counter_ns() - t0
    finally:
        sigver.Popen = real
    kinds: dict[str, int] = {}
    for c in commands:
        kinds[c] = kinds.get(c, 0) + 1
    return {
        "responses": n,
        "processes_per_response": len(commands) / n,
        "commands_per_response": {k: v / n for k, v in kinds.items()},
        "process_us_per_response": spent[0] / n / 1000,
        "total_us_per_response": total / n / 1000,
        "process_share": spent[0] / total,
    }


# -- driver -----------------------------------------------------------------------------------


@dataclass
class Config:
    rounds: int = 30
    # Calls per case per round (a few hundred ms each at the speeds measured here).
    n: dict[str, int] = field(
        default_factory=lambda: {VERIFY: 200, PYSAML2: 8, PY3SAML: 40, ACS: 40}
    )
    warmup: int = 3  # warm-up blocks of each case
    breakdown: int = 300
    profile: int = 200
    forks: int = 20


QUICK = Config(
    rounds=3, n={VERIFY: 20, PYSAML2: 2, PY3SAML: 5, ACS: 5}, warmup=1, breakdown=20,
    profile=10, forks=2,
)  # fmt: skip

VERIFY_TARGET_US = 2_000.0
PEER_FACTOR_TARGET = 20.0


async def measure(
    env: Env, cfg: Config, log: Callable[[str], None] = print, top: int = 0
) -> dict[str, Any]:
    names = [c for c in ALL_CASES if c in env.cases]
    for name in names:
        for _ in range(cfg.warmup):
            await env.cases[name](cfg.n[name])
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for r in range(cfg.rounds):
        # Every case once per round, the order rotated (and reversed every other round) so
        # that drifts in machine load hit every case alike.
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order if r % 2 == 0 else order[::-1]:
            gc.collect()
            per_round[name].append(await env.cases[name](cfg.n[name]))
        if r % 10 == 9 or r == cfg.rounds - 1:
            log(
                f"round {r + 1}/{cfg.rounds}: "
                + ", ".join(f"{k}={per_round[k][-1]:.0f} µs" for k in names)
            )

    us = {name: statistics.median(v) for name, v in per_round.items()}
    ratios: dict[str, float] = {}
    ratio_iqr: dict[str, tuple[float, float]] = {}
    for name in names:
        each = sorted(a / b for a, b in zip(per_round[name], per_round[VERIFY], strict=True))
        ratios[name] = statistics.median(each)
        ratio_iqr[name] = (_pct(each, 0.25), _pct(each, 0.75))
    acs_minus_verify = statistics.median(
        a - b for a, b in zip(per_round[ACS], per_round[VERIFY], strict=True)
    )

    targets = {
        VERIFY: {
            "target": f"≤ {VERIFY_TARGET_US:,.0f} µs",
            "pass": us[VERIFY] <= VERIFY_TARGET_US,
        }
    }
    if PYSAML2 in ratios:
        targets[PYSAML2] = {
            "target": f"sso_gate ≥ {PEER_FACTOR_TARGET:.0f}× faster",
            "pass": ratios[PYSAML2] >= PEER_FACTOR_TARGET,
        }
    gc.collect()
    breakdown = await acs_breakdown(env, cfg.breakdown)
    profile = await acs_profile(env, cfg.profile, top=top)
    vprofile = verify_profile(env, cfg.profile)
    forks = pysaml2_forks(env, cfg.forks)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "versions": {
            d: version(d)
            for d in ("signxml", "lxml", "cryptography", "pysaml2", "python3-saml", "xmlsec")
        }
        | {"xmlsec1": xmlsec1_version()},
        "response_bytes": len(base64.b64decode(env.response)),
        "config": dataclasses.asdict(cfg),
        "skipped": env.skipped,
        "per_round_us": per_round,
        "median_us": us,
        "ratio_vs_verify": ratios,
        "ratio_iqr": ratio_iqr,
        "acs_minus_verify_us": acs_minus_verify,
        "targets": targets,
        "acs_breakdown": breakdown,
        "acs_profile": profile,
        "verify_profile": vprofile,
        "pysaml2_processes": forks,
    }


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def labels(res: dict[str, Any]) -> dict[str, str]:
    v = {k: x or "(not installed)" for k, x in res["versions"].items()}
    return {
        VERIFY: "sso_gate `verify_response` (all checks)",
        PYSAML2: f"pysaml2 {v['pysaml2']} `parse_authn_request_response`, default xmlsec1 backend"
        f" ({v['xmlsec1']})",
        PY3SAML: f"python3-saml {v['python3-saml']} (`OneLogin_Saml2_Response.is_valid`, strict;"
        f" libxmlsec1 in-process via xmlsec {v['xmlsec']})",
        ACS: "sso_gate full ACS `POST` through `gate.wrap(app)` (fresh flow + response each)",
    }


def markdown(res: dict[str, Any]) -> str:
    us, ratio, iqr, targets = (
        res["median_us"],
        res["ratio_vs_verify"],
        res["ratio_iqr"],
        res["targets"],
    )
    names = labels(res)
    lines = [
        "| Case | µs/response | × sso_gate `verify_response` (IQR over rounds) | Target | Result |",
        "|---|---:|---:|---|---|",
    ]
    for name in ALL_CASES:
        if name in res["skipped"]:
            lines.append(f"| {names[name]} | — | — | — | skipped: {res['skipped'][name]} |")
            continue
        if name not in us:
            continue
        r = (
            "1.00×"
            if name == VERIFY
            else f"{ratio[name]:.1f}× ({iqr[name][0]:.1f}–{iqr[name][1]:.1f})"
        )
        t = targets.get(name)
        target = t["target"] if t else ("report" if name == ACS else "informative")
        result = ("**pass**" if t["pass"] else "**FAIL**") if t else "—"
        lines.append(f"| {names[name]} | {us[name]:,.0f} | {r} | {target} | {result} |")
    lines.append("")
    lines.append(
        f"Response: {res['response_bytes']:,} bytes of XML. ACS request minus `verify_response`"
        f" (median of per-round differences): {res['acs_minus_verify_us']:,.0f} µs."
    )
    b = res["acs_breakdown"]
    lines += [
        "",
        f"Where an ACS request's time goes ({b['requests']} requests; each stage timed by"
        f" wrapping it; wall {b['total_us']:,.0f} µs/request, main-thread CPU"
        f" {b['main_thread_cpu_us']:,.0f} µs, other threads' CPU"
        f" {b['other_threads_cpu_us']:,.0f} µs):",
        "",
        "| Stage | Wall µs/request | Share of wall | Main-thread CPU µs |",
        "|---|---:|---:|---:|",
    ]
    for key, v in b["stages"].items():
        label = STAGES.get(key, REST)
        lines.append(
            f"| {label} | {v['wall_us']:,.0f} | {v['wall_us'] / b['total_us']:.0%}"
            f" | {v['cpu_us']:,.0f} |"
        )
    vp = res["verify_profile"]
    lines += [
        "",
        f"Inside `verify_response` (cProfile of {vp['calls']} calls, share of internal time by"
        " package; the bare RSA-2048 signature check with `cryptography` alone takes"
        f" {vp['rsa_verify_us']:,.0f} µs):",
        "",
        "| Package | Share |",
        "|---|---:|",
    ]
    for label, share in vp["group_share"].items():
        lines.append(f"| {label} | {share:.0%} |")
    p = res["acs_profile"]
    lines += [
        "",
        f"cProfile of {p['requests']} ACS requests, main thread, share of internal time by"
        " package:",
        "",
        "| Group | Share |",
        "|---|---:|",
    ]
    for label, share in p["group_share"].items():
        lines.append(f"| {label} | {share:.0%} |")
    f = res["pysaml2_processes"]
    if f is not None:
        cmds = ", ".join(f"`xmlsec1 {k}` × {v:g}" for k, v in f["commands_per_response"].items())
        lines += [
            "",
            f"pysaml2 starts **{f['processes_per_response']:g} xmlsec1 processes per response**"
            f" ({cmds}); they take {f['process_us_per_response']:,.0f} µs of its"
            f" {f['total_us_per_response']:,.0f} µs ({f['process_share']:.0%}).",
        ]
    return "\n".join(lines)


async def main_async(cfg: Config, json_path: str | None, top: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sso_gate_bench_saml_") as d:
        env = await build_env(Path(d))
        for name, why in env.skipped.items():
            print(f"skipping {name}: {why}")
        try:
            res = await measure(env, cfg, top=top)
        finally:
            await env.aclose()
    print()
    n = ", ".join(f"{k} {v}" for k, v in cfg.n.items() if k in res["median_us"])
    print(
        f"Python {res['python']} ({res['implementation']}), {res['cpus']} CPUs, {res['date']};"
        f" {cfg.rounds} rounds; calls per case per round: {n}"
    )
    print(markdown(res))
    if top:
        print()
        print(f"Top {top} functions by internal time (cProfile, µs per ACS request):")
        for row in res["acs_profile"]["top"]:
            print(
                f"  {row['tottime_us_per_request']:8.1f}  ×{row['calls_per_request']:<6g}"
                f" {row['function']}"
            )
    if json_path:
        Path(json_path).write_text(json.dumps(res, indent=2))
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fast smoke run (small counts)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 30)")
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--top", type=int, default=0, help="print the N hottest functions of an ACS")
    args = p.parse_args(argv)
    cfg = dataclasses.replace(QUICK if args.quick else Config())
    cfg.n = dict(cfg.n)
    if args.rounds is not None:
        cfg.rounds = args.rounds
    asyncio.run(main_async(cfg, args.json, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
