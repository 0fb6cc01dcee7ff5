"""API keys at rest: encrypted in the database, rotated by a command, and never in an API
response, a log line, an audit entry or an error message."""
from __future__ import annotations

import io
import json
import logging
import os
import secrets
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from apps.audit.models import AuditEvent
from apps.trading import services
from apps.trading.models import ExchangeAccount, Health
from tradepulse.core import crypto
from tradepulse.core.logging import RedactSecretsFilter

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY, SECRET = "sim-api-key", "sim-api-secret"


def _raw(account, column="api_key"):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM trading_exchangeaccount WHERE id = %s", [account.pk])
        return cursor.fetchone()[0]


def test_keys_are_stored_encrypted_and_read_back(testnet):
    raw = _raw(testnet)
    assert KEY not in raw and SECRET not in _raw(testnet, "api_secret")
    assert crypto.decrypt(raw) == KEY
    fresh = ExchangeAccount.objects.get(pk=testnet.pk)
    assert fresh.api_key == KEY and fresh.api_secret == SECRET


def test_rotation_re_encrypts_every_value_with_the_newest_key(settings, testnet):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old]
    testnet.api_key, testnet.api_secret = KEY, SECRET
    testnet.save()
    settings.ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_encryption_key", "--json", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["fields"]["trading.ExchangeAccount.api_key"]["rotated"] == 1
    assert summary["rotated"] >= 2 and summary["key_derived"] is False
    settings.ENCRYPTION_KEYS = [new]  # the old key is gone: everything still opens
    fresh = ExchangeAccount.objects.get(pk=testnet.pk)
    assert fresh.api_key == KEY and fresh.api_secret == SECRET
    out = io.StringIO()
    call_command("rotate_encryption_key", "--json", stdout=out)
    assert json.loads(out.getvalue())["rotated"] == 0  # idempotent
    assert AuditEvent.objects.filter(action="core.encryption.rotated").count() == 2


def test_a_value_no_key_opens_fails_with_a_clear_message(settings, testnet):
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError, match="TRADEPULSE_ENCRYPTION_KEYS"):
        ExchangeAccount.objects.get(pk=testnet.pk)
    with pytest.raises(CommandError, match="trading.ExchangeAccount.api_key .* cannot be decrypted"):
        call_command("rotate_encryption_key")


def test_production_refuses_to_start_without_keys_and_names_a_bad_one():
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TRADEPULSE_ENCRYPTION_KEYS", "TRADEPULSE_TESTING")}
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','tradepulse.settings'); django.setup()"
    env.update({"DEBUG": "0", "SECRET_KEY": "test-only-production-secret-key-0123456789-abcdefghijklmnop"})
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "TRADEPULSE_ENCRYPTION_KEYS: must be set when DEBUG is off" in result.stderr
    env["TRADEPULSE_ENCRYPTION_KEYS"] = "not-a-key"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "key #1 is not a Fernet key" in result.stderr


def test_api_never_returns_a_secret(api, alice, testnet, binance):
    client = api(alice)
    for response in (client.get("/api/v1/trading/accounts/"), client.get(f"/api/v1/trading/accounts/{testnet.pk}/"),
                     client.post("/api/v1/trading/accounts/", {"name": "Live", "exchange": binance.pk, "mode": "live",
                                                                "api_key": "live-key-123456", "api_secret": "live-s3cret-99"},
                                 format="json"),
                     client.post(f"/api/v1/trading/accounts/{testnet.pk}/test-connection/")):
        assert response.status_code in (200, 201), response.content
        body = response.content.decode()
        for secret in (KEY, SECRET, "live-key-123456", "live-s3cret-99"):
            assert secret not in body
    detail = client.get(f"/api/v1/trading/accounts/{testnet.pk}/").json()
    assert detail["has_credentials"] is True and detail["api_key_hint"] == "…-key"
    assert "api_key" not in detail and "api_secret" not in detail


def test_audit_entries_hold_no_secret(alice, testnet):
    services.account_update(account=testnet, api_key="replacement-key-1", api_secret="replacement-secret-2",
                            reason="new key")
    text = json.dumps([[e.changes, e.metadata, e.reason] for e in AuditEvent.objects.all()])
    for secret in (KEY, SECRET, "replacement-key-1", "replacement-secret-2"):
        assert secret not in text
    event = AuditEvent.objects.get(action="trading.account.updated")
    assert event.changes["credentials"] == ["kept", "replaced: api_key, api_secret"]


def test_log_lines_and_errors_never_show_a_decrypted_secret(testnet, sim, caplog):
    ExchangeAccount.objects.get(pk=testnet.pk)  # decrypting registers the values with the log filter
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "request to %s failed", (f"/x?k={KEY}&s={SECRET}",),
                               None)
    RedactSecretsFilter().filter(record)
    assert KEY not in record.getMessage() and SECRET not in record.getMessage()
    sim.set_faults(auth_fail=True)
    with caplog.at_level(logging.DEBUG):
        result = services.account_test_connection(account=testnet)
    assert result["health"] == Health.AUTH_FAILED
    testnet.refresh_from_db()
    shown = result["error"] + testnet.last_error + caplog.text
    assert "rejected the API credentials" in result["error"]
    assert KEY not in shown and SECRET not in shown
