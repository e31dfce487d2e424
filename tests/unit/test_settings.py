"""Start-up configuration errors: one clear line naming the variable, non-zero exit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(**env: str) -> subprocess.CompletedProcess:
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "OIDC_", "AFRICAS_", "SMS_"))
    }
    full.update({"DJANGO_SETTINGS_MODULE": "backend.settings.base", "DJANGO_DEBUG": "1"})
    full.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"OIDC_ISSUER": "ftp://issuer.example"}, "OIDC_ISSUER"),
        ({"OIDC_ISSUER": "https://issuer.example/"}, "OIDC_AUDIENCE"),
        ({"OIDC_ALGORITHMS": "HS256"}, "OIDC_ALGORITHMS"),
        ({"OIDC_ALGORITHMS": "none"}, "OIDC_ALGORITHMS"),
        ({"OIDC_ALGORITHMS": ","}, "OIDC_ALGORITHMS"),
        ({"OIDC_SCOPE_CLAIMS": "scope,realm_access..roles"}, "OIDC_SCOPE_CLAIMS"),
        ({"OIDC_SCOPE_CLAIMS": ","}, "OIDC_SCOPE_CLAIMS"),
        ({"ISSUER_AUTH_FAILURES_PER_CLIENT": "0"}, "ISSUER_AUTH_FAILURES_PER_CLIENT"),
        ({"DATABASE_URL": "sqlite:///db.sqlite3"}, "DATABASE_URL"),
        ({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50, "DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_READ_URL": "sqlite:///replica.db"}, "DATABASE_READ_URL"),
        ({"DATABASE_READ_URL": "mysql://u@h/db"}, "DATABASE_READ_URL"),
        ({"DATABASE_LISTEN_URL": "redis://127.0.0.1:6379/0"}, "DATABASE_LISTEN_URL"),
        ({"DATABASE_READ_MAX_LAG_S": "-1"}, "DATABASE_READ_MAX_LAG_S"),
        ({"AFRICAS_TALKING_USERNAME": "sandbox"}, "AFRICAS_TALKING_API_KEY"),
        ({"SMS_DEFAULT_REGION": "XX"}, "SMS_DEFAULT_REGION"),
        ({"METRICS_PORT": "abc"}, "METRICS_PORT"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({"WORKER_NICENESS": "20"}, "WORKER_NICENESS"),
        ({"WORKER_NICENESS": "-5"}, "WORKER_NICENESS"),
        ({"RATE_LIMIT_WRITES": "lots"}, "RATE_LIMIT_WRITES"),
        ({"ADMIN_ROLES_CLAIM": "realm_access..roles"}, "ADMIN_ROLES_CLAIM"),
        ({"ADMIN_OIDC_SCOPES": "profile,email"}, "ADMIN_OIDC_SCOPES"),
        ({"ADMIN_SESSION_SECONDS": "60"}, "ADMIN_SESSION_SECONDS"),
        ({"ADMIN_SIGNIN_FAILURES_PER_USERNAME": "0"}, "ADMIN_SIGNIN_FAILURES_PER_USERNAME"),
        ({"DJANGO_DEBUG": "0", "OIDC_RSA_PRIVATE_KEY": ""}, "OIDC_RSA_PRIVATE_KEY"),
        # Issue 24: a callback token of any length was accepted.
        ({"SMS_CALLBACK_TOKEN": "x" * 31}, "SMS_CALLBACK_TOKEN"),
        ({"SMS_CALLBACK_TOKEN": "short"}, "SMS_CALLBACK_TOKEN"),
        ({"OIDC_REQUIRE_TYP": "maybe"}, "OIDC_REQUIRE_TYP"),
        ({"DJANGO_TRUSTED_PROXY_COUNT": "-1"}, "DJANGO_TRUSTED_PROXY_COUNT"),
        ({"DJANGO_TRUSTED_PROXY_COUNT": "two"}, "DJANGO_TRUSTED_PROXY_COUNT"),
        ({"WEBHOOKS_MAX_ENDPOINTS": "0"}, "WEBHOOKS_MAX_ENDPOINTS"),
        ({"WEBHOOKS_MAX_ENDPOINTS": "many"}, "WEBHOOKS_MAX_ENDPOINTS"),
    ],
)
def test_bad_configuration_stops_with_one_line(env, variable):
    result = run_check(
        **{**({"DJANGO_SECRET_KEY": "x" * 50} if env.get("DJANGO_SECRET_KEY") != "" else {}), **env}
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_good_configuration_passes():
    result = run_check(
        REDIS_URL="redis://127.0.0.1:6379/0",
        RATE_LIMIT_WRITES="100/m",
        SMS_DEFAULT_REGION="tz",
        DATABASE_READ_URL="postgres://postgres@127.0.0.1:5433/duka",
        OIDC_SCOPE_CLAIMS="scp,realm_access.roles",
        SMS_CALLBACK_TOKEN="x" * 32,
        OIDC_REQUIRE_TYP="1",
        DJANGO_TRUSTED_PROXY_COUNT="2",
        WEBHOOKS_MAX_ENDPOINTS="25",
        WEBHOOK_SECRET_KEYS="new-key-0123456789abcdef,old-key-0123456789abcdef",
    )
    assert result.returncode == 0, result.stderr


def test_wsgi_reports_configuration_errors_in_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "backend.settings.base", "DJANGO_DEBUG": "0"})
    result = subprocess.run(
        [sys.executable, "-c", "import backend.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (set DJANGO_DEBUG=1 for development)"
    ]
