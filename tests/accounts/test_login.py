"""Login: throttled after repeated failures, audited, optional TOTP second factor, idle timeout."""
from __future__ import annotations

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.audit.models import AuditEvent
from tests.conftest import PASSWORD


def _login(client, username, password, otp=""):
    return client.post("/login/", {"username": username, "password": password, "otp_token": otp},
                       REMOTE_ADDR="10.0.0.7")


def test_good_login_lands_on_dashboard_and_is_audited(alice):
    client = Client()
    response = _login(client, "alice", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    event = AuditEvent.objects.get(action="accounts.user.login")
    assert event.actor_id == alice.pk and event.ip == "10.0.0.7" and event.request_id


def test_failed_logins_are_audited_and_throttled(alice, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = _login(client, "alice", "wrong-password")
    assert AuditEvent.objects.filter(action="accounts.user.login_failed").count() >= settings.AXES_FAILURE_LIMIT - 1
    # Locked out now: even the right password is refused, with a message that says why.
    response = _login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_login_audit_never_contains_the_password(alice):
    _login(Client(), "alice", "Secret-Attempt-123")
    dump = str(list(AuditEvent.objects.values()))
    assert "Secret-Attempt-123" not in dump


def test_user_with_totp_needs_the_code(alice):
    device = TOTPDevice.objects.create(user=alice, name="phone", confirmed=True)
    client = Client()
    response = _login(client, "alice", PASSWORD)
    assert response.status_code == 200 and "Enter the current code" in response.content.decode()
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    response = _login(client, "alice", PASSWORD, otp=code)
    assert response.status_code == 302


def test_totp_enrolment_through_the_security_page(alice):
    client = Client()
    client.force_login(alice)
    page = client.get("/account/security/")
    assert page.status_code == 200 and "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user=alice, confirmed=False)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    response = client.post("/account/security/", {"action": "confirm", "device": device.pk, "code": code})
    assert response.status_code == 302
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    event = AuditEvent.objects.get(action="accounts.2fa.enabled")
    assert event.actor_id == alice.pk and event.target_id == str(alice.pk) and event.request_id


def test_staff_without_second_factor_are_sent_to_enrol_when_required(olivia, settings):
    settings.REQUIRE_2FA_FOR_STAFF = True
    client = Client()
    client.force_login(olivia)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/account/security/")


def test_session_expires_after_the_idle_timeout(settings):
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_MINUTES * 60


@pytest.mark.parametrize("path", ["/", "/audit/", "/health/", "/account/tokens/"])
def test_pages_need_login(db, path):
    response = Client().get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_one_address_spraying_many_usernames_is_locked_out(alice, bob, settings):
    """Fewer failures per username than the per-user limit, but many usernames from one address."""
    settings.LOGIN_IP_FAILURE_LIMIT = 6
    client = Client()
    for i in range(settings.LOGIN_IP_FAILURE_LIMIT - 1):
        assert _login(client, f"user{i}", "Spring2026!").status_code == 200  # the usual "wrong password" form
    response = _login(client, "bob", "Spring2026!")  # the limit is reached on this failure
    assert response.status_code == 429 and "Too many failed logins" in response.content.decode()
    # The address is locked out now, even for a right password of a username it never tried.
    response = _login(Client(), "alice", PASSWORD)
    assert response.status_code == 429 and "_auth_user_id" not in Client().session
    # Another address is not affected.
    other = Client()
    assert other.post("/login/", {"username": "alice", "password": PASSWORD, "otp_token": ""},
                      REMOTE_ADDR="10.0.0.8").status_code == 302


def test_per_ip_limit_uses_the_proxy_aware_client_address(alice, settings):
    """Behind a proxy every request comes from the proxy's address: the limit must count the
    client's (right-most X-Forwarded-For entry), or one sprayer would lock everyone out."""
    settings.LOGIN_IP_FAILURE_LIMIT = 3
    settings.TRUST_X_FORWARDED_FOR, settings.PROXY_HOPS = True, 1
    client = Client()
    for i in range(3):
        client.post("/login/", {"username": f"user{i}", "password": "x" * 12, "otp_token": ""},
                    REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9")
    locked = client.post("/login/", {"username": "alice", "password": PASSWORD, "otp_token": ""},
                         REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert locked.status_code == 429
    fine = Client().post("/login/", {"username": "alice", "password": PASSWORD, "otp_token": ""},
                         REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.20")
    assert fine.status_code == 302
