"""Start and drive a real SAML 2.0 IdP peer: Debian's ``simplesamlphp`` package (1.19.x).

The IdP runs under PHP's built-in web server (``php -S``) bound to 127.0.0.1 only, with a fresh
configuration directory per run (passed through the ``SIMPLESAMLPHP_CONFIG_DIR`` environment
variable, which SimpleSAMLphp honours; nothing under /etc is touched). Users log in through the
``exampleauth:UserPass`` form; the NameID is the user's ``email`` attribute.

Service providers can be registered after the IdP has started (:meth:`SamlIdP.add_sp`): an SP
that creates its configuration from the running IdP's metadata (sso_gate does: each connection
gets its own SP entity ID and ACS URL, known only once the connection exists) is added then.
SimpleSAMLphp includes its metadata files on every request; the metadata directory is kept out
of PHP's OPcache so a rewritten file takes effect on the next request.

SimpleSAMLphp reports most errors as an HTTP 200 HTML page; the actual cause is in its log file
(``SamlIdP.log_path``, DEBUG level, including every SAML message), so every error raised here
carries the tail of that log.
"""

from __future__ import annotations

import base64
import datetime
import functools
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SSP_DIR = Path("/usr/share/simplesamlphp")
SSP_WWW = SSP_DIR / "www"
STARTUP_TIMEOUT = 20.0
MAX_STEPS = 20
LOG_TAIL_LINES = 40
URL_PATH = "simplesaml"
REQUIRED_PHP_EXTENSIONS = ("dom", "openssl", "xml", "session")

NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

__all__ = [
    "SamlIdP",
    "SamlPost",
    "SamlUser",
    "SimpleSamlPhpError",
    "SpConfig",
    "available",
    "default_users",
    "drive_login",
    "idp_initiated_url",
    "missing_php_extensions",
    "run_simplesamlphp",
    "self_signed_cert",
]


class SimpleSamlPhpError(RuntimeError):
    """The SimpleSAMLphp peer could not be started, or it refused a request."""


@dataclass
class SpConfig:
    """One ``saml20-sp-remote`` entry: a service provider the IdP trusts."""

    entity_id: str
    acs_url: str
    slo_url: str | None = None
    cert_pem: str | None = None
    require_signed_authn_request: bool = False
    nameid_format: str = NAMEID_EMAIL
    # Per-SP overrides of the IdP-wide flags of :func:`run_simplesamlphp` (None: IdP default).
    sign_response: bool | None = None
    sign_assertion: bool | None = None
    encrypt_assertion: bool | None = None


@dataclass
class SamlUser:
    """A user of the IdP's ``exampleauth:UserPass`` source."""

    username: str
    password: str
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SamlIdP:
    """A running SimpleSAMLphp IdP."""

    entity_id: str
    sso_url: str
    slo_url: str | None
    metadata_url: str
    metadata_xml: str
    cert_pem: str
    base_url: str
    log_path: Path
    metadata_dir: Path = field(repr=False, default=Path())
    encrypt_assertion: bool = field(repr=False, default=False)
    sps: list[SpConfig] = field(repr=False, default_factory=list)

    def set_sps(self, sps: Sequence[SpConfig]) -> None:
        """Replace the trusted SPs; effective from the next request."""
        _write_sp_remote(self.metadata_dir, list(sps), self.encrypt_assertion)
        self.sps = list(sps)

    def add_sp(self, sp: SpConfig) -> None:
        """Trust one more SP (an entry with the same entity ID is replaced)."""
        self.set_sps([s for s in self.sps if s.entity_id != sp.entity_id] + [sp])


@dataclass
class SamlPost:
    """The HTTP-POST binding form the IdP asks the browser to submit to the SP's ACS."""

    action: str
    saml_response: str
    relay_state: str | None


def default_users() -> list[SamlUser]:
    return [
        SamlUser(
            "alice",
            "alicepass",
            {
                "email": ["alice@acme.test"],
                "givenName": ["Alice"],
                "sn": ["Smith"],
                "groups": ["Engineering", "Admins"],
            },
        ),
        SamlUser(
            "bob",
            "bobpass",
            {
                "email": ["bob@acme.test"],
                "givenName": ["Bob"],
                "sn": ["Jones"],
                "groups": ["Sales"],
            },
        ),
    ]


# --------------------------------------------------------------------------------------------
# availability


