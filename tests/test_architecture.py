"""Layering (imports point down only) and the pinned public surface."""

from __future__ import annotations

import ast
from pathlib import Path

import sso_gate

ROOT = Path(sso_gate.__file__).parent
FRAMEWORKS = ("starlette", "fastapi", "sso_gate.web")


def is_framework(mod: str) -> bool:
    # "sso_gate.webhooks" (the receiver-side helper, no framework) is not "sso_gate.web"
    return any(mod == f or mod.startswith(f + ".") for f in FRAMEWORKS)


# Protocol cores, storage and the foundation never import a web framework or the web layer;
# services never import the web layer. devidp.py, demo.py and cli.py are entry points on top.
CORE = ("oidc/", "saml/", "scim/", "store/", "services/")
FOUNDATION = (
    "settings.py",
    "models.py",
    "exceptions.py",
    "_crypto.py",
    "_domains.py",
    "_ids.py",
    "_time.py",
    "_urls.py",
    "metrics.py",
    "logs.py",
)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_layers_do_not_import_frameworks_or_web() -> None:
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(CORE) or rel in FOUNDATION:
            for mod in imports_of(path):
                if is_framework(mod) or mod.startswith("sso_gate.gate"):
                    bad.append(f"{rel} imports {mod}")
    assert bad == []


def test_protocol_cores_do_not_import_services_or_store() -> None:
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("oidc/", "saml/", "scim/")):
            for mod in imports_of(path):
                if mod.startswith(("sso_gate.services", "sso_gate.store", "sqlalchemy", "httpx")):
                    bad.append(f"{rel} imports {mod}")
    assert bad == []


def test_exported_names_are_pinned() -> None:
    assert sorted(sso_gate.__all__) == sorted(
        [
            "SSOGate",
            "Settings",
            "Secret",
            "Profile",
            "Session",
            "Organization",
            "Connection",
            "SSOContext",
            "requires_sso",
            "RequireSSO",
            "check_access",
            "SSOGateError",
            "ConfigurationError",
            "ValidationError",
            "NotFoundError",
            "ConflictError",
            "AuthenticationError",
            "SSOFlowError",
            "TokenValidationError",
            "IdPError",
            "IdPUnavailableError",
        ]
    )
    for name in sso_gate.__all__:
        assert getattr(sso_gate, name).__module__.startswith("sso_gate")


def test_every_module_declares_all() -> None:
    missing = [
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*.py")
        if p.name != "__init__.py"
        and "migrations" not in p.parts
        and "__all__" not in p.read_text()
    ]
    assert missing == []


def test_exception_codes_and_statuses() -> None:
    from sso_gate import exceptions

    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, exceptions.SSOGateError)
        assert (
            isinstance(cls.code, str)
            and 400 <= cls.http_status < 600
            or cls is exceptions.SSOGateError
        )
