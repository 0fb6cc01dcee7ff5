"""Delivery: to a local webhook receiver (never the internet), each kind's payload, retries with
exponential backoff, quiet hours in the user's time zone, "send a test", and secrets that are
never echoed (API, audit, logs, errors, the database)."""
from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from apps.alerts import services
from apps.alerts.models import Channel, Delivery, DeliveryState
from apps.alerts.services import alert_raise, alert_resolve, channel_create, quiet_until
from apps.alerts.tasks import deliver_due
from apps.audit.models import AuditEvent


def _raise(capture, **kw):
    with capture(execute=True):
        return alert_raise(**{"severity": "error", "source": "system", "title": "Workers down",
                              "message": "no worker answered", "key": "component:workers", **kw})


def _time_passes(delivery):
    """Make a waiting delivery due now (instead of sleeping through its backoff)."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("kind, check", [
    ("webhook", lambda body: body["event"] == "alert" and body["alert"]["title"] == "Workers down"
     and body["alert"]["severity"] == "error"),
    ("slack", lambda body: set(body) == {"text"} and body["text"].startswith("[ERROR] Workers down")),
    ("discord", lambda body: set(body) == {"content"} and "no worker answered" in body["content"]),
])
def test_webhook_kinds_post_their_payload(kind, check, olivia, receiver, django_capture_on_commit_callbacks):
    channel = channel_create(owner=olivia, name=kind, kind=kind, url=f"{receiver.base}/hook/{kind}/s3cr3t-path",
                             min_severity="warning")
    _raise(django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1
    assert receiver.requests[0]["path"] == f"/hook/{kind}/s3cr3t-path"
    assert check(receiver.requests[0]["body"]), receiver.requests[0]["body"]
    delivery = Delivery.objects.get(channel=channel)
    assert delivery.state == DeliveryState.SENT and delivery.attempts == 1 and delivery.sent_at


def test_telegram_posts_to_the_bot_api(olivia, receiver, django_capture_on_commit_callbacks):
    channel_create(owner=olivia, name="tg", kind="telegram", bot_token="123456:ABC-telegram-token", chat_id="-1001")
    _raise(django_capture_on_commit_callbacks)
    request = receiver.requests[0]
    assert request["path"] == "/telegram/bot123456:ABC-telegram-token/sendMessage"
    assert request["body"]["chat_id"] == "-1001" and "Workers down" in request["body"]["text"]
    assert Delivery.objects.get().state == DeliveryState.SENT


def test_email_channel_sends_a_mail(olivia, django_capture_on_commit_callbacks):
    channel_create(owner=olivia, name="mail", kind="email", min_severity="error")
    _raise(django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["olivia@example.test"]
    assert mail.outbox[0].subject == "[TradePulse error] Workers down"


def test_only_channels_at_or_above_their_minimum_and_of_users_who_may_see_it(
        olivia, alice, receiver, django_capture_on_commit_callbacks):
    channel_create(owner=olivia, name="critical only", kind="webhook", url=f"{receiver.base}/crit",
                   min_severity="critical")
    channel_create(owner=alice, name="alice's", kind="webhook", url=f"{receiver.base}/alice", min_severity="info")
    _raise(django_capture_on_commit_callbacks)  # an error-level system alert: operators only
    assert receiver.requests == []
    assert not Delivery.objects.exists()


def test_failed_deliveries_are_retried_with_exponential_backoff_then_given_up(
        olivia, receiver, settings, django_capture_on_commit_callbacks):
    settings.TRADEPULSE_ALERT_DELIVERY_MAX_ATTEMPTS = 4
    settings.TRADEPULSE_ALERT_DELIVERY_BACKOFF_S = 30
    channel_create(owner=olivia, name="hook", kind="webhook", url=f"{receiver.base}/hook")
    receiver.statuses = [500, 503, 500, 500]
    _raise(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    waits = []
    for attempt in (1, 2, 3):
        delivery.refresh_from_db()
        assert delivery.state == DeliveryState.PENDING and delivery.attempts == attempt
        assert "answered HTTP 5" in delivery.last_error and "127.0.0.1" in delivery.last_error
        waits.append((delivery.next_attempt_at - delivery.updated_at).total_seconds())
        assert deliver_due() == 0  # not due yet: nothing is sent early
        _time_passes(delivery)
        assert deliver_due() == 1
    delivery.refresh_from_db()
    assert [round(w) for w in waits] == [30, 60, 120]
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == 4
    assert "Gave up after 4 attempts" in delivery.note
    assert len(receiver.requests) == 4
    assert AuditEvent.objects.filter(action="alerts.delivery.failed").count() == 1


def test_a_retry_that_succeeds_is_sent(olivia, receiver, django_capture_on_commit_callbacks):
    channel_create(owner=olivia, name="hook", kind="webhook", url=f"{receiver.base}/hook")
    receiver.statuses = [502]
    _raise(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    _time_passes(delivery)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SENT and delivery.attempts == 2 and delivery.last_error == ""


def test_an_unreachable_receiver_is_a_retry_naming_the_host_only(olivia, receiver, django_capture_on_commit_callbacks):
    receiver.close()  # nothing listens there any more
    channel_create(owner=olivia, name="hook", kind="webhook", url=f"{receiver.base}/hook/TOPSECRET")
    _raise(django_capture_on_commit_callbacks)
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_error == "could not connect to 127.0.0.1"


def test_a_resolved_alert_is_not_retried(olivia, receiver, django_capture_on_commit_callbacks):
    channel_create(owner=olivia, name="hook", kind="webhook", url=f"{receiver.base}/hook")
    receiver.statuses = [500]
    _raise(django_capture_on_commit_callbacks)
    alert_resolve(source="system", key="component:workers", reason="back")
    delivery = Delivery.objects.get()
    _time_passes(delivery)
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SKIPPED and "resolved before" in delivery.note
    assert len(receiver.requests) == 1


# --- quiet hours ---------------------------------------------------------------------------------------

def _channel_in(zone, start, end, owner):
    owner.timezone = zone
    owner.save(update_fields=["timezone"])
    return Channel(owner=owner, quiet_start=start, quiet_end=end)


@pytest.mark.parametrize("utc_now, expected_end_utc", [
    (datetime(2026, 7, 1, 21, 30, tzinfo=UTC), datetime(2026, 7, 2, 5, 0, tzinfo=UTC)),  # 23:30 Paris: quiet
    (datetime(2026, 7, 2, 4, 59, tzinfo=UTC), datetime(2026, 7, 2, 5, 0, tzinfo=UTC)),   # 06:59 Paris: quiet
    (datetime(2026, 7, 2, 5, 0, tzinfo=UTC), None),                                     # 07:00 Paris: over
    (datetime(2026, 7, 1, 19, 59, tzinfo=UTC), None),                                   # 21:59 Paris: not yet
    (datetime(2026, 1, 15, 21, 30, tzinfo=UTC), datetime(2026, 1, 16, 6, 0, tzinfo=UTC)),  # winter: UTC+1
])
def test_quiet_hours_span_midnight_in_the_users_time_zone(alice, utc_now, expected_end_utc):
    channel = _channel_in("Europe/Paris", time(22, 0), time(7, 0), alice)
    assert quiet_until(channel, utc_now) == expected_end_utc


def test_no_quiet_hours_when_unset_or_empty(alice):
    assert quiet_until(Channel(owner=alice), timezone.now()) is None
    assert quiet_until(_channel_in("UTC", time(9), time(9), alice), timezone.now()) is None


def test_quiet_hours_hold_non_critical_alerts_but_not_critical_ones(olivia, receiver,
                                                                    django_capture_on_commit_callbacks):
    now_local = timezone.now().astimezone(UTC)
    start = (now_local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now_local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    channel_create(owner=olivia, name="hook", kind="webhook", url=f"{receiver.base}/hook", quiet_start=start,
                   quiet_end=end, min_severity="info")
    _raise(django_capture_on_commit_callbacks, severity="error")
    held = Delivery.objects.get()
    assert receiver.requests == [] and held.state == DeliveryState.PENDING
    assert held.note.startswith("Held for quiet hours until") and held.next_attempt_at > timezone.now()
    assert deliver_due() == 0  # still quiet
    _raise(django_capture_on_commit_callbacks, severity="critical", key="disk", title="Disk full")
    assert len(receiver.requests) == 1 and receiver.requests[0]["body"]["alert"]["title"] == "Disk full"
    _time_passes(held)  # the quiet hours end
    assert deliver_due() == 1
    assert len(receiver.requests) == 2 and Delivery.objects.get(pk=held.pk).state == DeliveryState.SENT


# --- send a test ------------------------------------------------------------------------------------------

def test_send_a_test_through_the_api(api, alice, receiver):
    created = api(alice).post("/api/v1/alert-channels/", {"name": "ops hook", "kind": "webhook",
                                                          "url": f"{receiver.base}/hook/abc123"}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    result = api(alice).post(f"/api/v1/alert-channels/{pk}/test/", {}, format="json")
    assert result.status_code == 200
    assert result.json()["state"] == "sent" and result.json()["is_test"] is True
    assert receiver.requests[0]["body"]["event"] == "test"
    receiver.statuses = [404]
    failed = api(alice).post(f"/api/v1/alert-channels/{pk}/test/", {}, format="json").json()
    assert failed["state"] == "failed" and failed["attempts"] == 1  # a test is not retried
    assert failed["last_error"].startswith("127.0.0.1 answered HTTP 404")


def test_channel_validation_names_the_field(api, alice, settings):
    client = api(alice)
    r = client.post("/api/v1/alert-channels/", {"name": "x", "kind": "slack"}, format="json")
    assert r.status_code == 400 and "url" in r.json()["error"]["detail"]
    r = client.post("/api/v1/alert-channels/", {"name": "x", "kind": "telegram", "bot_token": "1:abc"}, format="json")
    assert r.status_code == 400 and "chat_id" in r.json()["error"]["detail"]
    r = client.post("/api/v1/alert-channels/", {"name": "x", "kind": "webhook", "url": "ftp://example.com/x"},
                    format="json")
    assert r.status_code == 400 and "https://" in r.json()["error"]["message"]
    r = client.post("/api/v1/alert-channels/", {"name": "x", "kind": "webhook", "url": "http://127.0.0.1:9/x",
                                                "quiet_start": "22:00"}, format="json")
    assert r.status_code == 400
    detail = r.json()["error"]["detail"]
    assert "private or local address" in str(detail["url"]) and "quiet_end" in detail
    assert Channel.objects.count() == 0


# --- secrets ------------------------------------------------------------------------------------------------

SLACK_URL_PATH = "/services/T0001/B0002/XyZsecretTokenValue99"
BOT_TOKEN = "987654:AAE-very-secret-bot-token"


def test_secrets_are_never_echoed(api, alice, receiver, caplog, settings, django_capture_on_commit_callbacks):
    url = f"{receiver.base}{SLACK_URL_PATH}"
    client = api(alice)
    created = client.post("/api/v1/alert-channels/", {"name": "slack", "kind": "slack", "url": url}, format="json")
    tg = client.post("/api/v1/alert-channels/", {"name": "tg", "kind": "telegram", "bot_token": BOT_TOKEN,
                                                 "chat_id": "42"}, format="json")
    assert created.status_code == tg.status_code == 201
    slack_id = created.json()["id"]
    assert created.json()["secret_hint"] == "127.0.0.1/…ue99"
    assert tg.json()["secret_hint"] == "bot …oken"
    patched = client.patch(f"/api/v1/alert-channels/{slack_id}/", {"name": "slack 2"}, format="json")
    assert patched.status_code == 200
    assert Channel.objects.get(pk=slack_id).url == url  # a missing secret keeps the stored one

    # failures whose receivers echo the secret back
    receiver.default_status = 500
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("urllib3").setLevel(logging.DEBUG)
        try:
            for pk in (slack_id, tg.json()["id"]):
                client.post(f"/api/v1/alert-channels/{pk}/test/", {}, format="json")
            alert_raise(severity="critical", source="trading", title="x", owner=alice)
        finally:
            logging.getLogger("urllib3").setLevel(logging.WARNING)

    texts = [
        client.get("/api/v1/alert-channels/").content.decode(),
        client.get(f"/api/v1/alert-channels/{slack_id}/").content.decode(),
        client.get("/api/v1/alert-deliveries/").content.decode(),
        client.get("/api/v1/audit-events/?page_size=200").content.decode(),
        str(list(AuditEvent.objects.values())),
        str(list(Delivery.objects.values("last_error", "note"))),
        "\n".join(r.getMessage() for r in caplog.records),
        caplog.text,
    ]
    for text in texts:
        assert "XyZsecretTokenValue99" not in text and SLACK_URL_PATH not in text
        assert BOT_TOKEN not in text and "very-secret-bot-token" not in text
    assert Delivery.objects.filter(state=DeliveryState.FAILED).count() == 2  # the tests failed, visibly
    with connection.cursor() as cursor:  # at rest: encrypted, not the plain value
        cursor.execute("SELECT url, bot_token FROM alerts_channel")
        stored = " ".join(v for row in cursor.fetchall() for v in row)
    assert "XyZsecret" not in stored and "very-secret" not in stored and stored.strip()


def test_the_admin_form_never_shows_a_secret(client, alice, receiver):
    from tests.conftest import make_user

    root = make_user("root", None, is_staff=True, is_superuser=True)
    channel = channel_create(owner=alice, name="slack", kind="slack", url=f"{receiver.base}{SLACK_URL_PATH}")
    client.force_login(root)
    page = client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    assert "XyZsecretTokenValue99" not in page
    listing = client.get("/admin/alerts/channel/").content.decode()
    assert "XyZsecretTokenValue99" not in listing and "…ue99" in listing


def test_deliveries_of_another_users_channel_are_404(api, alice, charlie, receiver):
    channel = channel_create(owner=alice, name="hook", kind="webhook", url=f"{receiver.base}/h")
    delivery = services.channel_test(channel=channel)
    assert api(charlie).get(f"/api/v1/alert-deliveries/{delivery.pk}/").status_code == 404
    assert api(charlie).get("/api/v1/alert-deliveries/").json()["count"] == 0
    assert api(alice).get("/api/v1/alert-deliveries/").json()["count"] == 1
    assert api(charlie).post(f"/api/v1/alert-channels/{channel.pk}/test/", {}, format="json").status_code == 404


def test_the_web_process_knows_the_delivery_and_backup_tasks():
    """A web process queues deliveries (and backups) by task name: the tasks must be registered
    there without anything importing them first (a fresh interpreter, as daphne starts)."""
    import subprocess
    import sys

    code = ("import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tradepulse.settings'); "
            "django.setup(); from tradepulse.celery import app; "
            "print(sorted(t for t in app.tasks if t.startswith(('alerts.', 'ops.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == str(["alerts.deliver", "alerts.deliver_due", "ops.backup_daily", "ops.backup_run"])
