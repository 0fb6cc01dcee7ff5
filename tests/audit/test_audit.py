"""Audit events: append-only at every level, visible by rule, exportable, traced across workers."""
from __future__ import annotations

import csv
import io

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from apps.audit.models import AppendOnlyError, AuditEvent
from apps.audit.services import audit_record
from tradepulse.core import context


@pytest.fixture
def event(alice):
    with context.acting(actor_label="alice", user_id=alice.pk, request_id="req-1"):
        return audit_record("tests.thing.changed", target=alice, changes={"x": [1, 2]}, reason="because")


def test_update_and_delete_are_refused_by_the_model(event):
    event.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).reason == "because"


def test_update_is_refused_by_the_database_even_in_raw_sql(event):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == "because"


def test_event_records_actor_request_and_changes(event, alice):
    assert event.actor_id == alice.pk and event.actor_label == "alice"
    assert event.request_id == "req-1" and event.changes == {"x": [1, 2]}
    assert event.target_repr == "alice" and event.owner_id is None


def test_secret_looking_fields_are_redacted(alice):
    e = audit_record("tests.secret", target=alice, changes={"api_secret": ["old", "new"], "name": ["a", "b"]})
    assert e.changes == {"api_secret": ["[REDACTED]", "[REDACTED]"], "name": ["a", "b"]}


def test_admin_cannot_change_or_delete_events(client, olivia, event):
    olivia.is_superuser = True
    olivia.save()
    client.force_login(olivia)
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200  # read-only view
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403


def test_api_is_read_only(api, olivia, event):
    client = api(olivia)
    assert client.delete(f"/api/v1/audit-events/{event.pk}/").status_code == 405
    assert client.patch(f"/api/v1/audit-events/{event.pk}/", {"reason": "x"}, format="json").status_code == 405


def test_operators_see_all_others_only_their_own(api, alice, bob, olivia, event):
    with context.acting(actor_label="bob", user_id=bob.pk):
        audit_record("tests.bob.did", target=bob)
    ids = lambda user: {e["action"] for e in api(user).get("/api/v1/audit-events/?action=tests.").json()["results"]}  # noqa: E731
    assert ids(olivia) == {"tests.thing.changed", "tests.bob.did"}
    assert ids(alice) == {"tests.thing.changed"}
    assert ids(bob) == {"tests.bob.did"}


def test_filters_and_csv_export(api, olivia, alice, event):
    audit_record("tests.other", target=alice)
    client = api(olivia)
    rows = client.get("/api/v1/audit-events/?request_id=req-1").json()["results"]
    assert [r["action"] for r in rows] == ["tests.thing.changed"]
    response = client.get("/api/v1/audit-events/export/?action=tests.thing")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["action"] for r in table] == ["tests.thing.changed"] and table[0]["reason"] == "because"


def test_anonymous_api_call_is_json_401(client, db):
    response = client.get("/api/v1/audit-events/")
    assert response.status_code == 401
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


def test_request_id_is_always_ours_and_the_callers_is_kept_apart(client, alice):
    """A caller's X-Request-ID must not become ours (it could tie unrelated actions together or
    hide one among another's): it is recorded as client_request_id, when plain."""
    client.force_login(alice)
    response = client.patch("/api/v1/me/", {"timezone": "Europe/Paris"}, content_type="application/json",
                            HTTP_X_REQUEST_ID="abc-123")
    assert response.status_code == 200
    ours = response.headers["X-Request-ID"]
    assert ours != "abc-123" and len(ours) == 32
    event = AuditEvent.objects.get(action="accounts.user.preferences_changed")
    assert event.request_id == ours and event.client_request_id == "abc-123"
    listed = client.get("/api/v1/audit-events/?client_request_id=abc-123").json()["results"]
    assert [e["request_id"] for e in listed] == [ours] and listed[0]["client_request_id"] == "abc-123"
    odd = client.patch("/api/v1/me/", {"timezone": "UTC"}, content_type="application/json",
                       HTTP_X_REQUEST_ID="<script>")
    assert len(odd.headers["X-Request-ID"]) == 32
    assert AuditEvent.objects.get(request_id=odd.headers["X-Request-ID"]).client_request_id == ""


