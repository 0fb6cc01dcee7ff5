"""The system health page's facts: recorded checks with history, alerts for components and queues
that go down (resolved when they come back, also seen from the web process when no worker is
left), the scheduler watchdog, request statistics and server errors with request ids, the
status API (operators only), and /metrics (operators or a token)."""
from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.accounts.services import token_create
from apps.alerts.models import Alert, AlertState
from apps.alerts.services import alert_raise
from apps.dashboard import health, metrics
from apps.dashboard.models import HealthSample, RequestError
from apps.dashboard.tasks import publish_health
from tests.owned_factories import deployment as make_deployment


def _components(workers_up=True, queues=None):
    components = {"database": {"status": "ok", "required": True, "latency_ms": 1.0},
                  "broker": {"status": "ok", "required": True, "latency_ms": 1.0}}
    if workers_up:
        components["workers"] = {"status": "ok", "required": True, "workers": ["w1@host"], "latency_ms": 3.0,
                                 "queues": queues or {q: ["w1@host"] for q in ("downloads", "training", "trading",
                                                                               "default")}}
    else:
        components["workers"] = {"status": "down", "required": True, "latency_ms": 1000.0,
                                 "error": "RuntimeError: no Celery worker answered within 1 s"}
    return components


def test_a_worker_outage_raises_a_critical_alert_that_resolves_when_workers_answer(db):
    health.health_record(False, _components(workers_up=False))
    alert = Alert.objects.get(source="system", key="component:workers")
    assert alert.severity == "critical" and alert.state == AlertState.OPEN and alert.is_system
    assert alert.title == "workers is down" and "no Celery worker answered" in alert.message
    health.health_record(False, _components(workers_up=False))
    alert.refresh_from_db()
    assert alert.count == 2  # grouped, not repeated
    health.health_record(True, _components())
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_by is None
    assert alert.resolution == "workers answers again."
    assert HealthSample.objects.count() == 3


def test_a_queue_nobody_consumes_raises_an_error_until_a_worker_takes_it(db):
    queues = {"downloads": ["w1"], "training": [], "trading": ["w2"], "default": ["w1"]}
    health.health_record(True, _components(queues=queues))
    alert = Alert.objects.get(key="queue:training")
    assert alert.severity == "error" and alert.title == "No worker consumes the training queue"
    health.health_record(True, _components())
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


def test_the_web_process_alerts_when_no_worker_is_left(client, monkeypatch, db):
    def no_worker():
        raise RuntimeError("no Celery worker answered within 1 s")

    monkeypatch.setitem(health.CHECKS, "workers", no_worker)
    assert client.get("/health/ready").status_code == 503
    assert Alert.objects.get(key="component:workers").severity == "critical"
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["w1@host"]})
    assert client.get("/health/ready").status_code == 200
    assert Alert.objects.get(key="component:workers").state == AlertState.RESOLVED


def test_the_scheduler_check_goes_down_when_checks_stop_coming(client, olivia, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["w1@host"]})
    client.force_login(olivia)
    body = client.get("/health/ready").json()
    assert body["components"]["scheduler"]["status"] == "ok"
    assert body["components"]["scheduler"]["note"] == "no scheduled check has run yet"
    HealthSample.objects.create(checked_at=timezone.now() - timedelta(seconds=200), ok=True, components={})
    response = client.get("/health/ready")
    scheduler = response.json()["components"]["scheduler"]
    assert response.status_code == 200  # optional: traffic keeps flowing
    assert scheduler["status"] == "down" and "no scheduled health check for 200 s" in scheduler["error"]
    assert Alert.objects.get(key="component:scheduler").severity == "error"
    HealthSample.objects.create(checked_at=timezone.now(), ok=True, components={})
    assert client.get("/health/ready").json()["components"]["scheduler"]["status"] == "ok"
    assert Alert.objects.get(key="component:scheduler").state == AlertState.RESOLVED


def test_publish_health_records_a_sample_and_sends_the_status_to_operators(olivia, published, monkeypatch,
                                                                           django_capture_on_commit_callbacks):
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["w1@host"], "queues": {"default": ["w1"]}})
    with django_capture_on_commit_callbacks(execute=True):
        publish_health()
    sample = HealthSample.objects.get()
    assert sample.components["workers"]["workers"] == ["w1@host"]
    status = [m for groups, m in published if m["type"] == "system.status"]
    assert len(status) == 1 and status[0]["data"]["last_sample"]["ok"] == sample.ok
    assert [g for g, m in published if m["type"] == "system.status"] == [["ops"]]


# --- requests ------------------------------------------------------------------------------------------

