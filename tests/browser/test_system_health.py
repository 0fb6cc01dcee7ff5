"""The system health page in a real browser: components with their history, scheduler and
queues, requests, exchange accounts, data freshness and server errors for an operator, updated
live when the scheduled check publishes; a trader sees component statuses only. Screenshots at
1440x900 and 390x844 (no horizontal scroll on the phone)."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from apps.dashboard import health
from apps.dashboard.models import HealthSample, RequestError
from apps.dashboard.tasks import publish_health
from tests.browser.test_alerts import _shoot
from tests.conftest import make_user
from tests.owned_factories import deployment as make_deployment


def test_operator_sees_the_platform_state_and_it_updates_live(login, page, live_url, alice, monkeypatch):
    from apps.trading.services import deployment_activate

    olivia = make_user("olivia", "Operator", is_staff=True)
    deployment_activate(deployment=make_deployment(alice), reason="go")
    now = timezone.now()
    for i in range(20, 0, -1):  # ten minutes of history; the workers were down for a minute
        down = i in (6, 7)
        HealthSample.objects.create(checked_at=now - timedelta(seconds=30 * i), ok=not down, components={
            "database": {"status": "ok", "required": True, "latency_ms": 1.2},
            "workers": {"status": "down" if down else "ok", "required": True, "latency_ms": 4.0,
                        "workers": [] if down else ["celery@w1"], "queues": {"default": ["celery@w1"]}}})
    RequestError.objects.create(occurred_at=now, request_id="req-0123456789abcdef", method="POST",
                                path="/api/v1/backtests/", status=500, error="RuntimeError: boom", user="alice")
    queues = {"downloads": ["celery@w1"], "training": ["celery@w2"], "trading": ["celery@w1"], "default": ["celery@w1"]}
    monkeypatch.setitem(health.CHECKS, "workers", lambda: {"workers": ["celery@w1", "celery@w2"], "queues": queues})
    # the layer round trip cannot run in this thread (Playwright's loop runs in it); a worker does it
    monkeypatch.setitem(health.CHECKS, "channel_layer", lambda: {"backend": "checked by the worker"})

    login(olivia)
    page.goto(f"{live_url}/health/")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    workers = page.locator("#health-table tr[data-component=workers]")
    expect(workers.locator(".health-strip span")).to_have_count(20)
    expect(workers.locator(".health-strip span.down")).to_have_count(2)
    expect(workers).to_contain_text("90.0 %")  # 18 of 20 checks up
    expect(page.locator("#errors-table")).to_contain_text("req-0123456789abcdef")
    expect(page.locator("#errors-table")).to_contain_text("POST /api/v1/backtests/")
    expect(page.locator("#freshness-table")).to_contain_text("SYN/USD @ Test files")
    expect(page.locator("#freshness-table")).to_contain_text("stale")
    expect(page.locator("#accounts-table")).to_contain_text("alice paper")
    expect(page.locator("#beat-line")).to_contain_text("on time")
    expect(page.locator("#platform-figures")).to_contain_text("rows/s")

    queues["training"] = []  # celery@w2 stops
    publish_health()  # the scheduled check: a sample, an alert for the unconsumed queue, a live update
    expect(workers.locator(".health-strip span")).to_have_count(21)
    expect(page.locator("#queues-table tr[data-queue=training]")).to_contain_text("none")
    expect(page.locator(".alert-toast", has_text="No worker consumes the training queue")).to_be_visible()
    expect(page.locator("#alert-unread")).to_have_text("1")
    _shoot(page, "system_health")


def test_a_trader_sees_component_statuses_only(login, page, live_url, alice):
    login(alice)
    page.goto(f"{live_url}/health/")
    expect(page.locator("#health-table tr[data-component=database]")).to_contain_text("ok")
    expect(page.locator("body")).to_contain_text("shown to operators")
    expect(page.locator("#queues-table")).to_have_count(0)
