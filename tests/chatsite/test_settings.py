"""Settings fail loudly, naming the variable, and production settings pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "HTTPS", "ALLOWED_HOSTS")}
    full_env.update(env)
    full_env["DJANGO_SETTINGS_MODULE"] = "chatsite.settings"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120, check=False
    )


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return run(["-c", "from django.conf import settings; settings.DEBUG"], **env)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be a boolean"),
        ("HTTPS", "sometimes", "HTTPS must be a boolean"),
        ("DATABASE_URL", "mysql://db/chat", "DATABASE_URL must be a URL starting with postgres://"),
        ("REDIS_URL", "http://localhost:6379", "REDIS_URL must be a URL starting with redis://"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 32 characters"),
        ("CSRF_TRUSTED_ORIGINS", "example.com", "CSRF_TRUSTED_ORIGINS entries must look like"),
        ("DB_POOL_MAX", "lots", "DB_POOL_MAX must be an integer"),
        ("MAX_REQUEST_BYTES", "10", "MAX_REQUEST_BYTES must be at least 1024"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of"),
        ("SIGNUP", "sometimes", "SIGNUP must be one of open, invite, approval, closed"),
        ("LOCAL_LOGIN", "perhaps", "LOCAL_LOGIN must be a boolean"),
        ("STAFF_2FA_REQUIRED", "please", "STAFF_2FA_REQUIRED must be a boolean"),
        ("EMAIL_BACKEND", "pigeon", "EMAIL_BACKEND must be one of console, smtp"),
        ("LOGIN_FAILURE_LIMIT", "0", "LOGIN_FAILURE_LIMIT must be at least 1"),
        ("LOGIN_ACCOUNT_FAILURE_LIMIT", "9", "LOGIN_ACCOUNT_FAILURE_LIMIT must be at least 10"),
        ("LOGIN_SLOWDOWN_MAX_SECONDS", "600", "LOGIN_SLOWDOWN_MAX_SECONDS must be at most 60"),
        ("PROXY_HOPS", "-1", "PROXY_HOPS must be at least 0"),
        ("PROVIDER_KEY_ENV_ALLOWED", "*", "PROVIDER_KEY_ENV_ALLOWED entries must be"),
        ("OIDC_SERVER_URL", "ftp://idp", "OIDC_SERVER_URL must be a URL"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be one of text, json, got 'xml'"),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be at least 16 characters"),
        ("METRICS_ALLOWED_ADDRESSES", "10.0.0.0/8,the-office", "METRICS_ALLOWED_ADDRESSES must list addresses"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://collector:4317", "OTEL_EXPORTER_OTLP_ENDPOINT must be a URL"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(variable: str, value: str, message: str) -> None:
    result = load_settings(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_a_database_url_password_is_never_echoed_in_the_error() -> None:
    result = load_settings(DATABASE_URL="mysql://user:hunter2-secret@db/chat")
    assert result.returncode != 0
    assert "hunter2-secret" not in result.stderr


@pytest.mark.parametrize(("variable", "value"), [("PORT", "eighty"), ("PORT", "70000")])
def test_the_launcher_refuses_a_bad_port(variable: str, value: str) -> None:
    result = run(["-m", "chatsite.launcher"], **{variable: value})
    assert result.returncode != 0
    assert f"Configuration error: {variable} must be" in result.stderr


def test_the_launcher_refuses_an_unknown_server_naming_the_variable() -> None:
    result = run(["-m", "chatsite.launcher"], SERVER="gunicorn")
    assert result.returncode != 0
    assert "Configuration error: SERVER must be one of uvicorn, daphne, got 'gunicorn'" in result.stderr


def test_the_launcher_refuses_a_bad_access_log_value() -> None:
    result = run(["-m", "chatsite.launcher"], ACCESS_LOG="verbose")
    assert result.returncode != 0
    assert "Configuration error: ACCESS_LOG must be a boolean" in result.stderr


def test_an_unset_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = run(["-c", code], VAR_DIR=str(tmp_path), DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    second = run(["-c", code], VAR_DIR=str(tmp_path), DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_settings_pass_check_deploy() -> None:
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        HTTPS="1",
        SECRET_KEY="x7Gq2-production-like-secret-key-4fPz9LmQ1vR8sT0wYb6",
        ALLOWED_HOSTS="chat.example.com",
        CSRF_TRUSTED_ORIGINS="https://chat.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_the_secret_key_is_generated() -> None:
    result = run(["manage.py", "check", "--deploy"], DEBUG="0", HTTPS="1", ALLOWED_HOSTS="chat.example.com")
    assert "chatsite.W001" in result.stdout + result.stderr
