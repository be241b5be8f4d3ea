"""Settings: read from SSO_GATE_* in one place, strict, secrets masked."""

from __future__ import annotations

import pytest

from sso_gate import ConfigurationError, Settings

GOOD = {
    "SSO_GATE_SECRET_KEYS": "new-key-0123456789abcdef, old-key-0123456789abcdef",
    "SSO_GATE_BASE_URL": "https://app.example.com",
    "SSO_GATE_ADMIN_API_KEY": "admin-key-0123456789abcdef",
    "SSO_GATE_DATABASE_URL": "postgresql://user:pw-secret@db/app",
}


def test_from_env_reads_everything() -> None:
    s = Settings.from_env(
        {
            **GOOD,
            "SSO_GATE_SESSION_LIFETIME": "3600",
            "SSO_GATE_PREFIX": "/auth",
            "SSO_GATE_LOGIN_PATH": "/signin",
            "SSO_GATE_EMAIL_FIELD": "username",
            "SSO_GATE_REDIS_URL": "redis://localhost:6379/0",
            "SSO_GATE_CLOCK_SKEW": "30",
        }
    )
    assert [k.reveal() for k in s.secret_keys] == [
        "new-key-0123456789abcdef",
        "old-key-0123456789abcdef",
    ]
    assert s.session_lifetime == 3600 and s.prefix == "/auth" and s.login_path == "/signin"
    assert s.email_field == "username" and s.clock_skew == 30 and s.is_https


def test_repr_masks_secrets() -> None:
    s = Settings.from_env(GOOD)
    text = repr(s) + str(s)
    for secret in ("new-key-0123456789abcdef", "admin-key-0123456789abcdef", "pw-secret"):
        assert secret not in text
    assert "Secret('**********')" in text


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SSO_GATE_SECRET_KEYS": ""}, "SSO_GATE_SECRET_KEYS"),
        ({"SSO_GATE_SECRET_KEYS": "short"}, "SSO_GATE_SECRET_KEYS"),
        ({"SSO_GATE_BASE_URL": ""}, "SSO_GATE_BASE_URL"),
        ({"SSO_GATE_BASE_URL": "app.example.com"}, "SSO_GATE_BASE_URL"),
        ({"SSO_GATE_BASE_URL": "http://app.example.com"}, "SSO_GATE_BASE_URL"),
        ({"SSO_GATE_SESSION_LIFETIME": "ten"}, "SSO_GATE_SESSION_LIFETIME"),
        ({"SSO_GATE_SESSION_LIFETIME": "5"}, "SSO_GATE_SESSION_LIFETIME"),
        ({"SSO_GATE_CLOCK_SKEW": "9999"}, "SSO_GATE_CLOCK_SKEW"),
        ({"SSO_GATE_DATABASE_URL": "mysql://x"}, "SSO_GATE_DATABASE_URL"),
        ({"SSO_GATE_REDIS_URL": "http://x"}, "SSO_GATE_REDIS_URL"),
        ({"SSO_GATE_PREFIX": "auth"}, "SSO_GATE_PREFIX"),
        ({"SSO_GATE_LOGIN_PATH": "/login/"}, "SSO_GATE_LOGIN_PATH"),
        ({"SSO_GATE_ENVIRONMENT": "staging"}, "SSO_GATE_ENVIRONMENT"),
        ({"SSO_GATE_ADMIN_API_KEY": "short"}, "SSO_GATE_ADMIN_API_KEY"),
        ({"SSO_GATE_ALLOW_HTTP_IDP": "maybe"}, "SSO_GATE_ALLOW_HTTP_IDP"),
        ({"SSO_GATE_HTTP_TIMEOUT": "-1"}, "SSO_GATE_HTTP_TIMEOUT"),
        ({"SSO_GATE_DATABASE_TIMEOUT": "0"}, "SSO_GATE_DATABASE_TIMEOUT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({**GOOD, **env})
    assert variable in str(info.value)


def test_missing_secret_keys_names_variable() -> None:
    env = dict(GOOD)
    del env["SSO_GATE_SECRET_KEYS"]
    with pytest.raises(ConfigurationError, match="SSO_GATE_SECRET_KEYS"):
        Settings.from_env(env)


def test_http_allowed_for_localhost_and_development() -> None:
    assert Settings.from_env({**GOOD, "SSO_GATE_BASE_URL": "http://localhost:8000"})
    s = Settings.from_env(
        {**GOOD, "SSO_GATE_BASE_URL": "http://app.test", "SSO_GATE_ENVIRONMENT": "development"}
    )
    assert s.http_idp_allowed and not s.is_https


def test_only_settings_reads_environ() -> None:
    from pathlib import Path

    import sso_gate

    root = Path(sso_gate.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "os.environ" in p.read_text() and p.name != "settings.py"
    ]
    assert offenders == []