@pytest.mark.parametrize("behind_proxy, forwarded, remote, expected", [
    (False, "6.6.6.6", "10.0.0.9", "10.0.0.9"),  # no proxy configured: the header is the client's own claim
    (True, "203.0.113.5", "10.0.0.2", "203.0.113.5"),  # the proxy appended the client's address
    (True, "6.6.6.6, 203.0.113.5", "10.0.0.2", "203.0.113.5"),  # a forged left-most entry is ignored
    (True, "", "10.0.0.2", "10.0.0.2"),  # not through the proxy: the direct peer
    (True, "6.6.6.6, not-an-ip", "10.0.0.2", "10.0.0.2"),  # garbage never reaches the ip column
])
def test_audited_ip_is_the_right_most_untrusted_hop(client, alice, settings, behind_proxy, forwarded, remote, expected):
    settings.TRUST_X_FORWARDED_FOR = behind_proxy
    settings.PROXY_HOPS = 1
    client.force_login(alice)
    response = client.patch("/api/v1/me/", {"timezone": "UTC"}, content_type="application/json",
                            HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    assert response.status_code == 200
    assert AuditEvent.objects.get(request_id=response.headers["X-Request-ID"]).ip == expected


def test_two_proxy_hops_take_the_second_entry_from_the_right(rf, settings):
    from apps.audit.middleware import client_ip

    settings.TRUST_X_FORWARDED_FOR, settings.PROXY_HOPS = True, 2
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7, 10.0.0.3", REMOTE_ADDR="10.0.0.2")
    assert client_ip(request) == "198.51.100.7"


@pytest.mark.django_db(transaction=True)
def test_request_id_is_carried_into_a_celery_worker(client, alice, settings):
    """A task enqueued by a request runs in a real worker thread and audits with that request's id."""
    from celery.contrib.testing.worker import start_worker

    from tradepulse.celery import app

    settings.ROOT_URLCONF = "tests.audit.probe"
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10,
                          queues=["default"]):
            client.force_login(alice)
            response = client.get("/probe/", HTTP_X_REQUEST_ID="trace-me-42")
            assert response.status_code == 200
            import time

            deadline = time.monotonic() + 20
            while not AuditEvent.objects.filter(action="tests.probe.ran").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = True
    event = AuditEvent.objects.get(action="tests.probe.ran")
    assert event.request_id == response.headers["X-Request-ID"] and event.client_request_id == "trace-me-42"
    assert event.actor_id == alice.pk and event.actor_label == "alice" and event.via == "system:tests.audit_probe"


@pytest.mark.slow
def test_embedded_sqlite_refuses_update_and_delete_of_audit_rows(tmp_path):
    """The embedded mode's database, migrated from scratch, refuses raw UPDATE and DELETE too."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TRADEPULSE_TESTING", "DEBUG", "SECRET_KEY")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    manage = [sys.executable, os.path.join(root, "manage.py")]
    migrated = subprocess.run([*manage, "migrate", "-v0"], cwd=root, env=env, capture_output=True, text=True, timeout=240)
    assert migrated.returncode == 0, migrated.stderr
    code = """
from django.db import connection
from apps.audit.services import audit_record
audit_record("tests.embedded", reason="kept")
for sql in ("DELETE FROM audit_auditevent", "UPDATE audit_auditevent SET reason = 'x'"):
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
        print("ALLOWED", sql)
    except Exception as exc:
        print("REFUSED", exc)
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*), max(reason) FROM audit_auditevent")
    print("ROWS", cursor.fetchone())
"""
    result = subprocess.run([*manage, "shell", "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "ALLOWED" not in result.stdout, result.stdout
    assert "DELETE refused" in result.stdout and "UPDATE refused" in result.stdout
    assert "ROWS (1, 'kept')" in result.stdout
