"""Personal API tokens: created with an expiry, shown once, stored hashed, listed, revoked."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent


def _token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_create_returns_the_token_once_and_stores_only_a_hash(api, alice):
    response = api(alice).post("/api/v1/tokens/", {"name": "reporting", "expires_in_days": 7}, format="json")
    assert response.status_code == 201
    plain = response.json()["token"]
    row = ApiToken.objects.get(user=alice)
    assert plain not in (row.digest, row.token_key) and plain.startswith(row.token_key)
    assert timedelta(days=6, hours=23) < row.expiry - timezone.now() <= timedelta(days=7)
    listed = api(alice).get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["reporting"]
    assert "token" not in listed[0] and "digest" not in listed[0]
    assert AuditEvent.objects.filter(action="accounts.token.created", actor=alice).exists()
    assert plain not in str(list(AuditEvent.objects.values_list("metadata", flat=True)))


def test_token_authenticates_and_records_last_use(api, alice):
    plain = api(alice).post("/api/v1/tokens/", {"name": "script"}, format="json").json()["token"]
    response = _token_client(plain).get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["username"] == "alice"
    assert ApiToken.objects.get(user=alice).last_used_at is not None


def test_expired_token_is_refused_with_json_401(api, alice):
    plain = api(alice).post("/api/v1/tokens/", {"name": "old", "expires_in_days": 1}, format="json").json()["token"]
    ApiToken.objects.filter(user=alice).update(expiry=timezone.now() - timedelta(seconds=1))
    response = _token_client(plain).get("/api/v1/me/")
    assert response.status_code == 401
    body = response.json()["error"]
    assert body["code"] and body["request_id"] == response["X-Request-ID"]


def test_revoked_token_stops_working(api, alice):
    created = api(alice).post("/api/v1/tokens/", {"name": "temp"}, format="json").json()
    assert api(alice).delete(f"/api/v1/tokens/{created['token_key']}/").status_code == 204
    assert _token_client(created["token"]).get("/api/v1/me/").status_code == 401
    assert AuditEvent.objects.filter(action="accounts.token.revoked").exists()


def test_another_users_token_is_404_not_403(api, alice, charlie):
    created = api(alice).post("/api/v1/tokens/", {"name": "mine"}, format="json").json()
    assert api(charlie).delete(f"/api/v1/tokens/{created['token_key']}/").status_code == 404
    assert ApiToken.objects.filter(user=alice).count() == 1


def test_bad_expiry_is_a_clear_error_and_nothing_is_created(api, alice):
    response = api(alice).post("/api/v1/tokens/", {"name": "x", "expires_in_days": 900}, format="json")
    assert response.status_code == 400
    assert "expires_in_days" in response.json()["error"]["message"]
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("days", [None, 366])
def test_every_token_expires_within_the_maximum_lifetime(api, alice, settings, days):
    assert settings.API_TOKEN_MAX_DAYS == 365
    response = api(alice).post("/api/v1/tokens/", {"name": "ci", "expires_in_days": days}, format="json")
    assert response.status_code == 400
    assert "between 1 and 365 days" in response.json()["error"]["message"]
    assert not ApiToken.objects.exists()


def test_maximum_lifetime_is_a_setting(api, alice, settings):
    settings.API_TOKEN_MAX_DAYS = 7
    assert api(alice).post("/api/v1/tokens/", {"name": "a", "expires_in_days": 8}, format="json").status_code == 400
    assert api(alice).post("/api/v1/tokens/", {"name": "b", "expires_in_days": 7}, format="json").status_code == 201


def test_a_token_cannot_create_tokens(api, alice):
    """Chosen over "revoking revokes what it created": a leaked token then cannot plant others at
    all, and there is no lineage to keep. People create tokens from a signed-in session."""
    plain = api(alice).post("/api/v1/tokens/", {"name": "script", "expires_in_days": 1}, format="json").json()["token"]
    for days in (1, None, 365):
        response = _token_client(plain).post("/api/v1/tokens/", {"name": "child", "expires_in_days": days},
                                             format="json")
        assert response.status_code == 403
        assert "API tokens cannot create tokens" in response.json()["error"]["message"]
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["script"]
    # It may still list and revoke (itself included): that only takes access away.
    assert _token_client(plain).get("/api/v1/tokens/").status_code == 200


def test_token_older_than_the_maximum_lifetime_is_refused(api, alice, settings):
    """Tokens from before the limit existed (no expiry) or before it was lowered end with it."""
    plain = api(alice).post("/api/v1/tokens/", {"name": "old", "expires_in_days": 30}, format="json").json()["token"]
    ApiToken.objects.filter(user=alice).update(expiry=None)
    assert _token_client(plain).get("/api/v1/me/").status_code == 200
    settings.API_TOKEN_MAX_DAYS = 1
    ApiToken.objects.filter(user=alice).update(created=timezone.now() - timedelta(days=2))
    response = _token_client(plain).get("/api/v1/me/")
    assert response.status_code == 401 and "maximum lifetime (1 day)" in response.json()["error"]["message"]