@functools.cache
def missing_php_extensions() -> tuple[str, ...]:
    """PHP extensions SimpleSAMLphp needs that ``php -m`` does not list (Debian: php-xml)."""
    php = shutil.which("php")
    if php is None:
        return REQUIRED_PHP_EXTENSIONS
    proc = subprocess.run([php, "-m"], capture_output=True, text=True, check=False, timeout=30)
    loaded = {line.strip().lower() for line in proc.stdout.splitlines()}
    return tuple(ext for ext in REQUIRED_PHP_EXTENSIONS if ext not in loaded)


def available() -> bool:
    """Whether php, the SimpleSAMLphp install dir and the PHP extensions it needs are present."""
    return (
        shutil.which("php") is not None
        and (SSP_WWW / "_include.php").is_file()
        and not missing_php_extensions()
    )


# --------------------------------------------------------------------------------------------
# configuration


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed_cert(common_name: str) -> tuple[str, str]:
    """A fresh RSA-2048 private key (PKCS#8) and self-signed certificate (now-1d..now+1y), PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _cert_data(cert_pem: str) -> str:
    """The base64 DER body of a PEM certificate (SimpleSAMLphp's ``certData``)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


class _Raw(str):
    """A PHP expression emitted verbatim by :func:`_php`."""


PhpValue = (
    str
    | bool
    | int
    | None
    | Sequence["PhpValue"]
    | Mapping[str, "PhpValue"]
    | Mapping[int, "PhpValue"]
    | Mapping[str | int, "PhpValue"]
)


def _php(value: PhpValue, indent: int = 0) -> str:
    """Render a Python value as a PHP literal."""
    pad = "    " * (indent + 1)
    end = "    " * indent
    if isinstance(value, _Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        items = [f"{pad}{_php(k)} => {_php(v, indent + 1)},\n" for k, v in value.items()]
        return "[\n" + "".join(items) + end + "]"
    items = [f"{pad}{_php(v, indent + 1)},\n" for v in value]
    return "[\n" + "".join(items) + end + "]"


def _php_file(variable: str, entries: Mapping[str | int, PhpValue]) -> str:
    return f"<?php\n// Generated by tests/peers/simplesamlphp.py\n${variable} = {_php(entries)};\n"


def _metadata_file(entries: Mapping[str, PhpValue]) -> str:
    body = "".join(f"$metadata[{_php(k)}] = {_php(v)};\n" for k, v in entries.items())
    return "<?php\n// Generated by tests/peers/simplesamlphp.py\n" + body


def _nameid_filter(fmt: str) -> dict[str, PhpValue]:
    return {"class": "saml:AttributeNameID", "attribute": "email", "Format": fmt}


def _sp_entry(sp: SpConfig) -> dict[str, PhpValue]:
    if sp.require_signed_authn_request and sp.cert_pem is None:
        raise ValueError(f"SP {sp.entity_id!r}: require_signed_authn_request needs cert_pem")
    entry: dict[str, PhpValue] = {
        "AssertionConsumerService": [
            {"Binding": BINDING_HTTP_POST, "Location": sp.acs_url, "index": 0},
        ],
        "NameIDFormat": sp.nameid_format,
        "simplesaml.nameidattribute": "email",
        "validate.authnrequest": sp.require_signed_authn_request,
        "signature.algorithm": RSA_SHA256,
    }
    if sp.slo_url is not None:
        entry["SingleLogoutService"] = [
            {"Binding": BINDING_HTTP_REDIRECT, "Location": sp.slo_url},
            {"Binding": BINDING_HTTP_POST, "Location": sp.slo_url},
        ]
    if sp.cert_pem is not None:
        entry["certData"] = _cert_data(sp.cert_pem)
    if sp.nameid_format not in (NAMEID_EMAIL, NAMEID_TRANSIENT):
        # The IdP-hosted filter only fills the emailAddress format; give this SP its own.
        entry["authproc"] = {90: _nameid_filter(sp.nameid_format)}
    for option, value in (
        ("saml20.sign.response", sp.sign_response),
        ("saml20.sign.assertion", sp.sign_assertion),
        ("assertion.encryption", sp.encrypt_assertion),
    ):
        if value is not None:
            entry[option] = value
    return entry


def _write_sp_remote(metadata_dir: Path, sps: list[SpConfig], encrypt_assertion: bool) -> None:
    """(Re)write ``saml20-sp-remote.php`` atomically: a request never sees half a file."""
    for sp in sps:
        encrypts = encrypt_assertion if sp.encrypt_assertion is None else sp.encrypt_assertion
        if encrypts and sp.cert_pem is None:
            raise ValueError(f"SP {sp.entity_id!r}: encrypt_assertion needs cert_pem")
    remote = {sp.entity_id: _sp_entry(sp) for sp in sps}
    target = metadata_dir / "saml20-sp-remote.php"
    staging = metadata_dir / f".saml20-sp-remote.{secrets.token_hex(4)}.tmp"
    staging.write_text(_metadata_file(remote))
    os.replace(staging, target)


def _write_config(
    root: Path,
    *,
    port: int,
    hostname: str,
    sps: list[SpConfig],
    users: list[SamlUser],
    sign_response: bool,
    sign_assertion: bool,
    encrypt_assertion: bool,
) -> tuple[str, str]:
    """Write config, metadata, keys and docroot under ``root``; return (entity_id, cert_pem)."""
    base_url = f"http://{hostname}:{port}/{URL_PATH}/"
    entity_id = base_url + "saml2/idp/metadata.php"
    dirs = {name: root / name for name in ("config", "metadata", "cert", "log", "data", "tmp")}
    dirs["sessions"] = root / "sessions"
    dirs["docroot"] = root / "docroot"
    for path in dirs.values():
        path.mkdir(mode=0o700)
    # php -S serves <docroot>/simplesaml/... from the package's www/ through a symlink; PHP
    # resolves __FILE__ through it, so the package finds its lib/ and vendor/ as usual.
    (dirs["docroot"] / URL_PATH).symlink_to(SSP_WWW, target_is_directory=True)

    key_pem, cert_pem = self_signed_cert("sso-gate test IdP (SimpleSAMLphp)")
    (dirs["cert"] / "idp.key").write_text(key_pem)
    (dirs["cert"] / "idp.crt").write_text(cert_pem)

    config: dict[str | int, PhpValue] = {
        "baseurlpath": base_url,
        "certdir": f"{dirs['cert']}/",
        "loggingdir": f"{dirs['log']}/",
        "datadir": f"{dirs['data']}/",
        "tempdir": str(dirs["tmp"]),
        "metadatadir": f"{dirs['metadata']}/",
        "metadata.sources": [{"type": "flatfile", "directory": str(dirs["metadata"])}],
        "technicalcontact_name": "sso_gate test suite",
        "technicalcontact_email": "sso-gate-tests@example.org",
        "timezone": "UTC",
        "secretsalt": secrets.token_urlsafe(32),
        "auth.adminpassword": secrets.token_urlsafe(16),
        "admin.protectindexpage": False,
        "admin.protectmetadata": False,
        "admin.checkforupdates": False,
        "trusted.url.domains": sorted({"127.0.0.1", hostname}),
        "enable.http_post": False,
        "debug": {"saml": True, "backtraces": True, "validatexml": False},
        "showerrors": True,
        "errorreporting": False,
        "logging.level": _Raw("SimpleSAML\\Logger::DEBUG"),
        "logging.handler": "file",
        "logging.logfile": "simplesamlphp.log",
        "logging.processname": "simplesamlphp",
        "statistics.out": [],
        "enable.saml20-idp": True,
        "enable.shib13-idp": False,
        "enable.adfs-idp": False,
        "module.enable": {"exampleauth": True, "core": True, "saml": True, "admin": True},
        "store.type": "phpsession",
        "session.cookie.secure": False,
        "session.cookie.samesite": None,
        "session.cookie.path": "/",
        "session.phpsession.savepath": str(dirs["sessions"]),
        "session.phpsession.cookiename": "SimpleSAML",
        "session.phpsession.httponly": True,
        "language.cookie.secure": False,
        "metadata.sign.enable": False,
    }
    (dirs["config"] / "config.php").write_text(_php_file("config", config))

    userpass: dict[str | int, PhpValue] = {0: "exampleauth:UserPass"}
    for user in users:
        if ":" in user.username:
            raise ValueError(f"username {user.username!r} must not contain ':'")
        userpass[f"{user.username}:{user.password}"] = dict(user.attributes)
    authsources: dict[str | int, PhpValue] = {
        "admin": ["core:AdminPassword"],
        "example-userpass": userpass,
    }
    (dirs["config"] / "authsources.php").write_text(_php_file("config", authsources))

    idp: dict[str, PhpValue] = {
        "host": "__DEFAULT__",
        "privatekey": "idp.key",
        "certificate": "idp.crt",
        "auth": "example-userpass",
        "signature.algorithm": RSA_SHA256,
        "NameIDFormat": NAMEID_EMAIL,
        "simplesaml.nameidattribute": "email",
        "saml20.sign.response": sign_response,
        "saml20.sign.assertion": sign_assertion,
        "assertion.encryption": encrypt_assertion,
        "authproc": {90: _nameid_filter(NAMEID_EMAIL)},
    }
    (dirs["metadata"] / "saml20-idp-hosted.php").write_text(_metadata_file({entity_id: idp}))
    _write_sp_remote(dirs["metadata"], sps, encrypt_assertion)
    # OPcache (on for php -S) would serve a rewritten metadata file from its cache for up to
    # opcache.revalidate_freq seconds: keep the metadata directory out of it (a path prefix).
    (root / "opcache-blacklist.txt").write_text(f"{dirs['metadata'].resolve()}/\n")
    return entity_id, cert_pem


# --------------------------------------------------------------------------------------------
# process


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no {path.name})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path.name} is empty)"