@pytest.mark.urls("tests.dashboard.crash_urls")
def test_server_errors_are_stored_with_their_request_id_and_counted(client, alice, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "request-stats-test"}}
    client.raise_request_exception = False
    client.force_login(alice)
    before = metrics.request_stats()
    for _ in range(3):
        assert client.get("/api/v1/me/").status_code == 200
    response = client.get("/boom/?token=abcdef123456")
    assert response.status_code == 500
    error = RequestError.objects.get()
    assert error.request_id == response["X-Request-ID"]
    assert (error.method, error.path, error.status, error.user) == ("GET", "/boom/", 500, "alice")
    assert error.error.startswith("RuntimeError: simulated failure") and "abcdef123456" not in error.error
    after = metrics.request_stats()
    assert after["requests"] - before["requests"] == 4
    assert after["errors"] - before["errors"] == 1
    assert after["mean_ms"] is not None and sum(m["requests"] for m in after["minutes"]) == after["requests"]


def test_request_stats_give_rate_mean_and_p95_bucket(settings):
    metrics.flush()  # earlier requests of this process go to the cache they were counted for
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "request-stats-p95"}}
    now = time.time()
    for ms in [20] * 90 + [300] * 8 + [4000] * 2:  # 100 requests, 2 of them 5xx
        metrics.record(duration_s=ms / 1000, status=500 if ms == 4000 else 200, method="GET", now=now)
    stats = metrics.request_stats(now=now)
    assert stats["requests"] == 100 and stats["errors"] == 2 and stats["error_rate"] == 0.02
    assert stats["mean_ms"] == pytest.approx((90 * 20 + 8 * 300 + 2 * 4000) / 100)
    assert stats["p95_ms"] == 500  # the 95th request is among the 300 ms ones: the ≤500 ms bucket


# --- status API and /metrics -------------------------------------------------------------------------------

def test_status_api_is_for_operators_and_shows_accounts_and_freshness(api, alice, olivia):
    from apps.trading.services import deployment_activate

    deployment = deployment_activate(deployment=make_deployment(alice), reason="go")
    assert api(alice).get("/api/v1/system/status/").status_code == 403
    body = api(olivia).get("/api/v1/system/status/").json()
    assert {"last_sample", "history", "beat", "queues", "exchange_accounts", "data_freshness", "requests",
            "recent_errors", "platform"} <= set(body)
    assert [a["name"] for a in body["exchange_accounts"]] == [deployment.account.name]
    fresh = body["data_freshness"][0]
    assert fresh["deployment"] == deployment.pk and fresh["market"] == "SYN/USD @ Test files"
    assert fresh["stale"] is True and fresh["late_s"] > 0  # its candles are from 2023
    assert body["beat"]["stale"] is True and body["beat"]["last_check"] is None
    assert set(body["queues"]) == {"downloads", "training", "trading", "default"}


def test_metrics_need_an_operator_or_the_token(client, alice, olivia, settings):
    settings.TRADEPULSE_METRICS_TOKEN = "scrape-token-0123456789"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.force_login(alice)
    assert client.get("/metrics").status_code == 403
    client.logout()
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    _token, plain = token_create(user=olivia, name="prometheus", expires_in_days=30)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {plain}").status_code == 200
    _token, plain = token_create(user=alice, name="mine", expires_in_days=30)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {plain}").status_code == 403


def test_metrics_report_the_platforms_own_figures(client, olivia, alice):
    from apps.trading.models import Order, OrderStatus

    alert_raise(severity="critical", source="system", title="Disk full", key="disk")
    alert_raise(severity="warning", source="system", title="Slow", key="slow")
    dep = make_deployment(alice)
    common = dict(deployment=dep, account=dep.account, symbol="SYN/USD", side="buy", type="market",
                  amount=Decimal("1"), signal_bar_time=0)
    Order.objects.create(client_order_id="a", status=OrderStatus.FILLED, **common)
    Order.objects.create(client_order_id="b", status=OrderStatus.REJECTED, **common)
    Order.objects.create(client_order_id="c", status=OrderStatus.FAILED, reason_code="risk_denied", **common)
    client.force_login(olivia)
    text = client.get("/metrics").content.decode()
    assert 'tradepulse_alerts_open{severity="critical"} 1.0' in text
    assert 'tradepulse_alerts_open{severity="warning"} 1.0' in text
    assert 'tradepulse_orders_total{status="filled"} 1.0' in text
    assert 'tradepulse_order_rejections_total{by="exchange"} 1.0' in text
    assert 'tradepulse_order_rejections_total{by="risk"} 1.0' in text
    assert "tradepulse_download_rows_per_second 0.0" in text
    assert "tradepulse_backtests_per_minute 0.0" in text and "tradepulse_training_trials_per_minute 0.0" in text
    assert "tradepulse_http_request_duration_seconds_bucket" in text
