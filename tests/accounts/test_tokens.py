"""Personal API tokens: created with an expiry, shown once, stored hashed, listed, revoked."""
from __future__ import annotations

from datetime import timedelta

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


def test_token_never_expiring_when_expiry_empty(api, alice):
    response = api(alice).post("/api/v1/tokens/", {"name": "ci", "expires_in_days": None}, format="json")
    assert response.status_code == 201 and response.json()["expiry"] is None