# Log files of running IdPs by origin, so drive_login can quote the right log.
_LOGS: dict[str, tuple[Path, Path]] = {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _diagnostics(origin: str) -> str:
    paths = _LOGS.get(origin)
    if paths is None:
        return "(no SimpleSAMLphp peer is running at this origin)"
    log_path, server_log = paths
    return (
        f"--- SimpleSAMLphp log tail ({log_path}) ---\n{_tail(log_path)}\n"
        f"--- php -S output tail ---\n{_tail(server_log, 15)}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_ready(proc: subprocess.Popen[bytes], metadata_url: str) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    with httpx.Client(timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SimpleSamlPhpError(
                    f"php -S exited with code {proc.returncode} during startup"
                )
            try:
                response = client.get(metadata_url)
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200 and "EntityDescriptor" in response.text:
                    return response.text
                last = f"HTTP {response.status_code}: {_page_text(response.text)[:500]}"
            time.sleep(0.1)
    raise SimpleSamlPhpError(
        f"SimpleSAMLphp metadata {metadata_url} not ready within {STARTUP_TIMEOUT:.0f}s "
        f"(last: {last})"
    )


@contextmanager
def run_simplesamlphp(
    sps: list[SpConfig],
    users: list[SamlUser] | None = None,
    port: int | None = None,
    sign_response: bool = False,
    sign_assertion: bool = True,
    encrypt_assertion: bool = False,
    hostname: str = "127.0.0.1",
) -> Iterator[SamlIdP]:
    """Run a SimpleSAMLphp IdP trusting ``sps``; yield it once its metadata answers.

    ``users`` defaults to :func:`default_users` (alice/alicepass, bob/bobpass). ``hostname`` is
    the host in the IdP's URLs (entity ID, SSO URL): the server always listens on 127.0.0.1
    only, so use a name that resolves there, e.g. ``localhost`` to put the IdP on another site
    than an SP at ``127.0.0.1``. More SPs can be added later (:meth:`SamlIdP.add_sp`). The php
    process is terminated and the temporary configuration removed on exit.
    """
    php = shutil.which("php")
    if php is None or not (SSP_WWW / "_include.php").is_file():
        raise SimpleSamlPhpError(
            "php and Debian's simplesamlphp are needed: "
            "apt-get install simplesamlphp php-cli php-xml"
        )
    missing = missing_php_extensions()
    if missing:
        raise SimpleSamlPhpError(
            f"PHP extensions {', '.join(missing)} are missing: apt-get install php-xml"
        )
    if port is None:
        port = _free_port()
    root = Path(tempfile.mkdtemp(prefix="sso-gate-simplesamlphp-"))
    try:
        entity_id, cert_pem = _write_config(
            root,
            port=port,
            hostname=hostname,
            sps=sps,
            users=default_users() if users is None else users,
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            encrypt_assertion=encrypt_assertion,
        )
        base_url = f"http://{hostname}:{port}/{URL_PATH}/"
        log_path = root / "log" / "simplesamlphp.log"
        server_log = root / "php-server.log"
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "SIMPLESAMLPHP_CONFIG_DIR": str(root / "config"),
            "TMPDIR": str(root / "tmp"),
        }
        command = [
            php,
            "-d",
            "display_errors=stderr",
            "-d",
            "log_errors=0",
            "-d",
            f"session.save_path={root / 'sessions'}",
            "-d",
            f"opcache.blacklist_filename={root / 'opcache-blacklist.txt'}",
            "-S",
            f"127.0.0.1:{port}",
            "-t",
            str(root / "docroot"),
        ]
        origin = _origin(base_url)
        with server_log.open("wb") as sink:
            proc = subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        _LOGS[origin] = (log_path, server_log)
        try:
            metadata_url = entity_id
            try:
                # Asked at the listening address, whatever name the URLs carry.
                metadata_xml = _wait_ready(
                    proc, f"http://127.0.0.1:{port}/{URL_PATH}/saml2/idp/metadata.php"
                )
            except SimpleSamlPhpError as exc:
                raise SimpleSamlPhpError(f"{exc}\n{_diagnostics(origin)}") from None
            yield SamlIdP(
                entity_id=entity_id,
                sso_url=base_url + "saml2/idp/SSOService.php",
                slo_url=base_url + "saml2/idp/SingleLogoutService.php",
                metadata_url=metadata_url,
                metadata_xml=metadata_xml,
                cert_pem=cert_pem,
                base_url=base_url,
                log_path=log_path,
                metadata_dir=root / "metadata",
                encrypt_assertion=encrypt_assertion,
                sps=list(sps),
            )
        finally:
            _LOGS.pop(origin, None)
            _stop(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def idp_initiated_url(idp: SamlIdP, sp_entity_id: str, relay_state: str | None = None) -> str:
    """The URL that starts IdP-initiated SSO towards ``sp_entity_id``."""
    params = {"spentityid": sp_entity_id}
    if relay_state is not None:
        params["RelayState"] = relay_state
    return f"{idp.sso_url}?{urlencode(params)}"


# --------------------------------------------------------------------------------------------
# browser


@dataclass
class _Form:
    action: str | None
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects forms (with their inputs) and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "form":
            self.forms.append(
                _Form(attributes.get("action"), attributes.get("method", "get").lower())
            )
        elif tag in ("input", "button", "select", "textarea") and self.forms:
            name = attributes.get("name")
            kind = attributes.get("type", "text").lower()
            if name and kind not in ("submit", "button", "image", "reset", "checkbox", "radio"):
                self.forms[-1].fields[name] = attributes.get("value", "")
                self.forms[-1].types[name] = kind

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.text.append(data.strip())


def _parse(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser


def _page_text(html: str) -> str:
    return re.sub(r"\s+", " ", " ".join(_parse(html).text)).strip()


async def drive_login(
    client: httpx.AsyncClient, authn_request_url: str, username: str, password: str
) -> SamlPost:
    """Play the browser at the IdP until it hands back the HTTP-POST form for the SP's ACS.

    ``authn_request_url`` is an HTTP-Redirect binding AuthnRequest URL at the IdP's SSO endpoint
    (or an :func:`idp_initiated_url`). The form is returned, not posted.

    ``client`` keeps the IdP's session cookie: a later call with the same client is answered
    from the existing IdP session without showing the login form, so ``username`` and
    ``password`` are then ignored and the response is for whoever logged in first. Use a fresh
    client per user.
    """
    origin = _origin(authn_request_url)
    submitted = False
    method, url = "GET", authn_request_url
    data: dict[str, str] | None = None
    for _ in range(MAX_STEPS):
        response = await client.request(method, url, data=data, follow_redirects=False)
        if response.is_redirect:
            method, url, data = "GET", urljoin(url, response.headers["location"]), None
            continue
        page = _parse(response.text) if "html" in response.headers.get("content-type", "") else None
        forms = page.forms if page is not None else []
        for form in forms:
            if "SAMLResponse" in form.fields:
                return SamlPost(
                    action=urljoin(url, form.action or ""),
                    saml_response=form.fields["SAMLResponse"],
                    relay_state=form.fields.get("RelayState"),
                )
        login = next((f for f in forms if "password" in f.types.values()), None)
        if login is not None and not submitted and response.status_code == 200:
            fields = dict(login.fields)
            for name, kind in login.types.items():
                if kind == "password":
                    fields[name] = password
            fields["username"] = username
            submitted = True
            method = login.method.upper() if login.method in ("get", "post") else "POST"
            url, data = urljoin(url, login.action or ""), fields
            continue
        text = " ".join(page.text) if page is not None else response.text
        text = re.sub(r"\s+", " ", text).strip()
        what = "rejected the login" if login is not None else "did not return a SAML response"
        raise SimpleSamlPhpError(
            f"SimpleSAMLphp {what}: HTTP {response.status_code} at {url}\n"
            f"page text: {text[:3000]}\n{_diagnostics(origin)}"
        )
    raise SimpleSamlPhpError(
        f"no SAML response after {MAX_STEPS} steps (last URL {url})\n{_diagnostics(origin)}"
    )
