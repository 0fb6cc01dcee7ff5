"""Settings come from the environment; bad values stop startup naming the variable."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tradepulse.core import env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _settings_in_subprocess(extra_env: dict, expr: str = "settings.DATABASES['default']['ENGINE']"):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "TRADEPULSE_TESTING")}
    environment.update(extra_env)
    code = f"import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','tradepulse.settings'); django.setup(); from django.conf import settings; print({expr})"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("raw,expected", [("1", True), ("yes", True), ("off", False), ("0", False)])
def test_env_bool_parses_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG") is expected


def test_env_bool_rejects_garbage_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env.env_bool("SOME_FLAG")


def test_env_int_and_json_name_the_variable(monkeypatch):
    monkeypatch.setenv("SOME_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_INT: expected a whole number"):
        env.env_int("SOME_INT", 1)
    monkeypatch.setenv("SOME_JSON", "{not json")
    with pytest.raises(ImproperlyConfigured, match="SOME_JSON: not valid JSON"):
        env.env_json("SOME_JSON", {})
    monkeypatch.setenv("SOME_JSON", "[1, 2]")
    with pytest.raises(ImproperlyConfigured, match="SOME_JSON: expected a JSON dict"):
        env.env_json("SOME_JSON", {}, expect=dict)


def test_zero_config_uses_sqlite_under_var_and_embedded_services():
    result = _settings_in_subprocess({}, "settings.DATABASES['default']['NAME'], settings.EMBEDDED, "
                                         "settings.CELERY_BROKER_URL, settings.CHANNEL_LAYERS['default']['BACKEND'], "
                                         "settings.USING_DEV_SECRET_KEY")
    assert result.returncode == 0, result.stderr
    assert "var/tradepulse.sqlite3" in result.stdout
    assert "True" in result.stdout and "memory://" in result.stdout and "InMemoryChannelLayer" in result.stdout


def test_database_and_redis_urls_switch_to_production_services():
    result = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://u:p@db.example:5432/tp", "REDIS_URL": "redis://cache.example:6379/0"},
        "settings.DATABASES['default']['ENGINE'], settings.EMBEDDED, settings.CHANNEL_LAYERS['default']['BACKEND']")
    assert result.returncode == 0, result.stderr
    assert "postgresql" in result.stdout and "False" in result.stdout and "RedisChannelLayer" in result.stdout


def test_debug_off_without_secret_key_refuses_to_start():
    result = _settings_in_subprocess({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY: must be set when DEBUG is off" in result.stderr


@pytest.mark.parametrize("key", ["short", "insecure-dev-key-do-not-use-in-production", "a" * 60,
                                 "django-insecure-" + "k3y" * 20])
def test_debug_off_with_a_weak_secret_key_refuses_to_start(key):
    result = _settings_in_subprocess({"DEBUG": "0", "SECRET_KEY": key})
    assert result.returncode != 0
    assert "SECRET_KEY: too weak for DEBUG=0" in result.stderr and key not in result.stderr


def test_compose_builds_with_a_key_production_accepts():
    compose = open(os.path.join(ROOT, "docker-compose.yml")).read()
    assert "SECRET_KEY=build-only" not in compose and "token_urlsafe(50)" in compose


def test_malformed_ccxt_overrides_names_the_variable():
    result = _settings_in_subprocess({"TRADEPULSE_CCXT_OVERRIDES": "{oops"})
    assert result.returncode != 0
    assert "TRADEPULSE_CCXT_OVERRIDES: not valid JSON" in result.stderr


def test_check_deploy_is_clean_with_production_variables():
    environment = {k: v for k, v in os.environ.items() if k not in ("TRADEPULSE_TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    environment.update({"DEBUG": "0", "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
                        "ALLOWED_HOSTS": "tradepulse.example.com", "DATABASE_URL": "sqlite:///:memory:",
                        "TRADEPULSE_ENCRYPTION_KEYS": "bPdyk1vbcxxqmVKtHmtuj5PPh9a7hV9kvd3JAVbX0_Q="})
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_require_services_turns_a_missing_service_into_a_failure():
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    environment["TRADEPULSE_REQUIRE_SERVICES"] = "1"
    code = ("import os, tests.services_plugin as p; os.environ.pop('DATABASE_URL', None); "
            "p.PG = ('127.0.0.1', 1); p._configure()")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "PostgreSQL does not answer" in (result.stderr + result.stdout)


def test_without_require_a_missing_service_falls_back_to_embedded():
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL",
                                                                     "TRADEPULSE_REQUIRE_SERVICES")}
    code = ("import os, tests.services_plugin as p; os.environ.pop('DATABASE_URL', None); "
            "os.environ.pop('REDIS_URL', None); p.PG = ('127.0.0.1', 1); p.REDIS = ('127.0.0.1', 1); "
            "p._configure(); print(os.environ['DATABASE_URL'], os.environ.get('REDIS_URL'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sqlite:///") and result.stdout.strip().endswith("None")
