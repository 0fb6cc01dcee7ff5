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


def test_request_id_is_taken_from_header_when_sane(client, db):
    assert client.get("/health/live", HTTP_X_REQUEST_ID="abc-123").headers["X-Request-ID"] == "abc-123"
    minted = client.get("/health/live", HTTP_X_REQUEST_ID="<script>").headers["X-Request-ID"]
    assert minted != "<script>" and len(minted) == 32


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
    assert event.request_id == "trace-me-42"
    assert event.actor_id == alice.pk and event.actor_label == "alice" and event.via == "system:tests.audit_probe"
